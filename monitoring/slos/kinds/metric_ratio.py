"""SLI "metric_ratio": good events / total events, from recorded metric samples.

Each side is a selector in Prometheus notation, ``http_requests_total{code!~"5.."}``, summed
over every series of the SLO's team that it matches. What a bucket counts depends on the
series' kind:

- **counters**: the increase over the bucket (its last value minus the previous bucket's last).
  A value below the previous last means the counter restarted from zero: the increase is what
  it rose before (up to the bucket's max) plus the value it ended at, exact for one restart per
  bucket (two restarts within one minute, or one hour of the stored rollups, undercount).
- **gauges**: the sum of the samples in the bucket (a gauge per scrape of "requests in the last
  interval", say).

Buckets are read with ``monitoring.metrics.rollups.series_points``: 1-hour rollups for hours and
days, 1-minute rollups (or raw samples not rolled up yet) for minutes. A bucket in which the
total side has no sample is unmeasured; a missing good side counts as none good.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitoring.matchers import (
    Matcher,
    MatcherError,
    format_matchers,
    matches_all,
    parse_matchers,
)
from monitoring.slos.registry import ConfigError, Indicator, Tally

SELECTOR = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{.*\})?\s*", re.S)
STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = ()

    def __str__(self) -> str:
        return self.metric + (format_matchers(self.matchers) if self.matchers else "")


@dataclass(frozen=True)
class RatioConfig:
    good: Selector
    total: Selector


def parse_selector(text: Any) -> Selector:
    if not isinstance(text, str) or not text.strip():
        raise MatcherError('a selector such as http_requests_total{code!~"5.."}')
    match = SELECTOR.fullmatch(text)
    if not match:
        raise MatcherError(
            "a metric name (letters, digits, _ and :), optionally followed by {label matchers}"
        )
    matchers = parse_matchers(match.group(2)) if match.group(2) else []
    return Selector(match.group(1), tuple(matchers))


def _increases(points: list[dict[str, Any]], previous: float | None) -> dict[datetime, float]:
    """A counter's increase per bucket from each bucket's min, max and last.

    Below the previous bucket's last value, the counter restarted (from zero) inside the
    bucket: the increase is what it rose before the restart (up to the bucket's max, when that
    was not reached after it) plus the value it ended at. Exact for one restart per bucket.
    """
    out: dict[datetime, float] = {}
    for point in points:
        last, low, high = point["last"], point["min"], point["max"]
        if previous is None:
            out[point["time"]] = max(0.0, last - low)
        elif low < previous:
            out[point["time"]] = (max(0.0, high - previous) if high > last else 0.0) + last
        else:
            out[point["time"]] = last - previous
        previous = last
    return out


def _bucket_sums(
    team_id: int, selector: Selector, start: datetime, end: datetime, step: str
) -> dict[datetime, float]:
    """The selector's events per bucket start (UTC), summed over its series."""
    from monitoring.metrics.rollups import series_points
    from monitoring.models import MetricKind, MetricSeries, Resolution

    resolution = Resolution.MINUTE if step == "minute" else Resolution.HOUR
    one = timedelta(seconds=Resolution(resolution).seconds)
    sums: dict[datetime, float] = {}
    for series in MetricSeries.objects.filter(team_id=team_id, name=selector.metric):
        if not matches_all(selector.matchers, series.labels or {}):
            continue
        counter = series.kind == MetricKind.COUNTER
        since = start - one if counter else start
        points = series_points(series, since=since, until=end, resolution=resolution)
        if counter:
            previous = None
            if points and points[0]["time"] < start:
                previous = points.pop(0)["last"]
            values = _increases(points, previous)
        else:
            values = {p["time"]: p["avg"] * p["count"] for p in points}
        for when, value in values.items():
            if step == "day":
                when = when.replace(hour=0)
            sums[when] = sums.get(when, 0.0) + value
    return sums


class MetricRatio(Indicator):
    kind = "metric_ratio"
    label = "Metric ratio (good / total events)"
    unit = "events"

    def parse(self, raw: Any, service: Any) -> RatioConfig:
        if not isinstance(raw, dict):
            raise ConfigError({"good": 'settings are an object: {"good": "…", "total": "…"}'})
        errors = {key: "unknown setting" for key in raw if key not in ("good", "total")}
        found: dict[str, Selector] = {}
        for side in ("good", "total"):
            try:
                found[side] = parse_selector(raw.get(side))
            except MatcherError as exc:
                errors[side] = str(exc)
        if errors:
            raise ConfigError(errors)
        return RatioConfig(good=found["good"], total=found["total"])

    def dump(self, config: RatioConfig) -> dict[str, Any]:
        return {"good": str(config.good), "total": str(config.total)}

    def counts(
        self, service: Any, config: RatioConfig, start: datetime, end: datetime, step: str
    ) -> list[Tally | None]:
        size = (end - start) // STEP[step]
        good = _bucket_sums(service.team_id, config.good, start, end, step)
        total = _bucket_sums(service.team_id, config.total, start, end, step)
        out: list[Tally | None] = []
        for index in range(size):
            when = start + index * STEP[step]
            if when not in total:
                out.append(None)
                continue
            all_ = max(0.0, total[when])
            out.append(Tally(min(max(0.0, good.get(when, 0.0)), all_), all_))
        return out

    def describe(self, config: RatioConfig) -> str:
        return f"{config.good} / {config.total}"
