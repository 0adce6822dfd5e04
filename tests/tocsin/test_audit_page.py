"""The audit page (/audit/): managers read their teams' log (administrators every team's),
filtered by actor, object, kind and time, in keyset pages, and export it as CSV; configuration
events name the client address and the state before the change."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import declared_payload
from tocsin.audit.views import PAGE_SIZE
from tocsin.events import record
from tocsin.models import Event
from tocsin.services import update_team


def event(team, kind="team.test", actor=None, subject_id="", label="", **payload):
    with transaction.atomic():
        return record(
            kind,
            team=team,
            actor=actor,
            subject_type="team" if subject_id else "",
            subject_id=subject_id,
            subject_label=label,
            payload=declared_payload(kind, **payload) if kind == "team.test" else payload,
        )


def rows_of(response):
    return [
        int(part.split('"')[0]) for part in response.content.decode().split('data-event-id="')[1:]
    ]


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_viewers_and_responders_may_not_read_the_audit_trail(crew, client, role):
    client.force_login(crew.by_role(role))
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/?format=csv").status_code == 403


def test_anonymous_people_are_sent_to_log_in(client, db):
    response = client.get("/audit/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_manager_sees_only_their_teams_events(crew, client):
    mine = event(crew.team, label="mine")
    theirs = event(crew.other_team, label="theirs")
    system = event(None, label="system")
    client.force_login(crew.manager)
    response = client.get("/audit/")
    assert response.status_code == 200
    assert mine.pk in rows_of(response)
    assert theirs.pk not in rows_of(response) and system.pk not in rows_of(response)
    # Asking for the other team by id is a form error, not a peek.
    response = client.get(f"/audit/?team={crew.other_team.pk}")
    assert response.status_code == 400 and theirs.pk not in rows_of(response)
    assert client.get("/audit/?team=system").status_code == 400
    exported = client.get("/audit/?format=csv")
    ids = [int(row["id"]) for row in csv.DictReader(io.StringIO(b"".join(exported).decode()))]
    assert mine.pk in ids and theirs.pk not in ids and system.pk not in ids


def test_an_administrator_sees_every_team_and_the_system_events(crew, client):
    mine, theirs, system = event(crew.team), event(crew.other_team), event(None)
    client.force_login(crew.admin)
    assert {mine.pk, theirs.pk, system.pk} <= set(rows_of(client.get("/audit/")))
    assert rows_of(client.get("/audit/?team=system&kind=team.test")) == [system.pk]


def test_the_navigation_links_managers_to_it(crew, client):
    client.force_login(crew.manager)
    assert 'href="/audit/"' in client.get("/").content.decode()
    client.force_login(crew.viewer)
    assert 'href="/audit/"' not in client.get("/").content.decode()


def test_it_filters_by_actor_object_kind_and_time(crew, client):
    by_manager = event(crew.team, actor=crew.manager, subject_id="7", label="seven")
    by_responder = event(crew.team, actor=crew.responder, subject_id="8", label="eight")
    with transaction.atomic():
        update_team(crew.team, actor=crew.manager, description="new words")
    updated = Event.objects.get(kind="team.updated")
    client.force_login(crew.manager)

    def ids(query):
        response = client.get(f"/audit/?{query}")
        assert response.status_code == 200, response.content
        return set(rows_of(response))

    assert ids("actor=responder") == {by_responder.pk}
    assert ids("actor=manager") == {by_manager.pk, updated.pk}
    assert ids("subject_type=team&subject_id=7") == {by_manager.pk}
    assert ids("kind=team.updated") == {updated.pk}
    assert ids("kind=team.") >= {by_manager.pk, by_responder.pk, updated.pk}
    assert ids(f"team={crew.team.pk}&actor=manager&kind=team.test") == {by_manager.pk}
    future = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert ids(f"since={future}") == set()
    assert ids(f"since={past}&until={future}&actor=responder") == {by_responder.pk}


@pytest.mark.parametrize(
    "query",
    ["since=yesterday", "cursor=not-a-cursor", "since=2026-01-02T00:00&until=2026-01-01T00:00"],
)
def test_bad_filters_are_a_400_with_the_field_named(crew, client, query):
    client.force_login(crew.manager)
    response = client.get(f"/audit/?{query}")
    assert response.status_code == 400
    assert "not understood" in response.content.decode()


def test_pages_follow_on_without_gaps_or_repeats(crew, client):
    written = [event(crew.team).pk for _ in range(PAGE_SIZE + 7)]
    client.force_login(crew.manager)
    first = client.get("/audit/?kind=team.test")
    assert rows_of(first) == sorted(written, reverse=True)[:PAGE_SIZE]
    older = first.context["older_url"]
    assert older and "kind=team.test" in older
    second = client.get(older)
    assert rows_of(second) == sorted(written, reverse=True)[PAGE_SIZE:]
    assert not second.context["older_url"] and second.context["newer_url"]


def test_the_page_costs_the_same_queries_however_many_events(crew, client):
    client.force_login(crew.manager)
    client.get("/audit/")  # session, roles: warmed
    for _ in range(3):
        event(crew.team)
    with CaptureQueriesContext(connection) as few:
        client.get("/audit/")
    for _ in range(40):
        event(crew.team, actor=crew.manager)
    with CaptureQueriesContext(connection) as many:
        client.get("/audit/")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_csv_export_has_the_filtered_rows_and_no_formulas(crew, client):
    kept = event(crew.team, actor=crew.manager, label='=HYPERLINK("http://evil")')
    event(crew.team, actor=crew.responder)
    client.force_login(crew.manager)
    response = client.get("/audit/?actor=manager&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(r["id"]) for r in rows] == [kept.pk]
    assert rows[0]["subject_label"].startswith("'=")
    assert rows[0]["actor"] == "manager" and rows[0]["team"] == crew.team.slug


def test_configuration_events_keep_the_state_before(crew):
    from incidents.escalation.services import create_policy, update_policy

    policy = create_policy(crew.team, name="Day", actor=crew.manager, steps=[])
    update_policy(policy, actor=crew.manager, name="Night")
    payload = Event.objects.get(kind="escalation_policy.updated").payload
    assert payload["before"]["name"] == "Day" and payload["policy"]["name"] == "Night"


@pytest.mark.django_db(transaction=True)
def test_a_change_over_http_records_the_client_address_not_a_forged_one(crew, web):
    cookie = web.session_cookie(crew.manager)
    with httpx.Client(base_url=web.url, cookies={settings.SESSION_COOKIE_NAME: cookie}) as http:
        http.get(f"/teams/{crew.team.slug}/")
        response = http.post(
            f"/teams/{crew.team.slug}/edit/",
            data={"name": "Payments", "description": "edited over HTTP"},
            headers={
                "X-CSRFToken": http.cookies["csrftoken"],
                "X-Forwarded-For": "6.6.6.6",  # no proxy is trusted: ignored
            },
        )
    assert response.status_code == 302, response.text
    updated = Event.objects.get(kind="team.updated")
    assert updated.ip == "127.0.0.1"
    assert updated.payload["changes"]["description"] == ["", "edited over HTTP"]
    # Events written outside a request carry no address.
    assert event(crew.team).ip is None


def test_a_change_in_the_admin_keeps_the_values_before(crew, client):
    from django.urls import reverse

    from incidents.models import ServiceIncidentSettings
    from monitoring.services import create_service

    service = create_service(crew.team, "Checkout", actor=crew.manager)
    settings_row = ServiceIncidentSettings.objects.create(
        service=service, storm_threshold=8, storm_window_minutes=5
    )
    client.force_login(crew.manager)
    response = client.post(
        reverse("admin:incidents_serviceincidentsettings_change", args=[settings_row.pk]),
        {
            "service": service.pk,
            "grouping_mode": settings_row.grouping_mode,
            "group_labels": "[]",
            "window_minutes": settings_row.window_minutes,
            "reopen_window_minutes": settings_row.reopen_window_minutes,
            "storm_threshold": 12,
            "storm_window_minutes": 5,
            "escalation_policy": "",
            "priority_map": "{}",
            "urgency_map": "{}",
        },
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    updated = Event.objects.get(kind="incident_settings.updated")
    assert updated.payload["before"]["storm_threshold"] == 8
    assert updated.ip == "198.51.100.4" and updated.actor == crew.manager
