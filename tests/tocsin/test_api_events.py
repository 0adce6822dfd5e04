"""/api/v1/events/: the event log, read-only, scoped by team, in the live stream's JSON shape."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.db import transaction
from django.utils import timezone

from tests.conftest import declared_payload
from tests.tocsin.api_support import assert_error, db_state
from tocsin.api.serializers import EventSerializer
from tocsin.events import record
from tocsin.live.render import event_as_dict
from tocsin.models import Event, Team


def add_event(kind: str, team: Team | None, **kwargs: Any) -> Event:
    with transaction.atomic():
        return record(kind, team=team, **kwargs)


@pytest.fixture
def log(crew: Any) -> dict[str, Event]:
    """A few events in each team, one without a team, by different actors."""
    return {
        "created": add_event("team.created", crew.team, subject=crew.team, actor=crew.admin),
        "firing": add_event(
            "alert.firing",
            crew.team,
            subject_type="alert",
            subject_id=7,
            subject_label="disk full",
            actor_label="alertmanager",
            payload=declared_payload("alert.firing", labels={"severity": "critical"}),
        ),
        "ack": add_event(
            "incident.acknowledged",
            crew.team,
            subject_type="incident",
            subject_id=3,
            actor=crew.responder,
            payload={"incident_id": 3},
        ),
        "other": add_event("team.updated", crew.other_team, actor=crew.outsider),
        "teamless": add_event("user.token_created", None, actor=crew.viewer),
    }


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [event["id"] for event in response.json()["results"]]


# --- visibility ---------------------------------------------------------------------------------


def test_member_sees_only_their_teams_events_newest_first(
    crew: Any, api: Any, log: dict[str, Event]
) -> None:
    assert ids(api(crew.viewer).get("/api/v1/events/")) == [
        log["ack"].pk,
        log["firing"].pk,
        log["created"].pk,
    ]


def test_outsider_sees_only_the_other_teams_events(
    crew: Any, api: Any, log: dict[str, Event]
) -> None:
    assert ids(api(crew.outsider).get("/api/v1/events/")) == [log["other"].pk]


def test_superuser_sees_every_event_including_teamless_ones(
    crew: Any, api: Any, log: dict[str, Event]
) -> None:
    assert ids(api(crew.admin).get("/api/v1/events/")) == sorted(
        (e.pk for e in log.values()), reverse=True
    )


def test_event_detail_for_a_member(crew: Any, api: Any, log: dict[str, Event]) -> None:
    response = api(crew.viewer).get(f"/api/v1/events/{log['firing'].pk}/")

    assert response.status_code == 200
    assert response.json() == event_as_dict(Event.objects.get(pk=log["firing"].pk))


@pytest.mark.parametrize("event", ["other", "teamless"])
def test_events_of_other_teams_are_not_found(
    crew: Any, api: Any, log: dict[str, Event], event: str
) -> None:
    hidden = api(crew.manager).get(f"/api/v1/events/{log[event].pk}/")
    missing = api(crew.manager).get("/api/v1/events/999999/")

    assert assert_error(hidden, 404, "not_found") == assert_error(missing, 404, "not_found")


# --- the shape ----------------------------------------------------------------------------------


def test_api_events_are_identical_to_the_live_streams(
    crew: Any, api: Any, log: dict[str, Event]
) -> None:
    listed = api(crew.admin).get("/api/v1/events/").json()["results"]

    expected = [event_as_dict(e) for e in Event.objects.select_related("team").order_by("-id")]
    assert listed == expected
    firing = next(e for e in listed if e["kind"] == "alert.firing")
    assert firing["team"] == {"id": crew.team.pk, "slug": "payments"}
    assert firing["subject"] == {"type": "alert", "id": "7", "label": "disk full"}
    assert firing["actor"] == {"id": None, "label": "alertmanager"}
    assert firing["payload"]["labels"] == {"severity": "critical"}
    teamless = next(e for e in listed if e["kind"] == "user.token_created")
    assert teamless["team"] is None


def test_the_documented_fields_are_the_live_streams_keys(crew: Any, log: dict[str, Event]) -> None:
    # The serializer's declared fields only describe event_as_dict for the schema: keep in step.
    event = Event.objects.select_related("team").get(pk=log["firing"].pk)
    live = event_as_dict(event)
    serializer = EventSerializer()

    assert list(serializer.fields) == list(live)
    for name in ("team", "subject", "actor"):
        assert set(serializer.fields[name].fields) == set(live[name])
    assert EventSerializer(event).data == live


# --- filters ------------------------------------------------------------------------------------


def test_filter_by_team_id_or_slug(crew: Any, api: Any, log: dict[str, Event]) -> None:
    client = api(crew.admin)

    by_id = ids(client.get(f"/api/v1/events/?team={crew.other_team.pk}"))
    by_slug = ids(client.get("/api/v1/events/?team=search"))

    assert by_id == by_slug == [log["other"].pk]


def test_filtering_on_a_team_you_cannot_view_is_refused_like_an_unknown_team(
    crew: Any, api: Any, log: dict[str, Event]
) -> None:
    client = api(crew.viewer)

    hidden = client.get(f"/api/v1/events/?team={crew.other_team.slug}")
    unknown = client.get("/api/v1/events/?team=no-such-team")

    assert assert_error(hidden, 400, "invalid", {"team"}) == assert_error(
        unknown, 400, "invalid", {"team"}
    )


def test_filter_by_kind_and_kind_prefix(crew: Any, api: Any, log: dict[str, Event]) -> None:
    client = api(crew.admin)

    assert ids(client.get("/api/v1/events/?kind=alert.firing")) == [log["firing"].pk]
    assert ids(client.get("/api/v1/events/?kind=alert")) == []
    assert ids(client.get("/api/v1/events/?kind_prefix=team.")) == [
        log["other"].pk,
        log["created"].pk,
    ]


def test_filter_by_subject(crew: Any, api: Any, log: dict[str, Event]) -> None:
    client = api(crew.admin)

    response = client.get("/api/v1/events/?subject_type=incident&subject_id=3")

    assert ids(response) == [log["ack"].pk]


def test_filter_by_actor(crew: Any, api: Any, log: dict[str, Event]) -> None:
    assert ids(api(crew.admin).get(f"/api/v1/events/?actor={crew.responder.pk}")) == [log["ack"].pk]


def test_after_returns_only_newer_events(crew: Any, api: Any, log: dict[str, Event]) -> None:
    response = api(crew.viewer).get(f"/api/v1/events/?after={log['created'].pk}")

    assert ids(response) == [log["ack"].pk, log["firing"].pk]


def test_since_is_inclusive_and_until_exclusive(crew: Any, api: Any) -> None:
    start = timezone.now().replace(microsecond=0) - timedelta(hours=3)
    # Events an hour apart (created directly: record() always stamps "now").
    made = [
        Event.objects.create(
            kind="probe.failed", team=crew.team, created_at=start + timedelta(hours=h)
        )
        for h in range(3)
    ]
    since = quote((start + timedelta(hours=1)).isoformat())
    until = quote((start + timedelta(hours=2)).isoformat())

    response = api(crew.viewer).get(f"/api/v1/events/?since={since}&until={until}")

    assert ids(response) == [made[1].pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=abc", "after"),
        ("after=-1", "after"),
        ("after=1.5", "after"),
        ("actor=me", "actor"),
        ("since=yesterday", "since"),
        ("until=2024-13-40T00:00:00Z", "until"),
        ("since=2024-06-02T00:00:00Z&until=2024-06-01T00:00:00Z", "until"),
        ("tema=payments", "tema"),
        ("page_size=0", "page_size"),
        ("page_size=lots", "page_size"),
        ("cursor=not-a-cursor", "cursor"),
    ],
)
def test_bad_filter_values_are_400s_naming_the_parameter(
    crew: Any, api: Any, log: dict[str, Event], query: str, field: str
) -> None:
    response = api(crew.viewer).get(f"/api/v1/events/?{query}")

    assert_error(response, 400, "invalid", {field})


# --- pagination ---------------------------------------------------------------------------------


def test_cursor_pages_walk_the_whole_log_without_repeats(crew: Any, api: Any) -> None:
    made = [add_event("team.updated", crew.team).pk for n in range(7)]
    client = api(crew.viewer)

    seen: list[int] = []
    url: str | None = "/api/v1/events/?page_size=3"
    while url:
        body = client.get(url).json()
        seen += [e["id"] for e in body["results"]]
        url = body["next"]
        # New events arriving between pages must not shift what the next page holds.
        add_event("team.updated", crew.team)

    assert seen == sorted(made, reverse=True)


def test_event_list_query_count_does_not_grow_with_events(
    crew: Any, api: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(60):
        add_event("team.updated", crew.team if n % 2 else crew.other_team, actor=crew.admin)
    client = api(crew.admin)

    with django_assert_max_num_queries(3):  # session, user, page (with teams joined)
        body = client.get("/api/v1/events/?page_size=100").json()

    assert len(body["results"]) == 60


def test_member_event_list_query_count_with_a_team_filter(
    crew: Any, api: Any, django_assert_max_num_queries: Any
) -> None:
    for _ in range(30):
        add_event("team.updated", crew.team)
    client = api(crew.viewer)

    with django_assert_max_num_queries(5):  # session, user, roles, team lookup, page
        body = client.get("/api/v1/events/?team=payments&page_size=100").json()

    assert len(body["results"]) == 30


# --- read-only ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_events_cannot_be_written(crew: Any, api: Any, log: dict[str, Event], method: str) -> None:
    client = api(crew.admin)
    before = db_state()

    on_list = getattr(client, method)("/api/v1/events/", {"kind": "x"}, format="json")
    on_item = getattr(client, method)(f"/api/v1/events/{log['firing'].pk}/", {}, format="json")

    assert_error(on_list, 405, "method_not_allowed")
    assert_error(on_item, 405, "method_not_allowed")
    assert db_state() == before
