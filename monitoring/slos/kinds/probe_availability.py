"""SLI "probe_availability": the share of probe runs of the service's checks that reached the
service (up or degraded; down is bad; runs that could not tell are left out).

Read through ``monitoring.availability`` (the probes app registers its source there), so
monitoring never imports probes; days, hours and minutes come from the probes' own rollups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitoring import availability
from monitoring.slos.compute import Columns
from monitoring.slos.registry import ConfigError, Indicator, Reader, Tally

SOURCE = "probe"


@dataclass(frozen=True)
class ProbeConfig:
    # Ids of the service's checks to count; empty: every check of the service.
    checks: tuple[int, ...] = ()


def probe_source() -> availability.Source | None:
    return availability.source(SOURCE)


@dataclass
class Batch:
    """What the SLOs of one evaluation read together: their services' checks, and every range
    from ``since`` on (the days still changing) for all of those checks at once."""

    since: datetime
    checks: dict[int, list[int]]  # service id → its checks
    # The checks each latency threshold (None: availability) is counted for.
    wanted: dict[int | None, frozenset[int]] = field(default_factory=dict)
    reads: dict[tuple, dict[int, list[Any]]] = field(default_factory=dict)


_BATCH: ContextVar[Batch | None] = ContextVar("slo_probe_batch", default=None)
# Days that ended this long ago no longer change (``monitoring.slos.compute.SETTLE``).
SETTLE = timedelta(hours=2)


@contextmanager
def batch(slos: list[Any], now: datetime) -> Iterator[None]:
    """Both probe kinds' SLOs in one batch: the second kind to enter adds its SLOs."""
    source = probe_source()
    if source is None:
        yield
        return
    shared = _BATCH.get()
    outer = shared is None
    if shared is None:
        moment = now - SETTLE
        shared = Batch(moment.replace(hour=0, minute=0, second=0, microsecond=0), {})
    missing = {slo.service_id for slo in slos} - set(shared.checks)
    if missing:
        for service_id in missing:
            shared.checks[service_id] = []
        for target in source.targets(service_ids=missing):
            shared.checks[target.service_id].append(target.id)
    wanted: dict[int | None, set[int]] = defaultdict(set)
    for latency, ids in shared.wanted.items():
        wanted[latency].update(ids)
    for slo in slos:
        try:
            config = slo.config(validate=False)
        except ConfigError:
            continue
        own = shared.checks.get(slo.service_id, [])
        ids = [pk for pk in own if pk in config.checks] if config.checks else own
        wanted[getattr(config, "threshold_ms", None)].update(ids)
    shared.wanted = {latency: frozenset(ids) for latency, ids in wanted.items()}
    if not outer:
        yield
        return
    token = _BATCH.set(shared)
    try:
        yield
    finally:
        _BATCH.reset(token)


def unknown_keys(raw: Mapping[str, Any], allowed: set[str]) -> dict[str, str]:
    return {key: "unknown setting" for key in raw if key not in allowed}


def parse_checks(raw: Any, service: Any, errors: dict[str, str]) -> tuple[int, ...]:
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list | tuple) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in raw
    ):
        errors["checks"] = "a list of check ids (empty: every check of the service)"
        return ()
    checks = tuple(sorted(set(raw)))
    source = probe_source()
    if checks and source is not None and service is not None:
        found = {t.id for t in source.targets(target_ids=checks) if t.service_id == service.pk}
        missing = [str(pk) for pk in checks if pk not in found]
        if missing:
            errors["checks"] = f"no check of this service with id {', '.join(missing)}"
    return checks


def target_ids(service: Any, checks: tuple[int, ...]) -> list[int]:
    source = probe_source()
    if source is None:
        return []
    shared = _BATCH.get()
    if shared is not None and service.pk in shared.checks:
        found = shared.checks[service.pk]
        return [pk for pk in found if pk in checks] if checks else list(found)
    if checks:
        return [t.id for t in source.targets(target_ids=checks) if t.service_id == service.pk]
    return [t.id for t in source.targets(service_ids=[service.pk])]


def summed(
    ids: list[int],
    start: datetime,
    end: datetime,
    step: str,
    *,
    latency_ms: int | None = None,
) -> Columns:
    """Good and total runs per bucket over these checks; good is "reached" (up or degraded),
    or "answered within the threshold" when ``latency_ms`` is given."""
    size = availability.buckets(start, end, step)
    source = probe_source()
    if not ids or source is None or not size:
        return Columns.of([None] * size)
    shared = _BATCH.get()
    wanted = shared.wanted.get(latency_ms, frozenset()) if shared is not None else frozenset()
    # The days still changing, and any one whole day of hours or minutes (a window's edge: the
    # SLOs of one window length share it), are read once for every SLO of the evaluation.
    shared_range = start >= shared.since if shared is not None else False
    one_day = step != "day" and end - start == timedelta(days=1)
    batched = shared is not None and (shared_range or one_day) and wanted.issuperset(ids)
    # Up, degraded, down and fast runs as arrays: months of minutes summed in C.
    if batched:
        key = (step, start, end, latency_ms)
        if key not in shared.reads:
            shared.reads[key] = source.count_columns(
                wanted, start, end, step, latency_ms=latency_ms
            )
        found = shared.reads[key]
    else:
        found = source.count_columns(ids, start, end, step, latency_ms=latency_ms)
    up, degraded, down, fast = sum(found[pk] for pk in ids)
    total = up + degraded + down
    good = up + degraded if latency_ms is None else fast
    return Columns(good, total, total > 0)


class ProbeAvailability(Indicator):
    kind = "probe_availability"
    label = "Probe availability"
    unit = "probe runs"

    def parse(self, raw: Any, service: Any) -> ProbeConfig:
        if not isinstance(raw, dict):
            raise ConfigError({"checks": 'settings are an object, e.g. {"checks": [1, 2]}'})
        errors = unknown_keys(raw, {"checks"})
        checks = parse_checks(raw.get("checks"), service, errors)
        if probe_source() is None:
            errors["checks"] = "probes are not installed"
        if errors:
            raise ConfigError(errors)
        return ProbeConfig(checks=checks)

    def dump(self, config: ProbeConfig) -> dict[str, Any]:
        return {"checks": list(config.checks)} if config.checks else {}

    def counts(
        self, service: Any, config: ProbeConfig, start: datetime, end: datetime, step: str
    ) -> list[Tally | None]:
        ids = target_ids(service, config.checks)
        return summed(ids, start, end, step).tallies(0, availability.buckets(start, end, step))

    def batch(self, slos: list[Any], now: datetime) -> Any:
        return batch(slos, now)

    def reader(self, service: Any, config: ProbeConfig) -> Reader:
        ids = target_ids(service, config.checks)
        return lambda start, end, step: summed(ids, start, end, step)

    def describe(self, config: ProbeConfig) -> str:
        which = f"checks {', '.join(map(str, config.checks))}" if config.checks else "all checks"
        return f"Probe runs that reached the service ({which})"
