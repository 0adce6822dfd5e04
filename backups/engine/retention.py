"""Which snapshots a retention policy keeps: restic's ``forget --keep-*`` rules, exactly.

Operators know restic's policy language and its ``forget --dry-run`` output, so a plan's
retention means what the same flags mean to restic (0.18), reasons included:

- Snapshots are walked newest first (ties keep the order they were given in, as restic's stable
  sort does).
- ``last n`` keeps the n newest snapshots.
- ``hourly``/``daily``/``weekly``/``monthly``/``yearly n``: each policy keeps a snapshot when its
  bucket (hour, day, ISO week, month, year of the snapshot's *own* wall-clock time) differs from
  the bucket of the snapshot that policy kept before it, until n buckets are used — i.e. the
  newest snapshot of each of the n newest buckets that have snapshots. ``-1`` (restic's
  ``unlimited``) never runs out.
- The oldest snapshot is kept too when a policy still has buckets left when it reaches it, even
  if its bucket is already used ("oldest daily snapshot"): a young history keeps its beginning
  instead of losing it to a policy meant for longer spans.
- ``within "2y5m7d3h"`` keeps every snapshot strictly newer than the newest snapshot minus that
  duration, with calendar arithmetic (Go's ``AddDate``: month ends overflow, 31 March minus a
  month is 2 or 3 March) for years, months and days, then elapsed hours.
- ``within_hourly``/``_daily``/… keep the newest snapshot of each bucket inside such a window
  (and the oldest snapshot when it is inside the window).
- A snapshot is kept when any rule keeps it; ``Decision.reasons`` lists them in restic's words
  and order.

Two choices of ours: an empty policy keeps everything (restic refuses to apply one — it would
forget every snapshot — and a plan without retention means "keep all"), and durations refuse
negative parts and repeated units, which restic's parser accepts but which can only surprise
(``-1d`` would push the window past the newest snapshot and keep nothing).

Buckets use each datetime's own tzinfo: the caller converts to the plan's time zone first, so a
run at 00:30 in Berlin on 1 March counts for March, not for February as it would in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Generic, TypeVar

T = TypeVar("T")

UNLIMITED = -1
"""A keep count meaning "every bucket" (restic's ``--keep-daily unlimited``)."""

_COUNTS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
_WINDOWS = (
    "within",
    "within_hourly",
    "within_daily",
    "within_weekly",
    "within_monthly",
    "within_yearly",
)

_DURATION_PART = re.compile(r"([0-9]+)([a-zA-Z]?)")
_UNIT_FIELDS = {"y": "years", "m": "months", "d": "days", "h": "hours"}


@dataclass(frozen=True)
class Duration:
    """A restic duration: calendar years, months and days, then hours."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    def is_zero(self) -> bool:
        return not (self.years or self.months or self.days or self.hours)

    def __str__(self) -> str:
        # restic's spelling, in reasons too: units in y, m, d, h order, zero parts left out.
        parts = (
            (self.years, "y"),
            (self.months, "m"),
            (self.days, "d"),
            (self.hours, "h"),
        )
        return "".join(f"{n}{unit}" for n, unit in parts if n)


@dataclass(frozen=True)
class Policy:
    """A plan's ``--keep-*`` options. Counts: 0 = off, n > 0, or -1 (UNLIMITED). Windows: a
    restic duration such as ``"1y2m3d4h"``, or ``""`` for off."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: str = ""
    within_hourly: str = ""
    within_daily: str = ""
    within_weekly: str = ""
    within_monthly: str = ""
    within_yearly: str = ""

    def __post_init__(self) -> None:
        # Validate on construction so a bad plan fails when saved, not at 3 a.m. when pruning.
        for name in _COUNTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Policy.{name} must be an int, got {value!r}")
            if value < UNLIMITED:
                raise ValueError(
                    f"Policy.{name} must be 0 or more, or -1 for unlimited; got {value}"
                )
        for name in _WINDOWS:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"Policy.{name} must be a duration string, got {value!r}")
            if value.strip():
                try:
                    self.parse_duration(value)
                except ValueError as error:
                    raise ValueError(f"Policy.{name}: {error}") from None

    def is_empty(self) -> bool:
        """No rule set (zero durations such as ``"0d"`` count as unset, as in restic)."""
        return not any(getattr(self, name) for name in _COUNTS) and all(
            self._window(name).is_zero() for name in _WINDOWS
        )

    def _window(self, name: str) -> Duration:
        text = getattr(self, name)
        return self.parse_duration(text) if text.strip() else Duration()

    @classmethod
    def parse_duration(cls, text: str) -> Duration:
        """Parse restic's duration syntax: numbers with units y, m, d, h in any order, e.g.
        ``"2y5m7d3h"`` or ``"7d"``; surrounding spaces are ignored. ValueError says what is
        wrong."""
        stripped = text.strip()
        if not stripped:
            raise ValueError("empty duration; write e.g. '7d', '1m' or '1y2m3d4h'")
        values: dict[str, int] = {}
        position = 0
        while position < len(stripped):
            match = _DURATION_PART.match(stripped, position)
            if match is None:
                found = stripped[position]
                hint = " (durations cannot be negative)" if found == "-" else ""
                raise ValueError(
                    f"invalid duration {text!r}: expected a number at {stripped[position:]!r}"
                    + hint
                )
            number, unit = int(match.group(1)), match.group(2)
            if not unit:
                raise ValueError(
                    f"invalid duration {text!r}: {number} has no unit (use y, m, d or h)"
                )
            if unit not in _UNIT_FIELDS:
                hint = f"; for weeks write {number * 7}d" if unit == "w" else ""
                raise ValueError(
                    f"invalid duration {text!r}: unknown unit {unit!r} after {number} "
                    f"(use y, m, d or h){hint}"
                )
            if unit in values:
                raise ValueError(f"invalid duration {text!r}: unit {unit!r} given twice")
            values[unit] = number
            position = match.end()
        return Duration(**{_UNIT_FIELDS[unit]: number for unit, number in values.items()})


