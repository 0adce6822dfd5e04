"""Metrics and threshold rules: samples in, rollups out, alerts from rules.

- ``samples``: validating and recording samples (the API, the host collector, probes);
- ``host``: the host collector (every minute, under the built-in system team);
- ``rollups``: downsampling, retention, and reading a series at any resolution;
- ``rules``: threshold rules evaluated every minute, raising and resolving alerts through the
  pipeline.
"""

from monitoring.metrics.host import (
    SYSTEM_TEAM_NAME,
    SYSTEM_TEAM_SLUG,
    collect_host_metrics,
    host_samples,
    system_team,
)
from monitoring.metrics.rollups import (
    HOUR_RETENTION,
    MAX_POINTS,
    MINUTE_RETENTION,
    MINUTE_ROLLUP_AFTER,
    RAW_RETENTION,
    RAW_ROLLUP_AFTER,
    SERIES_RETENTION,
    cursor_times,
    downsample_and_prune,
    floor_time,
    series_points,
)
from monitoring.metrics.samples import (
    MAX_BATCH,
    MAX_SAMPLE_AGE,
    MAX_SAMPLE_AHEAD,
    Recorded,
    SampleError,
    SampleInput,
    kind_error,
    record_samples,
    sample_errors,
    time_error,
    value_error,
)

__all__ = [
    "HOUR_RETENTION",
    "MAX_BATCH",
    "MAX_POINTS",
    "MAX_SAMPLE_AGE",
    "MAX_SAMPLE_AHEAD",
    "MINUTE_RETENTION",
    "MINUTE_ROLLUP_AFTER",
    "RAW_RETENTION",
    "RAW_ROLLUP_AFTER",
    "SERIES_RETENTION",
    "SYSTEM_TEAM_NAME",
    "SYSTEM_TEAM_SLUG",
    "Recorded",
    "SampleError",
    "SampleInput",
    "collect_host_metrics",
    "cursor_times",
    "downsample_and_prune",
    "floor_time",
    "host_samples",
    "kind_error",
    "record_samples",
    "sample_errors",
    "series_points",
    "system_team",
    "time_error",
    "value_error",
]
