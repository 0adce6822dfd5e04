"""The heartbeat vocabulary: statuses, problems (one alert each), ping kinds, limits.

A leaf module (no models), so services, views and the alerts module share it without cycles.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models

# A start and its finish further apart than this are not paired: no duration (Healthchecks'
# limit too), and a forgotten start does not make next month's run look slow.
MAX_DURATION = timedelta(days=7)
# The longest period, grace or time limit in seconds (a year, as Healthchecks allows): beyond it
# the schedule's arithmetic would leave the calendar.
MAX_PERIOD = 366 * 86400
# How many finished runs ``recent_outcomes`` remembers (the largest failure window).
OUTCOME_MEMORY = 100
SLUG_PATTERN = r"[a-z0-9_-]+"


class HeartbeatStatus(models.TextChoices):
    NEW = "new", "New"  # no run has finished yet: nothing is expected
    UP = "up", "Up"
    LATE = "late", "Late"  # shown, never stored: past the expected time, within the grace
    DOWN = "down", "Down"  # at least one problem
    PAUSED = "paused", "Paused"


class Problem(models.TextChoices):
    """Why a heartbeat is down; each has its own alert (``alertname``)."""

    MISSING = "missing", "HeartbeatMissing"
    FAILED = "failed", "HeartbeatFailed"
    TOO_LONG = "too_long", "HeartbeatRunTooLong"
    TOO_SHORT = "too_short", "HeartbeatRunTooShort"
    TOO_OFTEN = "too_often", "HeartbeatTooOften"


class PingKind(models.TextChoices):
    SUCCESS = "success", "Success"
    START = "start", "Start"
    FAIL = "fail", "Failure"
    LOG = "log", "Log"
    IGNORED = "ignored", "Ignored"  # arrived while paused with manual resume
