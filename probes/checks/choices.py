"""The checks' vocabulary: states, result statuses, rollup periods, limits, retention.

A leaf module (no models). Retention and the probe location are read from settings when set
(``getattr(settings, "TOCSIN_…", default)``), so a deployment tunes them without code.
"""

from __future__ import annotations

import os
from datetime import timedelta

from django.conf import settings
from django.db import models

MIN_INTERVAL = 10  # seconds
MAX_TIMEOUT = 60.0  # seconds; the claim lease is sized from it
# "X of the last Y runs" remembers this many outcomes per slot.
OUTCOME_MEMORY = 50
# A claim outlives the longest run (two observations with a quick retry, plus margin): a worker
# killed mid-run leaves its slots claimed this long, then another worker takes them again.
LEASE = timedelta(seconds=2 * MAX_TIMEOUT + 30)
# Where any worker may run a check that requires no particular location.
ANY_LOCATION = "*"

# Retention defaults (overridable in settings).
RESULT_RETENTION = timedelta(hours=48)
MINUTE_RETENTION = timedelta(days=14)
HOUR_RETENTION = timedelta(days=90)
DAY_RETENTION = timedelta(days=730)


def retention(name: str, default: timedelta) -> timedelta:
    """``TOCSIN_CHECK_<name>`` as a number of seconds or a timedelta; the default otherwise."""
    value = getattr(settings, f"TOCSIN_CHECK_{name}", None)
    if value is None:
        return default
    return value if isinstance(value, timedelta) else timedelta(seconds=int(value))


def probe_location() -> str:
    """This worker's location: the ``TOCSIN_PROBE_LOCATION`` setting or environment variable."""
    return (
        getattr(settings, "TOCSIN_PROBE_LOCATION", None)
        or os.environ.get("TOCSIN_PROBE_LOCATION")
        or "default"
    )


class CheckState(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"  # no verdict yet, or no run for a while (prober down)
    UP = "up", "Up"
    DEGRADED = "degraded", "Degraded"  # up, but a softer condition failed (slow, …)
    DOWN = "down", "Down"
    PAUSED = "paused", "Paused"


class ResultStatus(models.TextChoices):
    UP = "up", "Up"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"
    # No run happened for one or more slots (the prober was down or overloaded): never counted
    # as the target's downtime.
    UNKNOWN = "unknown", "Unknown"


class Period(models.TextChoices):
    MINUTE = "m", "Minute"
    HOUR = "h", "Hour"
    DAY = "d", "Day"


PERIOD_LENGTH = {
    Period.MINUTE: timedelta(minutes=1),
    Period.HOUR: timedelta(hours=1),
    Period.DAY: timedelta(days=1),
}
