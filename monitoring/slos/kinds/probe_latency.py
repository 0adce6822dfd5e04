"""SLI "probe_latency": the share of probe runs of the service's checks that answered within a
threshold (one of the probe histogram's edges, so every level of rollup counts it exactly)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitoring import availability
from monitoring.slos.kinds.probe_availability import (
    batch,
    parse_checks,
    probe_source,
    summed,
    target_ids,
    unknown_keys,
)
from monitoring.slos.registry import ConfigError, Indicator, Reader, Tally


@dataclass(frozen=True)
class LatencyConfig:
    threshold_ms: int
    checks: tuple[int, ...] = ()


class ProbeLatency(Indicator):
    kind = "probe_latency"
    label = "Probe latency"
    unit = "probe runs"
    openslo_shape = "thresholdMetric"

    def parse(self, raw: Any, service: Any) -> LatencyConfig:
        if not isinstance(raw, dict):
            raise ConfigError({"threshold_ms": 'settings are an object: {"threshold_ms": 500}'})
        errors = unknown_keys(raw, {"checks", "threshold_ms"})
        checks = parse_checks(raw.get("checks"), service, errors)
        source = probe_source()
        allowed = source.latency_thresholds if source is not None else ()
        threshold = raw.get("threshold_ms")
        if source is None:
            errors["checks"] = "probes are not installed"
        elif threshold is None or isinstance(threshold, bool) or threshold not in allowed:
            errors["threshold_ms"] = f"one of: {', '.join(map(str, allowed))} (milliseconds)"
        if errors:
            raise ConfigError(errors)
        return LatencyConfig(threshold_ms=int(threshold), checks=checks)

    def dump(self, config: LatencyConfig) -> dict[str, Any]:
        out: dict[str, Any] = {"threshold_ms": config.threshold_ms}
        if config.checks:
            out["checks"] = list(config.checks)
        return out

    def counts(
        self, service: Any, config: LatencyConfig, start: datetime, end: datetime, step: str
    ) -> list[Tally | None]:
        ids = target_ids(service, config.checks)
        size = availability.buckets(start, end, step)
        return summed(ids, start, end, step, latency_ms=config.threshold_ms).tallies(0, size)

    def batch(self, slos: list[Any], now: datetime) -> Any:
        return batch(slos, now)

    def reader(self, service: Any, config: LatencyConfig) -> Reader:
        ids, ms = target_ids(service, config.checks), config.threshold_ms
        return lambda start, end, step: summed(ids, start, end, step, latency_ms=ms)

    def describe(self, config: LatencyConfig) -> str:
        return f"Probe runs answered within {config.threshold_ms} ms"
