"""When a heartbeat's next success is expected: a fixed period, or a cron expression read in
the heartbeat's own time zone.

Cron expressions and zones are read by ``tocsin.cron`` (Debian cron's behaviour across DST).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError

from tocsin.cron import (  # noqa: F401  (the heartbeat's vocabulary, where callers look for it)
    SEARCH_ERRORS,
    common_timezones,
    humanize,
    next_cron_time,
    validate_cron,
    validate_timezone,
    zone,
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def next_expected(
    *, period: int | None, cron: str, tz_name: str, after: datetime
) -> datetime | None:
    """When the next success is due, counting from a finished run at ``after``."""
    if cron:
        try:
            return next_cron_time(cron, tz_name, after)
        except (*SEARCH_ERRORS, ValidationError):
            return None  # an expression saved before validation tightened: never "missing"
    if period:
        return after + timedelta(seconds=period)
    return None


def parse_duration(text: str) -> int:
    """ "90", "90s", "15m", "2h", "1d", "1w" → seconds; ValueError on anything else."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