@dataclass(frozen=True)
class Decision(Generic[T]):
    """What the policy does with one snapshot, and why (restic's reasons, e.g. "daily
    snapshot", "within 7d", "oldest yearly snapshot"; empty when it is removed)."""

    snapshot: T
    keep: bool
    reasons: tuple[str, ...]


# Bucket keys of a snapshot's wall-clock time; ``nr`` (its position, newest first) makes every
# snapshot its own bucket for ``last``.
_BucketKey = Callable[[datetime, int], Hashable]
_BUCKETS: dict[str, _BucketKey] = {
    "last": lambda t, nr: nr,
    "hourly": lambda t, nr: (t.year, t.month, t.day, t.hour),
    "daily": lambda t, nr: (t.year, t.month, t.day),
    "weekly": lambda t, nr: t.isocalendar()[:2],
    "monthly": lambda t, nr: (t.year, t.month),
    "yearly": lambda t, nr: t.year,
}


class _Rule:
    """One policy's state during the walk: buckets left (None for a window rule, which has no
    count) and the bucket it kept last."""

    def __init__(self, bucket: str, remaining: int | None, reason: str) -> None:
        self.key = _BUCKETS[bucket]
        self.remaining = remaining
        self.reason = reason
        self.last: Hashable = None

    def take(self, local: datetime, nr: int, is_oldest: bool) -> str | None:
        """The reason when this rule keeps the snapshot (a new bucket, or the oldest snapshot
        while the rule still has buckets left), else None."""
        key = self.key(local, nr)
        if key == self.last and not is_oldest:
            return None
        reason = f"oldest {self.reason}" if key == self.last else self.reason
        self.last = key
        if self.remaining is not None and self.remaining > 0:
            self.remaining -= 1
        return reason


def apply(
    policy: Policy,
    snapshots: Iterable[T],
    *,
    time_of: Callable[[T], datetime],
    now: datetime | None = None,
) -> list[Decision[T]]:
    """Decide every snapshot, newest first.

    ``time_of`` gives a snapshot's aware datetime in the time zone its buckets are counted in.
    Windows (``within*``) reach back from the newest snapshot, not from now, so a backup that
    stopped running does not age its last snapshots out. With ``now``, snapshots dated after it
    (a skewed clock) are not taken as the newest, as restic does with the current time.
    """
    if now is not None and (now.tzinfo is None or now.utcoffset() is None):
        raise ValueError(f"now must be an aware datetime, got {now!r}")
    entries: list[tuple[T, datetime, int]] = []
    for snapshot in snapshots:
        given = time_of(snapshot)
        if given.tzinfo is None or given.utcoffset() is None:
            raise ValueError(f"time_of gave a naive datetime ({given!r}); give an aware one")
        instant = given.astimezone(UTC)
        # Through UTC and back: a wall time the zone skips (02:30 on a spring-forward night)
        # becomes the instant's real local time, as restic only ever has instants.
        entries.append((snapshot, instant.astimezone(given.tzinfo), _micros(instant)))
    entries.sort(key=lambda entry: entry[2], reverse=True)  # stable: ties keep their order

    if policy.is_empty():
        return [Decision(snapshot, True, ("policy is empty",)) for snapshot, _, _ in entries]
    if not entries:
        return []

    reference = _reference(entries, now)
    within = policy._window("within")
    within_cutoff = _cutoff(reference, within)
    counted = [
        _Rule(name, getattr(policy, name), f"{name} snapshot")
        for name in _COUNTS
        if getattr(policy, name) != 0
    ]
    windowed: list[tuple[_Rule, int]] = []
    for name in _WINDOWS[1:]:
        duration = policy._window(name)
        cutoff = _cutoff(reference, duration)
        if cutoff is not None:
            bucket = name.removeprefix("within_")
            windowed.append((_Rule(bucket, None, f"{bucket} within {duration}"), cutoff))

    decisions = []
    oldest = len(entries) - 1
    for nr, (snapshot, local, micros) in enumerate(entries):
        reasons = []
        if within_cutoff is not None and micros > within_cutoff:
            reasons.append(f"within {within}")
        for rule in counted:
            if rule.remaining != 0 and (reason := rule.take(local, nr, nr == oldest)):
                reasons.append(reason)
        for rule, cutoff in windowed:
            if micros > cutoff and (reason := rule.take(local, nr, nr == oldest)):
                reasons.append(reason)
        decisions.append(Decision(snapshot, bool(reasons), tuple(reasons)))
    return decisions


