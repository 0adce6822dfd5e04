"""Recording metric samples: the one way in (the API, the host collector, probes).

One validated batch costs a handful of queries however many series it touches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Case, DateTimeField, F, FloatField, Q, Value, When
from django.utils import timezone

from monitoring.models import (
    MetricKind,
    MetricSample,
    MetricSeries,
    series_key,
)
from monitoring.models.metrics import (
    label_errors,
    metric_name_error,
)
from tocsin.models import Team
from tocsin.services import ServiceError

# --- Input limits -------------------------------------------------------------------------------
MAX_BATCH = 1000
# Samples may arrive late, but not so late that their minute has already been rolled up (raw
# minutes are rolled RAW_ROLLUP_AFTER after the fact; the gap is a margin for slow requests).
MAX_SAMPLE_AGE = timedelta(minutes=50)
# A little clock skew between a sender and us is normal; a sample from the future is not.
MAX_SAMPLE_AHEAD = timedelta(minutes=5)


class SampleError(ServiceError):
    """A sample of a batch is invalid; ``index`` says which, ``field`` what about it."""

    def __init__(self, message: str, index: int, field: str):
        super().__init__(message, field)
        self.index = index
        self.sample_field = field


@dataclass
class SampleInput:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    time: datetime | None = None
    # None: the series' existing kind, or a gauge for a new series.
    kind: str | None = None


@dataclass
class Recorded:
    samples: int = 0
    series: int = 0
    new_series: int = 0


# --- Validation (shared by the API's serializer) -----------------------------------------------


def value_error(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "a number is required"
    try:
        if not math.isfinite(float(value)):
            return "must be a finite number"
    except OverflowError:
        return "must be a finite number"
    return None


def time_error(when: Any, now: datetime) -> str | None:
    if when is None:
        return None
    if not isinstance(when, datetime) or timezone.is_naive(when):
        return "a time with a time zone is required"
    if when < now - MAX_SAMPLE_AGE:
        return f"older than {int(MAX_SAMPLE_AGE.total_seconds() // 60)} minutes"
    if when > now + MAX_SAMPLE_AHEAD:
        return "lies in the future"
    return None


def kind_error(kind: Any) -> str | None:
    if kind is not None and kind not in MetricKind.values:
        return f"one of: {', '.join(MetricKind.values)}"
    return None


def sample_errors(item: SampleInput, now: datetime) -> dict[str, str]:
    """Everything wrong with one sample, by field; empty when it is fine."""
    checks = {
        "name": metric_name_error(item.name),
        "labels": label_errors(item.labels),
        "value": value_error(item.value),
        "time": time_error(item.time, now),
        "kind": kind_error(item.kind),
    }
    return {name: message for name, message in checks.items() if message}


def _as_input(raw: SampleInput | dict[str, Any]) -> SampleInput:
    if isinstance(raw, SampleInput):
        return raw
    return SampleInput(
        name=raw.get("name"),  # type: ignore[arg-type]
        value=raw.get("value"),  # type: ignore[arg-type]
        labels=raw.get("labels") or {},
        time=raw.get("time"),
        kind=raw.get("kind"),
    )


# --- Recording ----------------------------------------------------------------------------------


def record_samples(
    team: Team,
    samples: SampleInput | dict[str, Any] | Iterable[SampleInput | dict[str, Any]],
    *,
    now: datetime | None = None,
) -> Recorded:
    """Store samples for ``team``: all of them or, if any is invalid, none (SampleError).

    Costs a few queries per batch whatever its size: read the batch's series, create the missing
    ones (and read them back), insert the samples, move the series' denormalised last values.
    """
    now = now or timezone.now()
    if isinstance(samples, SampleInput | dict):
        samples = [samples]
    items = [_as_input(raw) for raw in samples]
    if not items:
        return Recorded()
    if len(items) > MAX_BATCH:
        raise ServiceError(f"at most {MAX_BATCH} samples per request", "samples")

    by_key: dict[str, tuple[SampleInput, int]] = {}
    rows: list[tuple[str, datetime, float]] = []
    for index, item in enumerate(items):
        errors = sample_errors(item, now)
        if errors:
            name, message = next(iter(errors.items()))
            raise SampleError(message, index, name)
        item.labels = dict(item.labels or {})
        key = series_key(item.name, item.labels)
        first = by_key.setdefault(key, (item, index))
        if item.kind and first[0].kind and item.kind != first[0].kind:
            raise SampleError("the same series cannot be a gauge and a counter", index, "kind")
        if item.kind and not first[0].kind:
            by_key[key] = (item, first[1])
        rows.append((key, item.time or now, float(item.value)))

    latest: dict[str, tuple[datetime, float]] = {}
    for key, when, value in rows:
        if key not in latest or when >= latest[key][0]:
            latest[key] = (when, value)

    with transaction.atomic():
        series = {
            s.key: s
            for s in MetricSeries.objects.filter(team=team, key__in=list(by_key)).only(
                "id", "key", "kind", "last_at"
            )
        }
        for key, (item, index) in by_key.items():
            known = series.get(key)
            if known is not None and item.kind and item.kind != known.kind:
                raise SampleError(
                    f"{item.name} is recorded as a {known.kind}; send kind={known.kind}",
                    index,
                    "kind",
                )
        missing = [key for key in by_key if key not in series]
        if missing:
            MetricSeries.objects.bulk_create(
                [
                    MetricSeries(
                        team=team,
                        name=by_key[key][0].name,
                        labels=by_key[key][0].labels,
                        key=key,
                        kind=by_key[key][0].kind or MetricKind.GAUGE,
                        created_at=now,
                        last_at=latest[key][0],
                        last_value=latest[key][1],
                    )
                    for key in missing
                ],
                ignore_conflicts=True,  # created by a concurrent batch: use theirs
            )
            for s in MetricSeries.objects.filter(team=team, key__in=missing).only(
                "id", "key", "kind", "last_at"
            ):
                series[s.key] = s
        MetricSample.objects.bulk_create(
            [
                MetricSample(series_id=series[key].pk, time=when, value=value)
                for key, when, value in rows
            ],
            batch_size=500,
        )
        _advance_last_values(
            {
                series[key].pk: (when, value)
                for key, (when, value) in latest.items()
                if series[key].last_at is None or series[key].last_at <= when
            }
        )
    return Recorded(samples=len(rows), series=len(by_key), new_series=len(missing))


def _advance_last_values(latest: dict[int, tuple[datetime, float]], chunk: int = 200) -> None:
    """One UPDATE per chunk of series, each row only moving forward in time (a concurrent batch
    with newer samples may have got there first)."""
    pks = list(latest)
    for start in range(0, len(pks), chunk):
        part = pks[start : start + chunk]

        def newer(pk: int) -> Q:
            when = latest[pk][0]
            return Q(pk=pk) & (Q(last_at__isnull=True) | Q(last_at__lte=when))

        MetricSeries.objects.filter(pk__in=part).update(
            last_value=Case(
                *[When(newer(pk), then=Value(latest[pk][1])) for pk in part],
                default=F("last_value"),
                output_field=FloatField(),
            ),
            last_at=Case(
                *[When(newer(pk), then=Value(latest[pk][0])) for pk in part],
                default=F("last_at"),
                output_field=DateTimeField(),
            ),
        )
