"""Calendar feeds: every schedule and every person's shifts as iCalendar (RFC 5545), behind signed
tokens.

A feed is read by calendar apps that cannot log in, so its URL carries a signed token naming the
schedule (or person) and the user whose view it shows; rotating SECRET_KEY revokes them all."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone

from incidents.models import Schedule
from incidents.oncall import rotations
from tocsin.permissions import Action, can, scope

# --- feed tokens --------------------------------------------------------------------------------

FEED_PAST = timedelta(days=7)
FEED_FUTURE = timedelta(days=60)


def _signer(scope_name: str) -> signing.Signer:
    return signing.Signer(salt=f"tocsin.incidents.ical.{scope_name}", sep=".")


def schedule_feed_token(schedule: Schedule, user: Any) -> str:
    """The secret part of ``user``'s feed URL for one schedule."""
    return _signer(f"schedule.{schedule.pk}").sign(str(user.pk))


def user_feed_token(user: Any) -> str:
    """The secret part of ``user``'s feed URL for their own shifts in every schedule."""
    return _signer("user").sign(str(user.pk))


def _feed_user(token: str, scope_name: str) -> Any:
    try:
        user_id = _signer(scope_name).unsign(token)
    except signing.BadSignature:
        raise Http404("no such feed") from None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise Http404("no such feed")
    return user


# --- iCalendar (RFC 5545) -----------------------------------------------------------------------


def ics_escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def ics_fold(line: str) -> str:
    """Fold a content line into chunks of at most 75 octets, never splitting a character."""
    encoded = line.encode()
    if len(encoded) <= 75:
        return line
    parts: list[str] = []
    current = ""
    size = 0
    limit = 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74  # continuation lines start with a space
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _ics_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def render_ics(name: str, events: list[dict[str, Any]]) -> str:
    """events: dicts with uid, start, end, summary, description."""
    stamp = _ics_time(timezone.now())
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Tocsin//On-call schedules//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ics_escape(name)}",
    ]
    for event in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{event['uid']}",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{_ics_time(event['start'])}",
            f"DTEND:{_ics_time(event['end'])}",
            f"SUMMARY:{ics_escape(event['summary'])}",
            f"DESCRIPTION:{ics_escape(event['description'])}",
            "TRANSP:OPAQUE",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(ics_fold(line) + "\r\n" for line in lines)


def _shift_event(schedule: Schedule, shift: rotations.Shift, host: str) -> dict[str, Any]:
    # Stable across refreshes: the same shift (schedule, person, start) keeps its UID.
    key = f"{schedule.pk}:{shift.user.pk}:{shift.start.timestamp():.0f}"
    uid = hashlib.sha256(key.encode()).hexdigest()[:32]
    who = shift.user.get_full_name() or shift.user.get_username()
    return {
        "uid": f"{uid}@{host}",
        "start": shift.start,
        "end": shift.end,
        "summary": f"On call: {schedule.name} ({who})",
        "description": f"{schedule.team.name}, {schedule.name}; from {shift.source}",
    }


def _ics_response(name: str, events: list[dict[str, Any]]) -> HttpResponse:
    response = HttpResponse(render_ics(name, events), content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response


def schedule_ical(request: HttpRequest, pk: int, token: str) -> HttpResponse:
    """Every shift of one schedule, for whoever holds the token."""
    user = _feed_user(token, f"schedule.{pk}")
    schedule = (
        rotations.schedules_with_layers(Schedule.objects.select_related("team"))
        .filter(pk=pk)
        .first()
    )
    if schedule is None or not can(user, Action.VIEW, schedule):
        raise Http404("no such feed")
    now = timezone.now()
    host = request.get_host().split(":")[0] or "tocsin"
    found = rotations.shifts(schedule, now - FEED_PAST, now + FEED_FUTURE, merge_sources=True)
    events = [_shift_event(schedule, shift, host) for shift in found]
    return _ics_response(f"On call: {schedule.name}", events)


def user_ical(request: HttpRequest, token: str) -> HttpResponse:
    """The token holder's own shifts in every schedule of every team they are in."""
    user = _feed_user(token, "user")
    now = timezone.now()
    start, end = now - FEED_PAST, now + FEED_FUTURE
    schedules = rotations.with_window_overrides(
        rotations.schedules_with_layers(
            scope(Schedule.objects.select_related("team"), user, Action.VIEW)
        ),
        start,
        end,
    ).order_by("team__name", "name")
    host = request.get_host().split(":")[0] or "tocsin"
    events = [
        _shift_event(schedule, shift, host)
        for schedule in schedules
        for shift in rotations.shifts(schedule, start, end, merge_sources=True)
        if shift.user.pk == user.pk
    ]
    return _ics_response(f"My on-call shifts ({user.get_username()})", events)