def _reference(entries: list[tuple[T, datetime, int]], now: datetime | None) -> datetime:
    """The newest snapshot's local time (before ``now`` when given) that windows reach back
    from. With every snapshot in the future restic falls back to Go's zero time (year 1), which
    puts all of them inside any window; so do we."""
    if now is None:
        return entries[0][1]
    now_micros = _micros(now)
    for _, local, micros in entries:
        if micros < now_micros:
            return local
    return datetime(1, 1, 1, tzinfo=UTC)


_MICROS_PER_DAY = 86_400_000_000
_MICROS_PER_HOUR = 3_600_000_000


def _micros(instant: datetime) -> int:
    """Microseconds since 0001-01-01 UTC. Integers, because a window may reach past datetime's
    years 1..9999 (restic's own tests use ``9999y``)."""
    utc = instant.astimezone(UTC)
    seconds = utc.hour * 3600 + utc.minute * 60 + utc.second
    return (utc.toordinal() - 1) * _MICROS_PER_DAY + seconds * 1_000_000 + utc.microsecond


def _cutoff(reference: datetime, duration: Duration) -> int | None:
    """``reference - duration`` in microseconds since 0001-01-01 UTC, restic's way (snapshots
    strictly after it are inside the window); None for a zero (unset) duration.

    Go's ``AddDate(-y, -m, -d)``: the month is normalised into the year, then the day is counted
    from the first of that month (31 March minus 1m is "31 February" = 3 March), keeping the
    wall-clock time in the reference's zone; then ``Add(-h hours)`` in elapsed time.
    """
    if duration.is_zero():
        return None
    month_index = reference.month - 1 - duration.months
    year = reference.year - duration.years + month_index // 12
    month = month_index % 12 + 1
    # The first of the month for any year: 400 Gregorian years are exactly 146097 days.
    cycles, year_in_cycle = divmod(year - 1, 400)
    first_of_month = date(year_in_cycle + 1, month, 1).toordinal() + cycles * 146_097
    ordinal = first_of_month + reference.day - 1 - duration.days

    wall_time = reference.time()  # naive: hour, minute, second, microsecond
    offset = reference.utcoffset() or timedelta(0)
    if 1 <= ordinal <= date.max.toordinal() and reference.tzinfo is not None:
        wall = datetime.combine(date.fromordinal(ordinal), wall_time)
        offset = _go_offset(wall, reference.tzinfo, offset)
    seconds = wall_time.hour * 3600 + wall_time.minute * 60 + wall_time.second
    return (
        (ordinal - 1) * _MICROS_PER_DAY
        + seconds * 1_000_000
        + wall_time.microsecond
        - offset // timedelta(microseconds=1)
        - duration.hours * _MICROS_PER_HOUR
    )


def _go_offset(wall: datetime, zone: tzinfo, fallback: timedelta) -> timedelta:
    """The UTC offset Go's ``time.Date`` gives a wall-clock time in ``zone``.

    Go takes the offset in force at the instant "wall read as UTC"; if the wall time minus that
    offset falls outside that offset's period, it takes the offset in force there instead. This
    settles skipped and repeated wall times (DST changes) the way restic's windows do.
    """
    try:
        as_utc = wall.replace(tzinfo=UTC)
        first = as_utc.astimezone(zone).utcoffset()
        if first is None:
            return fallback
        second = (as_utc - first).astimezone(zone).utcoffset()
    except OverflowError:  # within a day of datetime's limits
        return fallback
    return second if second is not None else first
