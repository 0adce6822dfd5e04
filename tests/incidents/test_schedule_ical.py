"""iCal feeds: RFC 5545 shape (CRLF, folding, escaping, UTC), events match shifts, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from incidents.models import Rotation
from incidents.oncall import rotations
from incidents.oncall import services as oncall
from incidents.oncall.ical import (
    ics_escape,
    ics_fold,
    render_ics,
    schedule_feed_token,
    user_feed_token,
)
from tocsin.models import Membership


def unfold(text: str) -> list[str]:
    """Parse back: CRLF line ends, continuation lines start with one space."""
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    raw = text.split("\r\n")[:-1]
    lines: list[str] = []
    for line in raw:
        assert len(line.encode()) <= 75, line
        if line.startswith(" "):
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


def events_of(text: str) -> list[dict[str, str]]:
    events, current = [], None
    for line in unfold(text):
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            events.append(current)
            current = None
        elif current is not None:
            key, _, value = line.partition(":")
            current[key] = value
    return events


def ical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@pytest.fixture
def schedule(crew):
    crew.responder.first_name, crew.responder.last_name = "Réka", "Nagy, Jr.; \\ on call"
    crew.responder.save()
    schedule = oncall.create_schedule(
        crew.team,
        "Payments primary, with a long name to force line folding; really",
        time_zone="Europe/Berlin",
    )
    oncall.add_layer(
        schedule,
        name="Days",
        participants=[crew.responder, crew.manager],
        rotation=Rotation.DAILY,
        starts_at=timezone.now() - timedelta(days=3),
    )
    return schedule


def test_fold_keeps_lines_within_75_octets_and_never_splits_a_character():
    line = "SUMMARY:" + "é" * 100
    folded = ics_fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts)
    assert "".join([parts[0], *(p[1:] for p in parts[1:])]) == line
    assert ics_fold("SHORT:x") == "SHORT:x"


def test_escape():
    assert ics_escape("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def test_render_is_crlf_and_parses_back():
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    text = render_ics(
        "x",
        [
            {
                "uid": "1@t",
                "start": start,
                "end": start + timedelta(hours=1),
                "summary": "a, b",
                "description": "d",
            }
        ],
    )
    events = events_of(text)
    assert events[0]["DTSTART"] == "20260101T090000Z"
    assert events[0]["SUMMARY"] == "a\\, b"


def test_schedule_feed_lists_the_shifts(crew, client, schedule):
    url = f"/schedules/{schedule.pk}/ical/{schedule_feed_token(schedule, crew.viewer)}.ics"
    response = client.get(url)  # no login: calendar apps cannot log in
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    text = response.content.decode()
    lines = unfold(text)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert any(len(line.encode()) > 75 for line in lines)  # something was folded
    events = events_of(text)
    now = timezone.now()
    expected = rotations.shifts(
        schedule, now - timedelta(days=7), now + timedelta(days=60), merge_sources=True
    )
    assert len(events) == len(expected) > 2
    for event, shift in zip(events, expected, strict=True):
        assert event["DTSTART"] == ical_time(shift.start)
        assert event["DTEND"] == ical_time(shift.end)
    assert "Nagy\\, Jr.\\; \\\\ on call" in events[0]["SUMMARY"] + events[1]["SUMMARY"]
    # UIDs are stable across fetches and unique.
    again = events_of(client.get(url).content.decode())
    assert [e["UID"] for e in again] == [e["UID"] for e in events]
    assert len({e["UID"] for e in events}) == len(events)


def test_user_feed_lists_only_that_users_shifts(crew, client, schedule):
    response = client.get(f"/oncall/{user_feed_token(crew.responder)}.ics")
    assert response.status_code == 200
    events = events_of(response.content.decode())
    now = timezone.now()
    mine = [
        s
        for s in rotations.shifts(schedule, now - timedelta(days=7), now + timedelta(days=60))
        if s.user == crew.responder
    ]
    assert [e["DTSTART"] for e in events] == [ical_time(s.start) for s in mine]
    assert events and all("Réka" in e["SUMMARY"] for e in events)


def test_wrong_or_foreign_tokens_are_404(crew, client, schedule):
    good = schedule_feed_token(schedule, crew.viewer)
    assert client.get(f"/schedules/{schedule.pk}/ical/{good[:-2]}xx.ics").status_code == 404
    assert client.get(f"/schedules/{schedule.pk}/ical/garbage.ics").status_code == 404
    # A token for one schedule does not open another, nor the user feed.
    other = oncall.create_schedule(crew.team, "Other")
    assert client.get(f"/schedules/{other.pk}/ical/{good}.ics").status_code == 404
    assert client.get(f"/oncall/{good}.ics").status_code == 404
    # An outsider's token is signed but they cannot view the team.
    outsider = schedule_feed_token(schedule, crew.outsider)
    assert client.get(f"/schedules/{schedule.pk}/ical/{outsider}.ics").status_code == 404


def test_leaving_the_team_ends_feed_access(crew, client, schedule):
    token = schedule_feed_token(schedule, crew.viewer)
    Membership.objects.filter(user=crew.viewer).delete()
    assert client.get(f"/schedules/{schedule.pk}/ical/{token}.ics").status_code == 404
    crew.responder.is_active = False
    crew.responder.save()
    assert client.get(f"/oncall/{user_feed_token(crew.responder)}.ics").status_code == 404
