"""Maintenance window pages: the team's list with next occurrences, create, edit, delete."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.models import MaintenanceWindow, Service
from monitoring.suppression import create_maintenance_window
from tests.monitoring.page_support import logged_in, queries_for
from tocsin.models import Event

BERLIN = "Europe/Berlin"


def one_off(service, title="DB upgrade", hours=(1, 3)) -> MaintenanceWindow:
    now = timezone.now()
    return create_maintenance_window(
        service=service,
        title=title,
        starts_at=now + timedelta(hours=hours[0]),
        ends_at=now + timedelta(hours=hours[1]),
    )


def weekly(service, title="Nightly backup", days=(0,)) -> MaintenanceWindow:
    return create_maintenance_window(
        service=service,
        title=title,
        weekdays=list(days),
        start_time=time(2, 0),
        duration=timedelta(hours=2),
        time_zone=BERLIN,
    )


def listed(response) -> list[str]:
    return re.findall(r'data-window-id="(\d+)"', response.content.decode())


def window_events() -> int:
    return Event.objects.filter(kind__startswith="maintenance.").count()


def once_data(service, **overrides) -> dict:
    return {
        "service": str(service.pk),
        "title": "Failover test",
        "description": "",
        "kind": "once",
        "time_zone": BERLIN,
        "starts_at": "2030-01-10T09:00",
        "ends_at": "2030-01-10T11:30",
        "start_time": "",
        "duration": "",
        **overrides,
    }


# --- next occurrence (the model) ------------------------------------------------------------------


def test_next_occurrence_of_a_weekly_window_keeps_local_time_across_dst():
    window = MaintenanceWindow(
        weekdays=[6], start_time=time(2, 30), duration=timedelta(hours=1), time_zone=BERLIN
    )
    # Saturday 2026-03-28 12:00 UTC: the next Sunday is the day clocks go forward (CET → CEST).
    start, end = window.next_occurrence(datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert (start, end) == (
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 2, 30, tzinfo=UTC),
    )
    # The week after: 02:30 CEST is 00:30 UTC.
    start, _ = window.next_occurrence(datetime(2026, 3, 30, tzinfo=UTC))
    assert start == datetime(2026, 4, 5, 0, 30, tzinfo=UTC)


def test_next_occurrence_is_the_running_one_while_it_runs():
    window = MaintenanceWindow(
        weekdays=[0], start_time=time(23, 0), duration=timedelta(hours=3), time_zone="UTC"
    )
    # Tuesday 01:00 UTC: Monday 23:00's occurrence runs until 02:00.
    assert window.next_occurrence(datetime(2026, 11, 24, 1, tzinfo=UTC)) == (
        datetime(2026, 11, 23, 23, tzinfo=UTC),
        datetime(2026, 11, 24, 2, tzinfo=UTC),
    )


def test_an_ended_one_off_window_has_no_next_occurrence():
    now = datetime(2026, 11, 24, tzinfo=UTC)
    window = MaintenanceWindow(starts_at=now - timedelta(hours=2), ends_at=now)
    assert window.next_occurrence(now) is None


# --- the list -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "responder", "manager", "admin"])
def test_members_read_the_teams_windows(crew, service, role):
    soon = one_off(service)
    nightly = weekly(service, days=(0, 3))
    over = one_off(service, "Last month", hours=(-5, -4))
    response = logged_in(crew.by_role(role)).get(reverse("maintenance"))
    assert response.status_code == 200
    body = response.content.decode()
    current, past = body.split('id="past-head"')
    assert set(listed_text(current)) == {str(soon.pk), str(nightly.pk)}
    assert listed_text(past) == [str(over.pk)]
    assert "Mon, Thu at 02:00 for 2h (Europe/Berlin)" in body
    expected = nightly.next_occurrence(timezone.now())[0].astimezone(ZoneInfo(BERLIN))
    assert f"{expected:%a %Y-%m-%d %H:%M} to " in body and 'class="table-scroll"' in body


def listed_text(text: str) -> list[str]:
    return re.findall(r'data-window-id="(\d+)"', text)


def test_windows_long_over_are_counted_not_listed(crew, service):
    recent = one_off(service, "Last week", hours=(-24 * 7, -24 * 7 + 2))
    long_ago = [
        one_off(service, f"Old {n}", hours=(-24 * 200 - n, -24 * 200 - n + 1)) for n in range(3)
    ]
    nightly = weekly(service)
    body = logged_in(crew.viewer).get(reverse("maintenance")).content.decode()
    shown = listed_text(body)
    assert str(recent.pk) in shown and str(nightly.pk) in shown
    assert not {str(w.pk) for w in long_ago} & set(shown)
    assert "3 windows that ended more than 90 days ago are not listed" in body


def test_other_teams_windows_stay_hidden(crew, service, other_service):
    mine = one_off(service)
    theirs = one_off(other_service)
    assert listed(logged_in(crew.viewer).get(reverse("maintenance"))) == [str(mine.pk)]
    outsider = logged_in(crew.outsider)
    assert listed(outsider.get(reverse("maintenance"))) == [str(theirs.pk)]
    assert outsider.get(reverse("maintenance") + f"?team={crew.team.slug}").status_code == 404
    assert outsider.get(reverse("maintenance_window", args=[mine.pk])).status_code == 404


def test_only_managers_see_edit_buttons(crew, service):
    window = one_off(service)
    edit = f'href="{reverse("maintenance_window", args=[window.pk])}">Edit'
    assert edit not in logged_in(crew.responder).get(reverse("maintenance")).content.decode()
    assert edit in logged_in(crew.manager).get(reverse("maintenance")).content.decode()


def test_the_list_costs_the_same_queries_for_more_windows(crew, service):
    client = logged_in(crew.manager)
    one_off(service)
    client.get(reverse("maintenance"))

    def count() -> int:
        return queries_for(client, reverse("maintenance"))

    few = count()
    other = Service.objects.create(team=crew.team, name="Cart")
    for n in range(6):
        weekly(other, f"Weekly {n}", days=(n,))
        one_off(service, f"Once {n}")
    assert count() == few


# --- creating -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_managers_create_a_one_off_window_in_its_time_zone(crew, service, role):
    response = logged_in(crew.by_role(role)).post(reverse("maintenance_create"), once_data(service))
    assert response.status_code == 302
    assert response["Location"] == reverse("maintenance") + f"?team={crew.team.slug}"
    window = MaintenanceWindow.objects.get()
    assert window.starts_at == datetime(2030, 1, 10, 8, 0, tzinfo=UTC)  # 09:00 in Berlin (CET)
    assert window.ends_at == datetime(2030, 1, 10, 10, 30, tzinfo=UTC)
    assert window.time_zone == BERLIN and window.created_by == crew.by_role(role)
    assert window_events() == 1


def test_managers_create_a_weekly_window(crew, service):
    data = once_data(
        service,
        kind="weekly",
        starts_at="",
        ends_at="",
        weekdays=["1", "4"],
        start_time="22:00",
        duration="1h30m",
    )
    assert logged_in(crew.manager).post(reverse("maintenance_create"), data).status_code == 302
    window = MaintenanceWindow.objects.get()
    assert window.weekdays == [1, 4] and window.start_time == time(22, 0)
    assert window.duration == timedelta(hours=1, minutes=30) and window.starts_at is None


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_viewers_and_responders_cannot_create_windows(crew, service, role):
    client = logged_in(crew.by_role(role))
    assert client.get(reverse("maintenance_create")).status_code == 403
    assert client.post(reverse("maintenance_create"), once_data(service)).status_code == 403
    assert not MaintenanceWindow.objects.exists()


def test_a_service_of_another_team_is_a_404(crew, other_service):
    response = logged_in(crew.manager).post(reverse("maintenance_create"), once_data(other_service))
    assert response.status_code == 404
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ends_at": "2030-01-10T08:00"}, "must be later than starts_at"),
        ({"starts_at": ""}, "a one-off window needs starts_at"),
        ({"starts_at": "tomorrow"}, "Enter a valid date/time"),
        ({"time_zone": "Mars/Olympus"}, "Select a valid choice"),
        ({"title": ""}, "This field is required"),
        ({"kind": "weekly", "start_time": "02:00", "duration": "1h"}, "pick the days"),
        (
            {"kind": "weekly", "weekdays": ["0"], "start_time": "02:00", "duration": "8d"},
            "at most 7 days",
        ),
        ({"kind": "weekly", "weekdays": ["0"], "duration": "1h"}, "needs a start time"),
        ({"kind": "weekly", "weekdays": ["9"], "start_time": "02:00"}, "Select a valid choice"),
        (
            {"kind": "weekly", "weekdays": ["0"], "start_time": "02:00", "duration": "soon"},
            "not a duration",
        ),
    ],
)
def test_bad_input_is_a_400_with_the_error_and_nothing_changes(crew, service, overrides, message):
    response = logged_in(crew.manager).post(
        reverse("maintenance_create"), once_data(service, **overrides)
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not MaintenanceWindow.objects.exists() and window_events() == 0


# --- changing and deleting ------------------------------------------------------------------------


def test_viewers_read_a_window_without_the_form(crew, service):
    window = weekly(service)
    response = logged_in(crew.viewer).get(reverse("maintenance_window", args=[window.pk]))
    body = response.content.decode()
    assert response.status_code == 200 and "Mon at 02:00 for 2h (Europe/Berlin)" in body
    assert 'name="title"' not in body and "Delete this window" not in body


def test_managers_change_a_window_and_are_redirected(crew, service):
    window = weekly(service)
    url = reverse("maintenance_window", args=[window.pk])
    client = logged_in(crew.manager)
    assert 'value="Nightly backup"' in client.get(url).content.decode()
    response = client.post(url, once_data(service, title="Moved to once"))
    assert response.status_code == 302
    window.refresh_from_db()
    assert window.title == "Moved to once" and window.weekdays == [] and window.duration is None
    assert window.starts_at == datetime(2030, 1, 10, 8, 0, tzinfo=UTC)


def test_a_bad_change_is_a_400_and_changes_nothing(crew, service):
    window = weekly(service)
    events = window_events()
    response = logged_in(crew.manager).post(
        reverse("maintenance_window", args=[window.pk]),
        once_data(service, ends_at="2030-01-09T09:00"),
    )
    assert (
        response.status_code == 400 and "must be later than starts_at" in response.content.decode()
    )
    window.refresh_from_db()
    assert window.title == "Nightly backup" and window.weekdays == [0]
    assert window_events() == events


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("responder", 403), ("outsider", 404)]
)
def test_only_managers_change_or_delete(crew, service, role, status):
    window = weekly(service)
    client = logged_in(crew.by_role(role))
    url = reverse("maintenance_window", args=[window.pk])
    assert client.post(url, once_data(service)).status_code == status
    assert client.post(reverse("maintenance_delete", args=[window.pk])).status_code == status
    window.refresh_from_db()
    assert window.title == "Nightly backup"


def test_managers_delete_a_window(crew, service):
    window = one_off(service)
    response = logged_in(crew.manager).post(reverse("maintenance_delete", args=[window.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("maintenance") + f"?team={crew.team.slug}"
    assert not MaintenanceWindow.objects.exists()
    assert Event.objects.filter(kind="maintenance.deleted").count() == 1


def test_deleting_needs_a_post(crew, service):
    window = one_off(service)
    response = logged_in(crew.manager).get(reverse("maintenance_delete", args=[window.pk]))
    assert response.status_code == 405 and MaintenanceWindow.objects.exists()


def test_an_out_of_range_service_id_is_a_404_not_a_500(crew, service):
    response = logged_in(crew.manager).post(
        reverse("maintenance_create"), {**once_data(service), "service": "9" * 30}
    )
    assert response.status_code == 404
