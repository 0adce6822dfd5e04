"""The Incidents list and one incident's page: filters, bulk actions, timeline, roles."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from incidents.escalation import engine as escalation
from incidents.lifecycle import services
from incidents.models import Incident, IncidentStatus
from monitoring.models import Service
from tests.incidents.core_support import NOON, clear, fire, policy, settings_for
from tocsin.models import Event


@pytest.fixture
def other_service(crew) -> Service:
    return Service.objects.create(team=crew.other_team, name="Search API")


ROLES = ["viewer", "responder", "manager", "outsider", "admin"]
MAY_VIEW = {"viewer", "responder", "manager", "admin"}
MAY_RESPOND = {"responder", "manager", "admin"}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def incident(service):
    fire(service, NOON)
    return Incident.objects.get()


def _snapshot(incident: Incident) -> tuple:
    incident.refresh_from_db()
    return (
        incident.status,
        incident.priority,
        incident.assignee_id,
        Event.objects.filter(subject_type="incident", subject_id=str(incident.pk)).count(),
    )


# -- the list --------------------------------------------------------------------------------
def test_list_shows_open_incidents_by_default(crew, service):
    fire(service, NOON, alertname="A")
    fire(service, NOON, alertname="B")
    done, still = Incident.objects.order_by("id")
    services.resolve(done, actor=crew.responder)
    html = logged_in(crew.viewer).get(reverse("incidents")).content.decode()
    assert f'id="incident-{still.pk}"' in html
    assert f'id="incident-{done.pk}"' not in html
    html = logged_in(crew.viewer).get(reverse("incidents") + "?status=resolved").content.decode()
    assert f'id="incident-{done.pk}"' in html and f'id="incident-{still.pk}"' not in html
    html = logged_in(crew.viewer).get(reverse("incidents") + "?status=all").content.decode()
    assert f'id="incident-{done.pk}"' in html and f'id="incident-{still.pk}"' in html


def test_list_filters_by_priority_service_and_team(crew, service, other_service):
    fire(service, NOON, alertname="A", _severity="critical")  # P1
    fire(service, NOON, alertname="B", _severity="warning")  # P3
    p1, p3 = Incident.objects.order_by("id")
    other = Service_incident(other_service)
    client = logged_in(crew.admin)
    html = client.get(reverse("incidents") + "?priority=P1").content.decode()
    assert f'id="incident-{p1.pk}"' in html and f'id="incident-{p3.pk}"' not in html
    html = client.get(reverse("incidents") + f"?service={other_service.pk}").content.decode()
    assert f'id="incident-{other.pk}"' in html and f'id="incident-{p1.pk}"' not in html
    html = client.get(reverse("incidents") + f"?team={crew.team.slug}").content.decode()
    assert f'id="incident-{p1.pk}"' in html and f'id="incident-{other.pk}"' not in html


def Service_incident(svc) -> Incident:
    fire(svc, NOON, alertname="Other")
    return Incident.objects.get(service=svc)


def test_list_shows_colours_age_assignee_and_alert_count(crew, service):
    settings_for(service, grouping_mode="labels", group_labels=["cluster"])
    fire(service, NOON, alertname="A", cluster="eu")
    fire(service, NOON, alertname="B", cluster="eu")
    incident = Incident.objects.get()
    services.acknowledge(incident, actor=crew.responder)
    html = logged_in(crew.viewer).get(reverse("incidents")).content.decode()
    row = re.search(rf'<tr id="incident-{incident.pk}".*?</tr>', html, re.S).group(0)
    assert "badge-critical" in row  # P1
    assert "badge-acknowledged" in row
    assert "responder" in row
    assert '<td class="num">2</td>' in row
    assert "<time" in row


def test_list_hides_other_teams_and_a_foreign_team_filter_is_404(crew, service, other_service):
    fire(service, NOON)
    mine = Incident.objects.get(service=service)
    theirs = Service_incident(other_service)
    html = logged_in(crew.viewer).get(reverse("incidents")).content.decode()
    assert f'id="incident-{mine.pk}"' in html and f'id="incident-{theirs.pk}"' not in html
    response = logged_in(crew.viewer).get(reverse("incidents") + "?team=search")
    assert response.status_code == 404
    response = logged_in(crew.viewer).get(reverse("incidents") + f"?service={other_service.pk}")
    assert response.status_code == 404


def test_list_refreshes_live_from_incident_events(crew, incident):
    html = logged_in(crew.viewer).get(reverse("incidents")).content.decode()
    assert 'hx-trigger="tocsin:live-incident from:body delay:750ms"' in html
    assert f'hx-get="{reverse("incidents_table")}?status=open"' in html
    assert "data-live-stream" in html
    table = logged_in(crew.viewer).get(reverse("incidents_table"))
    assert table.status_code == 200
    assert table.content.decode().startswith('<section id="incidents-table"')


def test_bad_filters_are_a_400(crew, incident):
    response = logged_in(crew.viewer).get(reverse("incidents") + "?priority=P9")
    assert response.status_code == 400


def test_viewers_get_no_checkboxes_responders_do(crew, incident):
    viewer = logged_in(crew.viewer).get(reverse("incidents")).content.decode()
    assert 'name="ids"' not in viewer and 'value="acknowledge"' not in viewer
    responder = logged_in(crew.responder).get(reverse("incidents")).content.decode()
    assert f'name="ids" value="{incident.pk}"' in responder
    assert 'value="acknowledge"' in responder and 'value="resolve"' in responder


def test_list_query_count_is_bounded(crew, service, django_assert_max_num_queries):
    settings_for(service, storm_threshold=0)  # an incident per alert, however many at once
    for n in range(100):
        fire(service, NOON, alertname=f"A{n}")
    assert Incident.objects.count() == 100
    client = logged_in(crew.responder)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("incidents"))
    assert response.content.decode().count('data-incident-id="') == 100
    with django_assert_max_num_queries(10):
        client.get(reverse("incidents_table"))


# -- bulk actions ----------------------------------------------------------------------------
def test_bulk_acknowledge_and_resolve(crew, service):
    fire(service, NOON, alertname="A")
    fire(service, NOON, alertname="B")
    a, b = Incident.objects.order_by("id")
    client = logged_in(crew.responder)
    response = client.post(
        reverse("incidents_bulk"), {"action": "acknowledge", "ids": [a.pk, b.pk]}
    )
    assert response.status_code == 302
    assert set(Incident.objects.values_list("status", flat=True)) == {"acknowledged"}
    client.post(reverse("incidents_bulk"), {"action": "resolve", "ids": [a.pk]})
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, b.status) == ("resolved", "acknowledged")
    kinds = list(
        Event.objects.filter(subject_type="incident", subject_id=str(a.pk))
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds[-2:] == ["incident.acknowledged", "incident.resolved"]


def test_bulk_acknowledge_of_a_resolved_incident_is_reported_not_a_crash(crew, incident):
    services.resolve(incident, actor=crew.responder)
    response = logged_in(crew.responder).post(
        reverse("incidents_bulk"), {"action": "acknowledge", "ids": [incident.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "Not changed" in response.content.decode()


@pytest.mark.parametrize("role", ["viewer", "outsider"])
def test_bulk_is_refused_and_changes_nothing(crew, incident, role):
    before = _snapshot(incident)
    response = logged_in(crew.by_role(role)).post(
        reverse("incidents_bulk"), {"action": "resolve", "ids": [incident.pk]}
    )
    assert response.status_code == (403 if role == "viewer" else 404)
    assert _snapshot(incident) == before


def test_bulk_with_one_foreign_incident_changes_none(crew, service, other_service):
    fire(service, NOON)
    mine = Incident.objects.get(service=service)
    theirs = Service_incident(other_service)
    response = logged_in(crew.responder).post(
        reverse("incidents_bulk"), {"action": "resolve", "ids": [mine.pk, theirs.pk]}
    )
    assert response.status_code == 404
    assert Incident.objects.filter(status=IncidentStatus.RESOLVED).count() == 0


def test_bulk_unknown_action_and_anonymous(crew, incident):
    response = logged_in(crew.responder).post(
        reverse("incidents_bulk"), {"action": "delete", "ids": [incident.pk]}
    )
    assert response.status_code == 400
    response = Client().post(reverse("incidents_bulk"), {"action": "resolve", "ids": [incident.pk]})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Incident.objects.get().status == "triggered"


# -- one incident ----------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_incident_page_role_matrix(crew, incident, role):
    response = logged_in(crew.by_role(role)).get(incident.get_absolute_url())
    assert response.status_code == (200 if role in MAY_VIEW else 404)
    if role in MAY_VIEW:
        html = response.content.decode()
        assert incident.title in html
        has_buttons = f'action="{reverse("incident_action", args=[incident.pk, "acknowledge"])}"'
        assert (has_buttons in html) == (role in MAY_RESPOND)
        assert ('name="text"' in html) == (role in MAY_RESPOND)


def test_anonymous_is_sent_to_login(incident):
    for url in (incident.get_absolute_url(), reverse("incident_live", args=[incident.pk])):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_unknown_incident_is_404(crew):
    assert logged_in(crew.admin).get(reverse("incident", args=[999])).status_code == 404


def test_detail_shows_facts_timeline_in_order_and_alerts(crew, service):
    settings_for(service, grouping_mode="labels", group_labels=["cluster"])
    fire(service, NOON, alertname="DiskFull", cluster="eu", _severity="warning")
    incident = Incident.objects.get()
    fire(service, NOON, alertname="HighLatency", cluster="eu")
    services.acknowledge(incident, actor=crew.responder)
    services.add_note(incident, "Looking at <the> database", actor=crew.responder)
    services.set_priority(incident, "P1", actor=crew.manager)
    services.reassign(incident, crew.manager, actor=crew.responder)
    services.set_commander(incident, crew.manager, actor=crew.manager)
    services.post_status_update(incident, "Checkout is slow", actor=crew.manager)
    services.resolve(incident, actor=crew.manager)
    html = logged_in(crew.viewer).get(incident.get_absolute_url()).content.decode()
    sentences = [
        "Triggered",
        "Alert “HighLatency” joined the incident",
        "Acknowledged",
        "Added a note",
        "Priority changed from P3 to P1",
        "Assigned to manager",
        "manager is now the incident commander",
        "Posted a status update",
        "Resolved",
    ]
    timeline = html[html.index('id="timeline-head"') :]
    positions = [timeline.index(s) for s in sentences]
    assert positions == sorted(positions)
    assert "Looking at &lt;the&gt; database" in timeline  # escaped
    assert "Checkout is slow" in timeline
    event_ids = [int(i) for i in re.findall(r'<li class="event" data-event-id="(\d+)"', timeline)]
    assert event_ids == sorted(event_ids) and len(event_ids) >= len(sentences)
    # Actors and the alerts with their severity.
    assert '<span class="event-actor">responder</span>' in timeline
    assert 'data-severity="warning"' in html and 'data-severity="critical"' in html
    assert "badge-ok" in html  # resolved status


def test_detail_shows_alert_events_and_their_resolution(crew, service):
    fire(service, NOON)
    incident = Incident.objects.get()
    clear(service, NOON)
    html = logged_in(crew.viewer).get(incident.get_absolute_url()).content.decode()
    assert "Alert “HighLatency” firing" in html or "Alert “HighLatency” fired" in html
    assert "resolved" in html


def test_detail_shows_the_policy_snapshot_and_escalation_state(crew, service):
    p = policy(
        crew.team,
        {"delay_minutes": 0, "user_ids": [crew.responder.pk]},
        {"delay_minutes": 15, "notify_team": True, "min_priority": "P2"},
        name="Checkout on call",
        repeat_times=1,
    )
    settings_for(service, escalation_policy=p)
    fire(service, NOON)
    incident = Incident.objects.get()
    escalation.advance_escalations(NOON)
    incident.refresh_from_db()
    html = logged_in(crew.viewer).get(incident.get_absolute_url()).content.decode()
    assert "Checkout on call" in html
    assert "At once: page responder" in html
    assert "After 15 min: page the whole team" in html
    assert "only P2 or more urgent" in html
    assert "Next: step 2 at" in html
    assert "Escalation step 1 paged responder" in html
    assert "Repeats 1 time" in html


def test_detail_live_partial(crew, incident):
    page = logged_in(crew.viewer).get(incident.get_absolute_url()).content.decode()
    assert f'hx-get="{reverse("incident_live", args=[incident.pk])}"' in page
    assert "tocsin:live-incident from:body delay:750ms" in page
    response = logged_in(crew.viewer).get(reverse("incident_live", args=[incident.pk]))
    assert response.status_code == 200
    assert response.content.decode().startswith('<div id="incident-live"')
    assert (
        logged_in(crew.outsider).get(reverse("incident_live", args=[incident.pk])).status_code
        == 404
    )


def test_detail_query_count_is_bounded(crew, service, django_assert_max_num_queries):
    settings_for(service, grouping_mode="labels", group_labels=["cluster"])
    for n in range(30):
        fire(service, NOON, alertname=f"A{n}", cluster="eu")
    incident = Incident.objects.get()
    for n in range(20):
        services.add_note(incident, f"note {n}", actor=crew.responder)
    client = logged_in(crew.responder)
    with django_assert_max_num_queries(16):
        response = client.get(incident.get_absolute_url())
    assert response.content.decode().count('class="event"') >= 50


# -- actions on one incident -----------------------------------------------------------------
ACTION_DATA = {
    "acknowledge": {},
    "resolve": {},
    "note": {"text": "a note"},
    "status-update": {"text": "an update"},
    "priority": {"priority": "P2"},
    "reassign": "manager",
}


def _post(client, incident, action, crew):
    data = ACTION_DATA[action]
    if data == "manager":
        data = {"user": crew.manager.pk}
    return client.post(reverse("incident_action", args=[incident.pk, action]), data)


@pytest.mark.parametrize("action", list(ACTION_DATA))
@pytest.mark.parametrize("role", ROLES)
def test_action_role_matrix(crew, incident, role, action):
    before = _snapshot(incident)
    response = _post(logged_in(crew.by_role(role)), incident, action, crew)
    if role in MAY_RESPOND:
        assert response.status_code == 302
        assert response["Location"] == incident.get_absolute_url()
        assert _snapshot(incident) != before
    else:
        assert response.status_code == (403 if role in MAY_VIEW else 404)
        assert _snapshot(incident) == before


@pytest.mark.parametrize("action", list(ACTION_DATA))
def test_anonymous_actions_change_nothing(crew, incident, action):
    before = _snapshot(incident)
    response = _post(Client(), incident, action, crew)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert _snapshot(incident) == before


def test_reopen(crew, incident):
    services.resolve(incident, actor=crew.responder)
    viewer = logged_in(crew.viewer).post(reverse("incident_action", args=[incident.pk, "reopen"]))
    assert viewer.status_code == 403
    assert Incident.objects.get().status == "resolved"
    page = logged_in(crew.responder).get(incident.get_absolute_url()).content.decode()
    assert reverse("incident_action", args=[incident.pk, "reopen"]) in page
    logged_in(crew.responder).post(reverse("incident_action", args=[incident.pk, "reopen"]))
    assert Incident.objects.get().status == "triggered"


def test_actions_are_post_only_and_unknown_ones_404(crew, incident):
    client = logged_in(crew.responder)
    assert client.get(reverse("incident_action", args=[incident.pk, "resolve"])).status_code == 405
    assert client.post(reverse("incident_action", args=[incident.pk, "explode"])).status_code == 404
    assert Incident.objects.get().status == "triggered"


def test_refusals_of_the_service_show_as_messages(crew, incident):
    client = logged_in(crew.responder)
    response = client.post(
        reverse("incident_action", args=[incident.pk, "reassign"]),
        {"user": crew.viewer.pk},
        follow=True,
    )
    assert "not a responder" in response.content.decode()
    response = client.post(
        reverse("incident_action", args=[incident.pk, "note"]), {"text": "  "}, follow=True
    )
    assert "Write something" in response.content.decode()
    response = client.post(
        reverse("incident_action", args=[incident.pk, "priority"]), {"priority": "P9"}, follow=True
    )
    assert "One of P1" in response.content.decode()
    incident.refresh_from_db()
    assert (incident.assignee_id, incident.priority) == (None, "P1")


def test_reassign_choices_are_the_team_responders(crew, incident):
    html = logged_in(crew.responder).get(incident.get_absolute_url()).content.decode()
    select = re.search(r'<select id="assignee".*?</select>', html, re.S).group(0)
    assert f'value="{crew.responder.pk}"' in select and f'value="{crew.manager.pk}"' in select
    assert f'value="{crew.viewer.pk}"' not in select
    assert f'value="{crew.outsider.pk}"' not in select
