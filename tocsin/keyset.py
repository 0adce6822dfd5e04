"""Keyset (cursor) pages of large newest-first lists, and counts that stop counting.

``OFFSET 500000`` makes the database walk half a million rows to throw them away, and
``COUNT(*)`` over a million alerts reads them all; both grow with the table. A keyset page
instead starts from the last row the reader saw — ``WHERE (at, id) < (seen_at, seen_id)
ORDER BY at DESC, id DESC LIMIT n`` — which an index on ``(at, id)`` answers by reading n rows
wherever the page is. The id breaks ties, so rows that share a timestamp (a batch of alerts
stored in one transaction) are neither skipped nor shown twice, and rows that arrive while
someone pages on do not shift the pages they have not reached yet.

The cursor is opaque to clients (base64 of the position and the direction); the alerts and
incidents pages and their API lists use it through :func:`keyset_page`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.db.models import Q, QuerySet

# Lists say "1,000+" rather than count further: the exact figure costs a read of every match
# (30 ms for 10,000 alerts of a service at a million rows, and growing with the table), and
# nobody pages through a thousand rows by hand: they filter.
COUNT_CAP = 1_000


class BadCursor(ValueError):
    """A cursor that this code did not write (edited, truncated, from another list)."""


@dataclass(frozen=True)
class Cursor:
    at: datetime
    id: int
    # "after": the rows older than the position (the next page); "before": the newer ones.
    direction: str = "after"

    def encode(self) -> str:
        raw = f"{self.direction[0]}|{self.at.isoformat()}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            direction, at, pk = base64.urlsafe_b64decode(padded).decode().split("|")
            moment = datetime.fromisoformat(at)
            if moment.tzinfo is None or direction not in ("a", "b") or not pk.isdecimal():
                raise ValueError(token)
            # In UTC now, as the database compares it: 0001-01-01T00:00+01:00 has no UTC time.
            moment = moment.astimezone(UTC)
            if len(pk) > 19:  # past a 64-bit id
                raise ValueError(token)
            return cls(moment, int(pk), "after" if direction == "a" else "before")
        except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error) as error:
            raise BadCursor(token) from error


@dataclass
class KeysetPage:
    rows: list[Any]
    # Cursors to the older and the newer neighbour pages; None at either end of the list.
    next: Cursor | None = None
    previous: Cursor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_other_pages(self) -> bool:
        return self.next is not None or self.previous is not None


def keyset_page(
    queryset: QuerySet, at_field: str, size: int, cursor: Cursor | None = None
) -> KeysetPage:
    """One page of ``queryset`` newest first by (``at_field``, id), from ``cursor`` on.

    Costs one query of at most size + 1 rows, whatever the page's depth."""
    if cursor is None or cursor.direction == "after":
        ordered = queryset.order_by(f"-{at_field}", "-id")
        if cursor is not None:
            # The redundant ``at <= seen`` is the index range; the OR only settles the ties.
            ordered = ordered.filter(
                Q(**{f"{at_field}__lt": cursor.at})
                | Q(**{at_field: cursor.at, "id__lt": cursor.id}),
                **{f"{at_field}__lte": cursor.at},
            )
        rows = list(ordered[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        return KeysetPage(
            rows,
            next=_cursor(rows[-1], at_field, "after") if more else None,
            previous=_cursor(rows[0], at_field, "before") if cursor is not None and rows else None,
        )
    ordered = queryset.order_by(at_field, "id").filter(
        Q(**{f"{at_field}__gt": cursor.at}) | Q(**{at_field: cursor.at, "id__gt": cursor.id}),
        **{f"{at_field}__gte": cursor.at},
    )
    rows = list(ordered[: size + 1])
    more = len(rows) > size
    rows = rows[:size][::-1]
    if not rows:
        return KeysetPage([])
    return KeysetPage(
        rows,
        next=_cursor(rows[-1], at_field, "after"),
        previous=_cursor(rows[0], at_field, "before") if more else None,
    )


def _cursor(row: Any, at_field: str, direction: str) -> Cursor:
    return Cursor(getattr(row, at_field), row.pk, direction)


class CursorField(forms.CharField):
    """The ``cursor`` a list page's Newer/Older links carry; a cursor this code did not write
    is a field error (400), not a 500 or a silently different page."""

    def to_python(self, value: Any) -> Cursor | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return Cursor.decode(text)
        except BadCursor:
            raise forms.ValidationError(
                "not a cursor of this list; follow the page links"
            ) from None


def capped_count(queryset: QuerySet, cap: int | None = None) -> tuple[int, bool]:
    """How many rows match, counted up to ``cap`` (``COUNT_CAP``): (count, exact). ``(cap,
    False)`` means "more than cap"; the database stops after cap + 1 rows instead of reading
    every match."""
    cap = COUNT_CAP if cap is None else cap
    n = queryset.order_by()[: cap + 1].count()
    return (cap, False) if n > cap else (n, True)
