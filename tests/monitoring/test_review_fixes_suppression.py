"""Review fixes for silences and maintenance windows: durations and dates at the edges of what
Python and the database can hold are a field error (400), never a 500 or an unreadable row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.models import MaintenanceWindow, Silence
from monitoring.suppression import create_maintenance_window, create_silence
from tests.monitoring.page_support import logged_in
from tests.monitoring.test_maintenance_pages import once_data as maintenance_form
from tests.monitoring.test_silence_pages import form_data as silence_form
from tests.tocsin.api_support import assert_error
from tocsin.models import Event
from tocsin.services import ServiceError

pytestmark = pytest.mark.usefixtures("fresh_throttles")

HUGE = "99999999999999999d"  # past timedelta's range: parse_duration overflowed
LONG = "3000000d"  # a timedelta, but now + it is past the year 9999


def nothing_written() -> bool:
    return (
        not Silence.objects.exists()
        and not MaintenanceWindow.objects.exists()
        and not (Event.objects.filter(kind__regex=r"^(silence|maintenance)\.").exists())
    )


# --- A: huge durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("duration", HUGE, "far too long a duration"),
        ("duration", LONG, "a silence lasts at most 365 days"),
        ("duration", "366d", "a silence lasts at most 365 days"),
        ("starts_in", LONG, "a silence starts at most 365 days ahead"),
        ("starts_in", HUGE, "far too long a duration"),
    ],
)
def test_a_huge_silence_duration_is_a_field_error(crew, field, value, message):
    client = logged_in(crew.responder)
    data = silence_form(crew.team, **{field: value})
    response = client.post(reverse("silence_create"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    preview = client.post(reverse("silence_preview"), data)  # the preview ignores the duration
    assert preview.status_code == 200
    assert nothing_written()


def test_a_year_long_silence_is_still_fine(crew):
    response = logged_in(crew.responder).post(
        reverse("silence_create"), silence_form(crew.team, duration="365d", starts_in="365d")
    )
    assert response.status_code == 302
    silence = Silence.objects.get()
    assert silence.ends_at - silence.starts_at == timedelta(days=365)


def test_the_help_text_tells_the_limit(crew):
    body = logged_in(crew.responder).get(reverse("silence_create")).content.decode()
    assert "at most 365d" in body


def test_a_huge_maintenance_duration_is_a_field_error(crew, service):
    data = {
        "service": str(service.pk),
        "title": "Backup",
        "description": "",
        "kind": "weekly",
        "time_zone": "UTC",
        "weekdays": ["0"],
        "start_time": "02:00",
        "duration": HUGE,
        "starts_at": "",
        "ends_at": "",
    }
    response = logged_in(crew.manager).post(reverse("maintenance_create"), data)
    assert response.status_code == 400
    assert "far too long a duration" in response.content.decode()
    data["duration"] = LONG
    response = logged_in(crew.manager).post(reverse("maintenance_create"), data)
    assert response.status_code == 400
    assert "at most 7 days" in response.content.decode()
    assert nothing_written()


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"duration": timedelta(days=3_000_000)}, "duration"),
        ({"duration": timedelta(days=366)}, "duration"),
        ({"ends_at": datetime(9999, 12, 31, tzinfo=UTC)}, "ends_at"),
        ({"starts_at": datetime(9999, 12, 31, tzinfo=UTC), "duration": timedelta(days=2)}, None),
    ],
)
def test_the_service_refuses_what_overflows_or_lasts_past_a_year(crew, arguments, field):
    with pytest.raises(ServiceError) as refused:
        create_silence(team=crew.team, matchers="a=b", **arguments)
    assert field is None or refused.value.field == field
    assert nothing_written()


@pytest.mark.parametrize(
    "body",
    [
        {"duration": HUGE},
        {"duration": 10**20},  # seconds, past timedelta's range
        {"duration": LONG},
        {"duration": "1h", "starts_at": "9999-12-31T23:00:00Z"},
        {"ends_at": "9999-12-31T23:59:59Z"},
    ],
)
def test_the_silence_api_answers_400_with_a_field(api, crew, body):
    response = api(crew.responder).post(
        "/api/v1/silences/", {"team": crew.team.pk, "matchers": "a=b", **body}, format="json"
    )
    error = assert_error(response, 400)
    assert set(error["fields"]) <= {"duration", "starts_at", "ends_at"} and error["fields"]
    assert nothing_written()


# --- B: maintenance windows near the year limits --------------------------------------------------


def once_data(service, **overrides) -> dict:
    """A one-off window in New York (west of UTC: its end in 9999 is past the year in UTC)."""
    return maintenance_form(service, **{"time_zone": "America/New_York", **overrides})


@pytest.mark.parametrize(
    "overrides",
    [
        {"ends_at": "9999-12-31T23:00"},  # the year 10000 in UTC
        {"starts_at": "9999-12-30T09:00", "ends_at": "9999-12-31T11:30"},
        {"starts_at": "0001-01-01T00:00", "time_zone": "Asia/Tokyo"},  # the year 0 in UTC
        {"starts_at": "1999-12-31T09:00"},
        {"ends_at": f"{timezone.now().year + 11}-01-01T00:00"},
    ],
)
def test_a_one_off_window_near_the_year_limits_is_a_field_error(crew, service, overrides):
    client = logged_in(crew.manager)
    response = client.post(reverse("maintenance_create"), once_data(service, **overrides))
    assert response.status_code == 400
    assert "a date between the years 2000 and" in response.content.decode()
    assert nothing_written()
    window = create_maintenance_window(
        service=service,
        title="ok",
        starts_at=datetime(2030, 1, 1, tzinfo=UTC),
        ends_at=datetime(2030, 1, 2, tzinfo=UTC),
    )
    response = client.post(
        reverse("maintenance_window", args=[window.pk]), once_data(service, **overrides)
    )
    assert response.status_code == 400
    window.refresh_from_db()  # readable, and unchanged
    assert window.ends_at == datetime(2030, 1, 2, tzinfo=UTC)


def test_the_window_list_still_loads_after_a_refused_window(crew, service):
    client = logged_in(crew.manager)
    client.post(reverse("maintenance_create"), once_data(service, ends_at="9999-12-31T23:00"))
    assert client.get(reverse("maintenance")).status_code == 200
    assert list(MaintenanceWindow.objects.all()) == []


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "field"),
    [
        (datetime(2030, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "ends_at"),
        (datetime(1, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC), "starts_at"),
    ],
)
def test_the_service_refuses_windows_near_the_year_limits(service, starts_at, ends_at, field):
    with pytest.raises(ServiceError) as refused:
        create_maintenance_window(service=service, title="t", starts_at=starts_at, ends_at=ends_at)
    assert refused.value.field == field
    assert nothing_written()


def test_the_maintenance_api_answers_400(api, crew, service):
    body = {
        "service": service.pk,
        "title": "t",
        "starts_at": "2030-01-01T00:00:00Z",
        "ends_at": "9999-12-31T23:59:00Z",
    }
    response = api(crew.manager).post("/api/v1/maintenance-windows/", body, format="json")
    assert set(assert_error(response, 400)["fields"]) == {"ends_at"}
    assert nothing_written()
