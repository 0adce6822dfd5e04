"""SLI "incidents": the share of minutes in which the service had no open P1/P2 incident.

Registered with monitoring's SLI registry from ``IncidentsConfig.ready`` (monitoring may not
import incidents). A minute is bad when any part of it lies between an incident's start and
its resolution (an open incident counts up to now); every minute counts once, so budgeting by
occurrences and by one-minute time slices agree. An incident that was resolved and reopened
counts from its start to its last resolution (the gap in between counts as open).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q

from incidents.lifecycle.models import Incident, Priority
from monitoring.slos.registry import ConfigError, Indicator, Tally, register

MINUTE = timedelta(minutes=1)
STEPS = {"minute": MINUTE, "hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_PRIORITIES = ("P1", "P2")


@dataclass(frozen=True)
class IncidentConfig:
    priorities: tuple[str, ...] = DEFAULT_PRIORITIES


def _floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _ceil(moment: datetime) -> datetime:
    floored = _floor(moment)
    return floored if floored == moment else floored + MINUTE


def bad_spans(
    service_id: int, priorities: tuple[str, ...], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Merged [from, to) spans of whole minutes touched by an open incident, within the range."""
    now = datetime.now(UTC)
    rows = (
        Incident.objects.filter(service_id=service_id, priority__in=priorities)
        .filter(created_at__lt=end)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=start))
        .order_by("created_at")
        .values_list("created_at", "resolved_at")
    )
    spans: list[tuple[datetime, datetime]] = []
    for opened, resolved in rows:
        a = max(_floor(opened), start)
        b = min(_ceil(resolved or max(now, end)), end)
        if a >= b:
            continue
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans


class Incidents(Indicator):
    kind = "incidents"
    label = "Time without a P1/P2 incident"
    unit = "minutes"

    def parse(self, raw: Any, service: Any) -> IncidentConfig:
        if not isinstance(raw, dict):
            raise ConfigError({"priorities": 'settings are an object: {"priorities": ["P1"]}'})
        errors = {key: "unknown setting" for key in raw if key != "priorities"}
        priorities = raw.get("priorities") or list(DEFAULT_PRIORITIES)
        if not isinstance(priorities, list | tuple) or not all(
            p in Priority.values for p in priorities
        ):
            errors["priorities"] = f"a list of priorities from: {', '.join(Priority.values)}"
        if errors:
            raise ConfigError(errors)
        return IncidentConfig(priorities=tuple(sorted(set(priorities))))

    def dump(self, config: IncidentConfig) -> dict[str, Any]:
        if config.priorities == DEFAULT_PRIORITIES:
            return {}
        return {"priorities": list(config.priorities)}

    def counts(
        self, service: Any, config: IncidentConfig, start: datetime, end: datetime, step: str
    ) -> list[Tally | None]:
        length = STEPS[step]
        size = max(0, (end - start) // length)
        bad = [0.0] * size
        for a, b in bad_spans(service.pk, config.priorities, start, end):
            index = (a - start) // length
            while a < b:
                bucket_end = start + (index + 1) * length
                bad[index] += (min(b, bucket_end) - a) / MINUTE
                a, index = bucket_end, index + 1
        minutes = length / MINUTE
        return [Tally(minutes - bad[i], minutes) for i in range(size)]

    def describe(self, config: IncidentConfig) -> str:
        return f"Minutes without an open {'/'.join(config.priorities)} incident"


def register_indicator() -> None:
    register(Incidents())
