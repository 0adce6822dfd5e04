"""/api/v1/schedules/ and /api/v1/swap-requests/: role matrix, shapes, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.models import Rotation, Schedule, ScheduleLayer, ScheduleOverride, ShiftSwapRequest
from incidents.oncall import rotations
from incidents.oncall import services as oncall
from tocsin.models import Event

ROLES = ["viewer", "responder", "manager", "outsider", "admin"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def schedule(crew):
    schedule = oncall.create_schedule(crew.team, "Primary", time_zone="Europe/Berlin")
    oncall.add_layer(
        schedule,
        name="Weeks",
        participants=[crew.responder, crew.manager],
        rotation=Rotation.WEEKLY,
        handoff_time=time(9),
        starts_at=utc(2026, 1, 5, 8),
    )
    return schedule


def events() -> int:
    return Event.objects.count()


def assert_error(response, status, field=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    if field:
        assert field in body["error"]["fields"], body


def test_anonymous_gets_401(api, schedule):
    assert_error(api().get("/api/v1/schedules/"), 401)
    assert_error(api().get(f"/api/v1/schedules/{schedule.pk}/oncall/"), 401)
    assert_error(api().get("/api/v1/swap-requests/"), 401)


@pytest.mark.parametrize(("role", "visible"), [(r, r != "outsider") for r in ROLES])
def test_list_and_detail_follow_team_visibility(crew, api, schedule, role, visible):
    client = api(crew.by_role(role))
    listed = client.get("/api/v1/schedules/").json()["results"]
    assert [s["id"] for s in listed] == ([schedule.pk] if visible else [])
    detail = client.get(f"/api/v1/schedules/{schedule.pk}/")
    if visible:
        layer = detail.json()["layers"][0]
        assert detail.json()["time_zone"] == "Europe/Berlin"
        assert [p["username"] for p in layer["participants"]] == ["responder", "manager"]
        assert layer["handoff_time"] == "09:00:00"
    else:
        assert_error(detail, 404)


def test_list_query_count_does_not_grow(crew, api, schedule, django_assert_max_num_queries):
    client = api(crew.viewer)
    with CaptureQueriesContext(connection) as one:
        client.get("/api/v1/schedules/")
    for n in range(5):
        other = oncall.create_schedule(crew.team, f"S{n}")
        oncall.add_layer(other, name="L", participants=[crew.responder, crew.manager])
    with django_assert_max_num_queries(len(one)):
        response = client.get("/api/v1/schedules/")
    assert len(response.json()["results"]) == 6


@pytest.mark.parametrize(
    ("role", "status"),
    [("viewer", 403), ("responder", 403), ("manager", 201), ("outsider", 400), ("admin", 201)],
)
def test_create_schedule_role_matrix(crew, api, role, status):
    before = events()
    response = api(crew.by_role(role)).post(
        "/api/v1/schedules/",
        {
            "team": crew.team.pk,
            "name": "Secondary",
            "time_zone": "America/New_York",
            "layers": [
                {
                    "name": "Days",
                    "rotation": "daily",
                    "participants": [crew.responder.pk, crew.manager.pk],
                    "handoff_time": "08:30",
                    "starts_at": "2026-03-01T08:30:00-05:00",
                }
            ],
        },
        format="json",
    )
    assert response.status_code == status, response.content
    if status == 201:
        body = response.json()
        assert body["layers"][0]["rotation"] == "daily"
        assert (
            Event.objects.filter(kind__in=["schedule.created", "schedule.layer_added"]).count() == 2
        )
    else:
        assert_error(response, status, "team" if status == 400 else None)
        assert not Schedule.objects.exists()
        assert events() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "time_zone": "Mars/Base"}, "time_zone"),
        ({"name": ""}, "name"),
        ({"name": "X", "slug": "x"}, "slug"),
        ({"name": "X", "layers": [{"name": "L", "participants": []}]}, "layers.0.participants"),
        (
            {"name": "X", "layers": [{"name": "L", "participants": [999999]}]},
            "layers.0.participants",
        ),
        (
            {"name": "X", "layers": [{"name": "L", "participants": [1], "rotation": "hourly"}]},
            "layers.0.rotation",
        ),
        (
            {"name": "X", "layers": [{"name": "L", "participants": [1], "rotation": "custom"}]},
            "layers.0.shift_length_hours",
        ),
        (
            {"name": "X", "layers": [{"name": "L", "participants": [1], "handoff_weekday": 7}]},
            "layers.0.handoff_weekday",
        ),
    ],
)
def test_bad_schedule_input_is_400_and_changes_nothing(crew, api, body, field):
    if "layers" in body:
        for layer in body["layers"]:
            layer["participants"] = [
                crew.responder.pk if p == 1 else p for p in layer["participants"]
            ]
    before = events()
    response = api(crew.manager).post(
        "/api/v1/schedules/", {"team": crew.team.pk, **body}, format="json"
    )
    assert_error(response, 400, field)
    assert not Schedule.objects.exists()
    assert not ScheduleLayer.objects.exists()
    assert events() == before


def test_layer_with_a_viewer_rolls_back_the_whole_create(crew, api):
    response = api(crew.manager).post(
        "/api/v1/schedules/",
        {
            "team": crew.team.pk,
            "name": "X",
            "layers": [{"name": "L", "participants": [crew.viewer.pk]}],
        },
        format="json",
    )
    assert_error(response, 400, "layers.0.participants")
    assert not Schedule.objects.exists()
    assert not Event.objects.filter(kind="schedule.created").exists()


def test_duplicate_name_is_409(crew, api, schedule):
    response = api(crew.manager).post(
        "/api/v1/schedules/", {"team": crew.team.pk, "name": "Primary"}, format="json"
    )
    assert_error(response, 409, "name")


@pytest.mark.parametrize(
    ("role", "status"),
    [("viewer", 403), ("responder", 403), ("manager", 200), ("outsider", 404), ("admin", 200)],
)
def test_update_and_delete_need_manager(crew, api, schedule, role, status):
    client = api(crew.by_role(role))
    response = client.patch(
        f"/api/v1/schedules/{schedule.pk}/", {"description": "hi"}, format="json"
    )
    assert response.status_code == status
    response = client.delete(f"/api/v1/schedules/{schedule.pk}/")
    assert response.status_code == (204 if status == 200 else status)
    assert Schedule.objects.exists() == (status != 200)


def test_layers_are_added_changed_and_removed_by_managers(crew, api, schedule):
    client = api(crew.manager)
    url = f"/api/v1/schedules/{schedule.pk}/layers/"
    response = client.post(
        url,
        {
            "name": "Nights",
            "participants": [crew.manager.pk],
            "rotation": "custom",
            "shift_length_hours": 12,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    layer_id = response.json()["id"]
    response = client.patch(
        f"{url}{layer_id}/", {"participants": [crew.responder.pk], "priority": 5}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["priority"] == 5
    assert [p["username"] for p in response.json()["participants"]] == ["responder"]
    assert_error(
        client.patch(f"{url}{layer_id}/", {"handoff_weekday": 9}, format="json"),
        400,
        "handoff_weekday",
    )
    assert_error(api(crew.responder).delete(f"{url}{layer_id}/"), 403)
    assert client.delete(f"{url}{layer_id}/").status_code == 204
    assert_error(client.delete(f"{url}{layer_id}/"), 404)


def test_oncall_now_and_at(crew, api, schedule):
    client = api(crew.viewer)
    response = client.get(
        f"/api/v1/schedules/{schedule.pk}/oncall/", {"at": "2026-01-06T12:00:00Z"}
    )
    assert [u["username"] for u in response.json()["users"]] == ["responder"]
    response = client.get(
        f"/api/v1/schedules/{schedule.pk}/oncall/", {"at": "2026-01-13T12:00:00+01:00"}
    )
    assert [u["username"] for u in response.json()["users"]] == ["manager"]
    assert client.get(f"/api/v1/schedules/{schedule.pk}/oncall/").status_code == 200
    assert_error(
        client.get(f"/api/v1/schedules/{schedule.pk}/oncall/", {"at": "tuesday"}), 400, "at"
    )
    assert_error(api(crew.outsider).get(f"/api/v1/schedules/{schedule.pk}/oncall/"), 404)


def test_shifts_range_is_bounded(crew, api, schedule):
    client = api(crew.viewer)
    url = f"/api/v1/schedules/{schedule.pk}/shifts/"
    response = client.get(url, {"start": "2026-01-05T00:00:00Z", "end": "2026-01-19T00:00:00Z"})
    assert response.status_code == 200
    got = [(s["user"]["username"], s["start"], s["end"], s["source"]) for s in response.json()]
    assert got == [
        ("responder", "2026-01-05T08:00:00Z", "2026-01-12T08:00:00Z", "Weeks"),
        ("manager", "2026-01-12T08:00:00Z", "2026-01-19T00:00:00Z", "Weeks"),
    ]
    assert_error(
        client.get(url, {"start": "2026-01-01T00:00:00Z", "end": "2026-06-01T00:00:00Z"}),
        400,
        "end",
    )
    assert_error(
        client.get(url, {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}),
        400,
        "end",
    )
    assert_error(client.get(url, {"start": "soon"}), 400, "start")


@pytest.mark.parametrize(
    ("role", "for_whom", "status"),
    [
        ("viewer", "viewer", 403),
        ("responder", "responder", 201),
        ("responder", "manager", 403),
        ("manager", "responder", 201),
        ("outsider", "outsider", 404),
        ("admin", "responder", 201),
    ],
)
def test_override_role_matrix(crew, api, schedule, role, for_whom, status):
    before = events()
    response = api(crew.by_role(role)).post(
        f"/api/v1/schedules/{schedule.pk}/overrides/",
        {
            "user": crew.by_role(for_whom).pk,
            "start": "2026-02-01T10:00:00Z",
            "end": "2026-02-01T18:00:00Z",
            "reason": "cover",
        },
        format="json",
    )
    assert response.status_code == status, response.content
    if status == 201:
        assert response.json()["user"]["username"] == for_whom
        assert ScheduleOverride.objects.count() == 1
        assert Event.objects.filter(kind="override.created").count() == 1
    else:
        assert_error(response, status)
        assert not ScheduleOverride.objects.exists()
        assert events() == before


def test_override_defaults_to_yourself_and_is_listed(crew, api, schedule):
    client = api(crew.responder)
    start = timezone.now() + timedelta(days=1)
    response = client.post(
        f"/api/v1/schedules/{schedule.pk}/overrides/",
        {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
        format="json",
    )
    assert response.status_code == 201
    listed = api(crew.viewer).get(f"/api/v1/schedules/{schedule.pk}/overrides/").json()
    assert [o["user"]["username"] for o in listed] == ["responder"]
    override_id = listed[0]["id"]
    assert_error(
        api(crew.viewer).delete(f"/api/v1/schedules/{schedule.pk}/overrides/{override_id}/"), 403
    )
    assert (
        client.delete(f"/api/v1/schedules/{schedule.pk}/overrides/{override_id}/").status_code
        == 204
    )
    assert Event.objects.filter(kind="override.deleted").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2026-02-01T10:00:00Z", "end": "2026-02-01T09:00:00Z"}, "end"),
        ({"start": "yesterday", "end": "2026-02-01T09:00:00Z"}, "start"),
        ({"end": "2026-02-01T09:00:00Z"}, "start"),
        ({"user": 999999, "start": "2026-02-01T08:00:00Z", "end": "2026-02-01T09:00:00Z"}, "user"),
        (
            {"user": "viewer", "start": "2026-02-01T08:00:00Z", "end": "2026-02-01T09:00:00Z"},
            "user",
        ),
        ({"start": "2026-02-01T08:00:00Z", "end": "2026-02-01T09:00:00Z", "bogus": 1}, "bogus"),
    ],
)
def test_bad_override_input(crew, api, schedule, body, field):
    before = events()
    response = api(crew.manager).post(
        f"/api/v1/schedules/{schedule.pk}/overrides/", body, format="json"
    )
    assert_error(response, 400, field)
    assert events() == before


def test_override_for_a_viewer_is_refused(crew, api, schedule):
    response = api(crew.manager).post(
        f"/api/v1/schedules/{schedule.pk}/overrides/",
        {"user": crew.viewer.pk, "start": "2026-02-01T08:00:00Z", "end": "2026-02-01T09:00:00Z"},
        format="json",
    )
    assert_error(response, 400, "user")


@pytest.fixture
def future_shift(crew, schedule):
    """A window (start, end) in the future when the responder is on call."""
    start = timezone.now().replace(microsecond=0) + timedelta(days=1)
    for _ in range(14):
        if (
            rotations.on_call_users(schedule, start)
            == [crew.responder]
            == rotations.on_call_users(schedule, start + timedelta(hours=4))
        ):
            return start, start + timedelta(hours=4)
        start += timedelta(days=1)
    raise AssertionError("no responder shift found")


def test_swap_flow_over_the_api(crew, api, schedule, future_shift):
    start, end = future_shift
    response = api(crew.responder).post(
        "/api/v1/swap-requests/",
        {
            "schedule": schedule.pk,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "proposed_taker": crew.manager.pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    swap_id = response.json()["id"]
    assert api(crew.viewer).get("/api/v1/swap-requests/").json()["results"][0]["id"] == swap_id
    assert api(crew.outsider).get("/api/v1/swap-requests/").json()["results"] == []
    assert_error(api(crew.outsider).post(f"/api/v1/swap-requests/{swap_id}/accept/"), 404)
    assert_error(api(crew.viewer).post(f"/api/v1/swap-requests/{swap_id}/accept/"), 403)
    assert_error(
        api(crew.admin).post(f"/api/v1/swap-requests/{swap_id}/accept/"), 403
    )  # not the one asked
    assert_error(
        api(crew.manager).post(f"/api/v1/swap-requests/{swap_id}/accept/", {"x": 1}, format="json"),
        400,
        "x",
    )
    response = api(crew.manager).post(f"/api/v1/swap-requests/{swap_id}/accept/")
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert response.json()["override"] == ScheduleOverride.objects.get().pk
    assert_error(api(crew.manager).post(f"/api/v1/swap-requests/{swap_id}/accept/"), 409)
    assert_error(api(crew.manager).post(f"/api/v1/swap-requests/{swap_id}/decline/"), 409)


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("outsider", 400), ("manager", 400), ("responder", 201)]
)
def test_swap_request_role_matrix(crew, api, schedule, future_shift, role, status):
    start, end = future_shift
    response = api(crew.by_role(role)).post(
        "/api/v1/swap-requests/",
        {"schedule": schedule.pk, "start": start.isoformat(), "end": end.isoformat()},
        format="json",
    )
    # outsider: the schedule is not visible (400 on schedule); manager: not on call (400 start).
    assert response.status_code == status, response.content
    if status != 201:
        assert not ShiftSwapRequest.objects.exists()


def test_swap_decline_and_cancel(crew, api, schedule, future_shift):
    start, end = future_shift

    def make(**extra):
        return (
            api(crew.responder)
            .post(
                "/api/v1/swap-requests/",
                {
                    "schedule": schedule.pk,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    **extra,
                },
                format="json",
            )
            .json()["id"]
        )

    first = make(proposed_taker=crew.manager.pk)
    assert (
        api(crew.manager).post(f"/api/v1/swap-requests/{first}/decline/").json()["status"]
        == "declined"
    )
    second = make()
    assert_error(api(crew.viewer).post(f"/api/v1/swap-requests/{second}/cancel/"), 403)
    assert (
        api(crew.responder).post(f"/api/v1/swap-requests/{second}/cancel/").json()["status"]
        == "cancelled"
    )
    assert (
        api(crew.viewer)
        .get("/api/v1/swap-requests/", {"status": "cancelled"})
        .json()["results"][0]["id"]
        == second
    )
