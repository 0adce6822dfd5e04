"""SLI kinds, one module each, behind a registry (kind → ``Indicator``).

A kind declares everything about itself: its label, its config (a typed dataclass, parsed and
validated with errors per field), and how it counts good and total per bucket. Monitoring's own
kinds (probe availability and latency, metric ratios) register in ``monitoring.slos.kinds``;
the incidents app registers "incidents" from ``incidents.slos`` because monitoring may not
import incidents. The model's choices are read from here (a callable, so kinds registered by
other apps appear too).

A leaf module: it imports no models, so ``monitoring.models.slos`` can take its choices here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from monitoring.models import Service


@dataclass(frozen=True)
class Tally:
    """Good and total of one bucket, in the kind's unit (runs, events or minutes)."""

    good: float
    total: float

    @property
    def bad(self) -> float:
        return self.total - self.good


# One tally per bucket, or (faster, for kinds that sum many buckets) compute.Columns.
Reader = Callable[[datetime, datetime, str], Any]


class ConfigError(Exception):
    """A kind's config does not hold: messages by field (``{"threshold_ms": "…"}``)."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = dict(fields)


class Indicator(ABC):
    """One SLI kind."""

    kind: ClassVar[str]
    label: ClassVar[str]
    # What one unit is, in words ("probe runs", "events", "minutes"): pages and docs say it.
    unit: ClassVar[str] = "events"
    # OpenSLO: how an indicator of this kind is written (ratioMetric or thresholdMetric).
    openslo_shape: ClassVar[str] = "ratioMetric"

    @abstractmethod
    def parse(self, raw: Any, service: Service | None) -> Any:
        """The typed config from its stored (JSON) form; ``ConfigError`` naming the fields that
        do not hold. ``service`` is the SLO's (None while a form has none yet)."""

    def dump(self, config: Any) -> dict[str, Any]:
        """The stored (JSON) form of a typed config."""
        from dataclasses import asdict

        return asdict(config)

    @abstractmethod
    def counts(
        self, service: Service, config: Any, start: datetime, end: datetime, step: str
    ) -> list[Tally | None]:
        """One tally per bucket of ``step`` ("minute", "hour", "day") in [start, end), both on
        the step's boundary (UTC); None where nothing was measured."""

    def reader(self, service: Service, config: Any) -> Reader:
        """``counts`` bound to one SLO, for many reads in a row (a kind may look up what it
        reads once here: the probe kinds find the service's checks)."""
        return lambda start, end, step: self.counts(service, config, start, end, step)

    def batch(self, slos: list[Any], now: datetime) -> AbstractContextManager[Any]:
        """A context in which these SLOs' readers share what they read of the days still
        changing (the evaluation task reads every SLO each minute): one read for all of
        them instead of one each. None by default."""
        return nullcontext()

    def describe(self, config: Any) -> str:
        """The indicator in one line, for lists and alerts."""
        return self.label


_KINDS: dict[str, Indicator] = {}


def register(indicator: Indicator) -> None:
    _KINDS[indicator.kind] = indicator


def get(kind: str) -> Indicator | None:
    return _KINDS.get(kind)


def kinds() -> dict[str, Indicator]:
    return dict(_KINDS)


# The kinds known before any app registered (so migrations and choices are stable); the
# registry adds whatever else an app registers.
BUILTIN = {
    "probe_availability": "Probe availability",
    "probe_latency": "Probe latency",
    "metric_ratio": "Metric ratio (good / total events)",
    "incidents": "Time without a P1/P2 incident",
}


def choices() -> list[tuple[str, str]]:
    labels = {**BUILTIN, **{kind: ind.label for kind, ind in _KINDS.items()}}
    return sorted(labels.items())
