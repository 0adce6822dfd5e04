"""/schedules/ pages and the schedule admin: rendering, permissions, query counts."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.models import (
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    ShiftSwapRequest,
    SwapStatus,
)
from incidents.oncall import rotations
from incidents.oncall import services as oncall
from tocsin.models import Event


@pytest.fixture
def schedule(crew):
    schedule = oncall.create_schedule(crew.team, "Primary", time_zone="America/New_York")
    oncall.add_layer(
        schedule,
        name="Days",
        participants=[crew.responder, crew.manager],
        rotation=Rotation.DAILY,
        handoff_time=time(9),
        starts_at=timezone.now() - timedelta(days=10),
    )
    return schedule


def login(client, user):
    client.force_login(user)
    return client


def local_input(schedule, value):
    return value.astimezone(schedule.zone).strftime("%Y-%m-%dT%H:%M")


def test_anonymous_is_sent_to_login(client, schedule):
    assert client.get("/schedules/").status_code == 302
    assert client.get(f"/schedules/{schedule.pk}/").status_code == 302


def test_list_shows_who_is_on_call_now(crew, client, schedule):
    response = login(client, crew.viewer).get("/schedules/")
    assert response.status_code == 200
    body = response.content.decode()
    on_call = rotations.on_call_users(schedule)[0]
    assert "Primary" in body and on_call.username in body


def test_list_hides_other_teams(crew, client, schedule):
    body = login(client, crew.outsider).get("/schedules/").content.decode()
    assert "Primary" not in body


def test_list_query_count_is_constant(crew, client, schedule, django_assert_max_num_queries):
    login(client, crew.viewer)
    with CaptureQueriesContext(connection) as one:
        client.get("/schedules/")
    for n in range(6):
        other = oncall.create_schedule(crew.team, f"S{n}")
        oncall.add_layer(other, name="L", participants=[crew.responder])
        oncall.create_override(
            other,
            crew.manager,
            timezone.now() - timedelta(hours=1),
            timezone.now() + timedelta(hours=1),
            actor=crew.manager,
        )
    with django_assert_max_num_queries(len(one)):
        response = client.get("/schedules/")
    assert response.content.decode().count("/schedules/") >= 7


@pytest.mark.parametrize("weeks", ["2", "4", "x"])
def test_detail_renders_the_calendar(crew, client, schedule, weeks, django_assert_max_num_queries):
    login(client, crew.responder)
    oncall.create_override(
        schedule,
        crew.responder,
        timezone.now() + timedelta(days=1),
        timezone.now() + timedelta(days=1, hours=3),
        actor=crew.responder,
    )
    with django_assert_max_num_queries(20):
        response = client.get(f"/schedules/{schedule.pk}/", {"weeks": weeks})
    assert response.status_code == 200
    body = response.content.decode()
    days = 28 if weeks == "4" else 14
    assert body.count('class="cal-day') == days
    assert "cal-bar" in body and "is-override" in body
    assert "override-form" in body and "swap-form" in body
    assert ".ics" in body
    assert "(optional) <span" not in body and "Ask <span" in body  # said once, by the field


def test_viewer_sees_no_forms_and_cannot_post(crew, client, schedule):
    login(client, crew.viewer)
    body = client.get(f"/schedules/{schedule.pk}/").content.decode()
    assert "override-form" not in body and "swap-form" not in body
    start = timezone.now() + timedelta(days=1)
    response = client.post(
        f"/schedules/{schedule.pk}/overrides/",
        {
            "user": crew.viewer.pk,
            "start": local_input(schedule, start),
            "end": local_input(schedule, start + timedelta(hours=1)),
        },
    )
    assert response.status_code == 403
    assert not ScheduleOverride.objects.exists()


def test_outsider_gets_404(crew, client, schedule):
    login(client, crew.outsider)
    assert client.get(f"/schedules/{schedule.pk}/").status_code == 404
    assert client.post(f"/schedules/{schedule.pk}/overrides/", {}).status_code == 404


def test_responder_adds_an_override_in_the_schedule_time_zone(crew, client, schedule):
    login(client, crew.responder)
    start = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    response = client.post(
        f"/schedules/{schedule.pk}/overrides/",
        {
            "user": crew.responder.pk,
            "start": local_input(schedule, start),
            "end": local_input(schedule, start + timedelta(hours=2)),
            "reason": "cover",
        },
    )
    assert response.status_code == 302
    override = ScheduleOverride.objects.get()
    assert (override.start, override.end) == (start, start + timedelta(hours=2))
    assert Event.objects.filter(kind="override.created").count() == 1


def test_responder_cannot_override_for_someone_else(crew, client, schedule):
    login(client, crew.responder)
    start = timezone.now() + timedelta(days=2)
    response = client.post(
        f"/schedules/{schedule.pk}/overrides/",
        {
            "user": crew.manager.pk,
            "start": local_input(schedule, start),
            "end": local_input(schedule, start + timedelta(hours=2)),
        },
    )
    assert response.status_code == 400
    assert not ScheduleOverride.objects.exists()


def test_bad_override_window_rerenders_with_errors(crew, client, schedule):
    login(client, crew.manager)
    start = timezone.now() + timedelta(days=2)
    response = client.post(
        f"/schedules/{schedule.pk}/overrides/",
        {
            "user": crew.responder.pk,
            "start": local_input(schedule, start),
            "end": local_input(schedule, start - timedelta(hours=2)),
        },
    )
    assert response.status_code == 400
    assert "The end must be after the start." in response.content.decode()
    assert not ScheduleOverride.objects.exists()


def test_swap_request_and_accept_through_the_pages(crew, client, schedule):
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(days=1)
    while rotations.on_call_users(schedule, start) != [crew.responder] or rotations.on_call_users(
        schedule, start + timedelta(hours=2)
    ) != [crew.responder]:
        start += timedelta(hours=6)
    login(client, crew.responder)
    response = client.post(
        f"/schedules/{schedule.pk}/swaps/",
        {
            "start": local_input(schedule, start),
            "end": local_input(schedule, start + timedelta(hours=2)),
            "proposed_taker": crew.manager.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    swap = ShiftSwapRequest.objects.get()
    body = client.get(f"/schedules/{schedule.pk}/").content.decode()
    assert f"swap-{swap.pk}" in body
    login(client, crew.manager)
    assert client.post(f"/schedules/{schedule.pk}/swaps/{swap.pk}/accept/").status_code == 302
    swap.refresh_from_db()
    assert swap.status == SwapStatus.ACCEPTED
    assert rotations.on_call_users(schedule, start + timedelta(hours=1)) == [crew.manager]


def test_swap_for_a_shift_that_is_not_yours_shows_an_error(crew, client, schedule):
    login(client, crew.responder)
    start = timezone.now() + timedelta(days=1)
    response = client.post(
        f"/schedules/{schedule.pk}/swaps/",
        {
            "start": local_input(schedule, start),
            "end": local_input(schedule, start + timedelta(days=3)),
        },
    )
    assert response.status_code == 400
    assert "not on call for the whole" in response.content.decode()
    assert not ShiftSwapRequest.objects.exists()


# --- admin ------------------------------------------------------------------------------------


def test_manager_creates_a_schedule_with_a_layer_in_the_admin(crew, client):
    login(client, crew.manager)
    assert client.get("/admin/incidents/schedule/add/").status_code == 200
    data = {
        "team": crew.team.pk,
        "name": "Admin made",
        "time_zone": "Europe/Berlin",
        "description": "",
        "layers-TOTAL_FORMS": "1",
        "layers-INITIAL_FORMS": "0",
        "layers-MIN_NUM_FORMS": "0",
        "layers-MAX_NUM_FORMS": "1000",
        "layers-0-name": "Weeks",
        "layers-0-participant_usernames": "responder, manager",
        "layers-0-rotation": "weekly",
        "layers-0-priority": "0",
        "layers-0-handoff_time": "09:00",
        "layers-0-handoff_weekday": "0",
        "layers-0-starts_at_0": "2026-01-05",
        "layers-0-starts_at_1": "09:00",
        "overrides-TOTAL_FORMS": "0",
        "overrides-INITIAL_FORMS": "0",
        "overrides-MIN_NUM_FORMS": "0",
        "overrides-MAX_NUM_FORMS": "1000",
        "overrides-2-TOTAL_FORMS": "0",
        "overrides-2-INITIAL_FORMS": "0",
        "overrides-2-MIN_NUM_FORMS": "0",
        "overrides-2-MAX_NUM_FORMS": "1000",
    }
    response = client.post("/admin/incidents/schedule/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    schedule = Schedule.objects.get(name="Admin made")
    layer = ScheduleLayer.objects.get(schedule=schedule)
    assert [u.username for u in layer.ordered_users()] == ["responder", "manager"]
    kinds = set(Event.objects.values_list("kind", flat=True))
    assert {"schedule.created", "schedule.layer_added"} <= kinds
    assert client.get(f"/admin/incidents/schedule/{schedule.pk}/change/").status_code == 200
    assert client.get("/admin/incidents/schedule/").status_code == 200


def test_admin_is_scoped_to_managed_teams(crew, client, schedule):
    login(client, crew.outsider)
    assert client.get(f"/admin/incidents/schedule/{schedule.pk}/change/").status_code in (302, 404)
    login(client, crew.responder)
    assert client.get("/admin/incidents/schedule/").status_code in (302, 403)


def _change_data(schedule, layer, **layer_changes):
    data = {
        "team": schedule.team_id,
        "name": schedule.name,
        "time_zone": schedule.time_zone,
        "description": "",
        "layers-TOTAL_FORMS": "1",
        "layers-INITIAL_FORMS": "1",
        "layers-MIN_NUM_FORMS": "0",
        "layers-MAX_NUM_FORMS": "1000",
        "layers-0-id": layer.pk,
        "layers-0-schedule": schedule.pk,
        "layers-0-name": layer.name,
        "layers-0-participant_usernames": ", ".join(u.username for u in layer.ordered_users()),
        "layers-0-rotation": layer.rotation,
        "layers-0-priority": layer.priority,
        "layers-0-handoff_time": layer.handoff_time.strftime("%H:%M:%S"),
        "layers-0-handoff_weekday": layer.handoff_weekday,
        "layers-0-starts_at_0": timezone.localtime(layer.starts_at).strftime("%Y-%m-%d"),
        "layers-0-starts_at_1": timezone.localtime(layer.starts_at).strftime("%H:%M:%S"),
        "overrides-TOTAL_FORMS": "0",
        "overrides-INITIAL_FORMS": "0",
        "overrides-MIN_NUM_FORMS": "0",
        "overrides-MAX_NUM_FORMS": "1000",
        "overrides-2-TOTAL_FORMS": "1",
        "overrides-2-INITIAL_FORMS": "0",
        "overrides-2-MIN_NUM_FORMS": "0",
        "overrides-2-MAX_NUM_FORMS": "1000",
    }
    data.update({f"layers-0-{k}": v for k, v in layer_changes.items()})
    return data


def test_admin_edits_layers_and_adds_overrides_through_the_services(crew, client, schedule):
    layer = ScheduleLayer.objects.get(schedule=schedule)
    layer.starts_at = layer.starts_at.replace(microsecond=0)
    layer.save()
    login(client, crew.manager)
    data = _change_data(schedule, layer, participant_usernames="manager, responder")
    data.update(
        {
            "overrides-2-0-user": crew.responder.pk,
            "overrides-2-0-start_0": "2030-01-01",
            "overrides-2-0-start_1": "10:00:00",
            "overrides-2-0-end_0": "2030-01-01",
            "overrides-2-0-end_1": "12:00:00",
            "overrides-2-0-reason": "admin",
        }
    )
    url = f"/admin/incidents/schedule/{schedule.pk}/change/"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    layer.refresh_from_db()
    assert [u.username for u in layer.ordered_users()] == ["manager", "responder"]
    assert ScheduleOverride.objects.get().reason == "admin"
    kinds = list(Event.objects.order_by("-id").values_list("kind", flat=True)[:2])
    assert set(kinds) == {"schedule.layer_updated", "override.created"}


def test_admin_shows_a_service_refusal_as_a_form_error(crew, client, schedule):
    layer = ScheduleLayer.objects.get(schedule=schedule)
    layer.starts_at = layer.starts_at.replace(microsecond=0)
    layer.save()
    login(client, crew.manager)
    before = Event.objects.count()
    data = _change_data(schedule, layer, participant_usernames="viewer")
    response = client.post(f"/admin/incidents/schedule/{schedule.pk}/change/", data)
    assert response.status_code == 200
    assert "not a responder or manager" in response.content.decode()
    assert Event.objects.count() == before
    assert [u.username for u in layer.ordered_users()] == ["responder", "manager"]


def test_calendar_bars_follow_the_local_day_across_dst(crew):
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from incidents.oncall.views import _calendar

    berlin = ZoneInfo("Europe/Berlin")
    schedule = oncall.create_schedule(crew.team, "Berlin", time_zone="Europe/Berlin")
    oncall.add_layer(
        schedule,
        name="Days",
        participants=[crew.responder, crew.manager],
        rotation=Rotation.DAILY,
        handoff_time=time(9),
        starts_at=datetime(2026, 3, 1, 9, tzinfo=berlin),
    )
    start = datetime(2026, 3, 29, tzinfo=berlin)
    found = rotations.shifts(schedule, start, datetime(2026, 3, 30, tzinfo=berlin))
    (day,) = _calendar(schedule, found, date(2026, 3, 29), 1)
    # The 23-hour day: 00:00-09:00 local is 8 real hours (02:00 does not exist).
    assert [(b.left, b.width) for b in day.bars] == [
        (0.0, round(8 / 23 * 100, 3)),
        (round(8 / 23 * 100, 3), round(15 / 23 * 100, 3)),
    ]
    assert [b.start.time() for b in day.bars] == [time(0), time(9)]
    assert [b.span for b in day.bars] == ["00:00\N{EN DASH}09:00", "09:00\N{EN DASH}24:00"]


def test_a_shift_covering_the_whole_day_reads_all_day_not_midnight_to_midnight(crew, client):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    schedule = oncall.create_schedule(crew.team, "Weekly", time_zone="Europe/Berlin")
    oncall.add_layer(
        schedule,
        name="Weeks",
        participants=[crew.responder],
        rotation=Rotation.WEEKLY,
        handoff_time=time(0),
        starts_at=datetime(2026, 1, 5, tzinfo=berlin),
    )
    body = login(client, crew.viewer).get(f"/schedules/{schedule.pk}/").content.decode()
    assert "all day" in body and "00:00\N{EN DASH}00:00" not in body
