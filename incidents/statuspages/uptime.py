"""90-day uptime bars: one bar per UTC day per component, in a constant number of queries.

A component watched by a probe check takes its days from the availability source's day counts
(``monitoring.availability``; runs that reached the service over runs that ran). A component
mapped only to a service counts the minutes the service had an open P1 or P2 incident (one
query for every service of the page). A day with nothing measured is grey ("no data"): before
the check or service existed, while a check was paused, or for a component mapped to neither.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from django.db.models import Q
from django.utils.safestring import SafeString, mark_safe

from incidents.lifecycle.models import Incident
from monitoring import availability

DAYS = 90
OUTAGE_PRIORITIES = ("P1", "P2")
DAY = timedelta(days=1)
MINUTES_PER_DAY = 24 * 60


def level_of(pct: float | None) -> str:
    if pct is None:
        return "none"
    if pct >= 99.9:
        return "ok"
    if pct >= 99.0:
        return "minor"
    if pct >= 95.0:
        return "major"
    return "critical"


def format_pct(pct: float | None) -> str:
    if pct is None:
        return "no data"
    if pct >= 100:
        return "100%"
    return f"{min(pct, 99.99):.2f}%"


def window(now: datetime, days: int = DAYS) -> tuple[datetime, datetime]:
    """[start, end): the last ``days`` UTC days, today included (aligned to midnight)."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = today + DAY
    return end - DAY * days, end


def _cell(label: str, pct: float | None, outage: int | None) -> str:
    if pct is None:
        return f'<i class="b-none" title="{label}: no data"></i>'
    text = f"{label}: {format_pct(pct)} uptime"
    if outage:
        text += f", {outage} min of outage"
    return f'<i class="b-{level_of(pct)}" title="{text}"></i>'


@dataclass
class Uptime:
    """One component's days: the bars as markup (built here rather than in a template loop:
    500 components by 90 days is 45,000 cells, which the template engine renders ten times
    slower) and the runs or minutes behind the overall figure."""

    bars: str = ""
    good: float = 0.0  # good runs or up minutes
    total: float = 0.0

    @property
    def pct(self) -> float | None:
        return 100.0 * self.good / self.total if self.total else None

    @property
    def pct_text(self) -> str:
        return format_pct(self.pct)

    def html(self) -> SafeString:
        # Labels are dates and figures we format; levels are fixed words: nothing to escape.
        return mark_safe(self.bars)


def labels(start: datetime, days: int = DAYS) -> list[str]:
    return list(_days(start, days).labels)


@dataclass(frozen=True)
class _Days:
    """Per day of a window: its label, and the two cells most days are (nothing measured, and
    a whole day up), made once rather than 45,000 times."""

    labels: tuple[str, ...]
    none: tuple[str, ...]
    full: tuple[str, ...]


@lru_cache(maxsize=8)
def _days(start: datetime, days: int) -> _Days:
    names = tuple((start + DAY * i).strftime("%d %b %Y") for i in range(days))
    return _Days(
        names,
        tuple(_cell(n, None, None) for n in names),
        tuple(_cell(n, 100.0, None) for n in names),
    )


def empty(start: datetime, days: int = DAYS) -> Uptime:
    return Uptime("".join(_days(start, days).none))


def from_counts(
    start: datetime,
    counts: list[availability.Counts | None],
    days: int = DAYS,
) -> Uptime:
    known = _days(start, days)
    result = Uptime()
    cells = []
    for i in range(days):
        c = counts[i] if i < len(counts) else None
        total = c.total if c is not None else 0
        if not total:
            cells.append(known.none[i])
            continue
        good = c.good
        result.good += good
        result.total += total
        cells.append(
            known.full[i] if good == total else _cell(known.labels[i], 100.0 * good / total, None)
        )
    result.bars = "".join(cells)
    return result


def probe_uptime(
    kind: str, target_ids: Iterable[int], start: datetime, end: datetime
) -> dict[int, Uptime]:
    ids = sorted(set(target_ids))
    source = availability.source(kind)
    if not ids or source is None:
        return {}
    counts = source.counts(ids, start, end, "day")
    days = (end - start) // DAY
    return {tid: from_counts(start, counts.get(tid) or [], days) for tid in ids}


def incident_uptime(
    services: dict[int, datetime], start: datetime, end: datetime, now: datetime
) -> dict[int, Uptime]:
    """Per service (id → when it was created): each day's share of measured minutes without an
    open P1/P2 incident. One query for all services."""
    if not services:
        return {}
    rows = (
        Incident.objects.filter(
            service_id__in=list(services),
            priority__in=OUTAGE_PRIORITIES,
            created_at__lt=end,
        )
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=start))
        .values_list("service_id", "created_at", "resolved_at")
        .order_by()
    )
    spans: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for service_id, opened, resolved in rows:
        spans[service_id].append((max(opened, start), min(resolved or now, end)))
    days = (end - start) // DAY
    known = _days(start, days)
    result = {}
    for service_id, created in services.items():
        # Outage minutes per day, from the merged spans cut at midnights.
        down = [0.0] * days
        for a, b in _merge(spans.get(service_id, [])):
            a, b = max(a, created), min(b, now)
            while a < b:
                i = (a - start) // DAY
                cut = min(b, start + DAY * (i + 1))
                down[i] += (cut - a).total_seconds() / 60
                a = cut
        uptime = Uptime()
        cells = []
        for i in range(days):
            day_start = start + DAY * i
            if not down[i] and created <= day_start and day_start + DAY <= now:
                uptime.good += MINUTES_PER_DAY  # the common case: a whole day, no outage
                uptime.total += MINUTES_PER_DAY
                cells.append(known.full[i])
                continue
            measured_from = max(day_start, created)
            measured_to = min(day_start + DAY, now)
            if measured_to <= measured_from:
                cells.append(known.none[i])
                continue
            measured = (measured_to - measured_from).total_seconds() / 60
            uptime.good += measured - down[i]
            uptime.total += measured
            pct = 100.0 * (measured - down[i]) / measured
            cells.append(_cell(known.labels[i], pct, round(down[i])))
        uptime.bars = "".join(cells)
        result[service_id] = uptime
    return result


def _merge(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged
