"""Admin for escalation policies, service incident settings and incidents (read-only)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from incidents.models import EscalationPolicy, Incident, ServiceIncidentSettings
from monitoring.models import Service
from tests.incidents.core_support import NOON, fire, policy, settings_form
from tocsin.models import Event, Membership


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _policy_form(team, name="Checkout", **steps_extra) -> dict:
    users = dict(Membership.objects.filter(team=team).values_list("user__username", "user_id"))
    return {
        "team": team.pk,
        "name": name,
        "description": "",
        "repeat_times": 1,
        "repeat_after_minutes": 10,
        "ack_timeout_minutes": 0,
        "steps-TOTAL_FORMS": 2,
        "steps-INITIAL_FORMS": 0,
        "steps-MIN_NUM_FORMS": 0,
        "steps-MAX_NUM_FORMS": 1000,
        "steps-0-delay_minutes": 0,
        "steps-0-users": [users.get("responder"), users.get("manager")],
        "steps-0-hours_condition": "always",
        "steps-0-time_zone": "UTC",
        "steps-0-min_priority": "",
        "steps-1-delay_minutes": 15,
        "steps-1-notify_team": "on",
        "steps-1-hours_condition": "always",
        "steps-1-time_zone": "UTC",
        "steps-1-min_priority": "P2",
        **steps_extra,
    }


def test_manager_creates_a_policy_with_steps_through_the_service(crew):
    response = logged_in(crew.manager).post(
        reverse("admin:incidents_escalationpolicy_add"), _policy_form(crew.team)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    created = EscalationPolicy.objects.get()
    snapshot = created.snapshot()
    # New people are paged by username (the order of those already saved is kept).
    assert [s["user_ids"] for s in snapshot["steps"]] == [[crew.manager.pk, crew.responder.pk], []]
    assert snapshot["steps"][1]["notify_team"] and snapshot["steps"][1]["min_priority"] == "P2"
    event = Event.objects.get(kind="escalation_policy.created")
    assert event.actor == crew.manager and len(event.payload["policy"]["steps"]) == 2


def test_manager_edits_a_policy_and_its_steps(crew):
    p = policy(crew.team, {"delay_minutes": 0, "user_ids": [crew.responder.pk]}, name="Old")
    step = p.steps.get()
    data = _policy_form(crew.team, name="New")
    data.pop("team")
    data.update(
        {
            "steps-TOTAL_FORMS": 1,
            "steps-INITIAL_FORMS": 1,
            "steps-0-id": step.pk,
            "steps-0-policy": p.pk,
            "steps-0-delay_minutes": 5,
            "steps-0-users": [crew.manager.pk],
        }
    )
    for key in [k for k in data if k.startswith("steps-1-")]:
        data.pop(key)
    response = logged_in(crew.manager).post(
        reverse("admin:incidents_escalationpolicy_change", args=[p.pk]), data
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    p.refresh_from_db()
    assert p.name == "New"
    assert [(s.delay_minutes, s.user_ids) for s in p.steps.all()] == [(5, [crew.manager.pk])]
    assert Event.objects.filter(kind="escalation_policy.updated").count() == 1


def test_a_step_naming_a_stranger_is_a_form_error(crew):
    response = logged_in(crew.manager).post(
        reverse("admin:incidents_escalationpolicy_add"),
        _policy_form(crew.team, **{"steps-0-users": [crew.outsider.pk]}),
    )
    assert response.status_code == 200
    assert "is not one of the available choices" in response.content.decode()
    assert not EscalationPolicy.objects.exists()
    assert not Event.objects.filter(kind__startswith="escalation_policy").exists()


def test_manager_cannot_create_a_policy_in_a_team_they_do_not_manage(crew):
    response = logged_in(crew.outsider).post(
        reverse("admin:incidents_escalationpolicy_add"), _policy_form(crew.team)
    )
    assert response.status_code == 200
    assert not EscalationPolicy.objects.exists()


def test_managers_see_only_their_teams_rows(crew, service):
    policy(crew.team, name="Ours")
    policy(crew.other_team, name="Theirs")
    fire(service, NOON)
    ServiceIncidentSettings.objects.create(service=service)
    client = logged_in(crew.outsider)
    html = client.get(reverse("admin:incidents_escalationpolicy_changelist")).content.decode()
    assert "Theirs" in html and "Ours" not in html
    html = client.get(reverse("admin:incidents_incident_changelist")).content.decode()
    assert "HighLatency" not in html
    html = client.get(reverse("admin:incidents_serviceincidentsettings_changelist"))
    assert "Checkout API" not in html.content.decode()
    incident = Incident.objects.get()
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    assert client.get(url).status_code in (302, 404)
    html = logged_in(crew.manager).get(reverse("admin:incidents_incident_changelist"))
    assert "HighLatency" in html.content.decode()


def test_incident_admin_is_read_only(crew, service):
    fire(service, NOON)
    incident = Incident.objects.get()
    client = logged_in(crew.manager)
    assert client.get(reverse("admin:incidents_incident_add")).status_code == 403
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="title"' not in page.content.decode()
    client.post(url, {"title": "changed"})
    assert Incident.objects.get().title == incident.title


@pytest.mark.parametrize(
    ("action", "status"),
    [("acknowledge_incidents", "acknowledged"), ("resolve_incidents", "resolved")],
)
def test_incident_admin_actions_call_the_services(crew, service, action, status):
    fire(service, NOON)
    incident = Incident.objects.get()
    response = logged_in(crew.manager).post(
        reverse("admin:incidents_incident_changelist"),
        {"action": action, "_selected_action": [incident.pk]},
    )
    assert response.status_code == 302
    assert Incident.objects.get().status == status
    event = Event.objects.get(kind=f"incident.{status}")
    assert event.actor == crew.manager and event.payload["via"] == "admin"


def test_settings_admin_saves_and_records_an_event(crew, service):
    p = policy(crew.team, name="Ours")
    response = logged_in(crew.manager).post(
        reverse("admin:incidents_serviceincidentsettings_add"),
        {
            "service": service.pk,
            "grouping_mode": "labels",
            "group_labels": '["cluster"]',
            "window_minutes": 10,
            "auto_resolve": "on",
            "reopen_window_minutes": 30,
            "storm_threshold": 8,
            "storm_window_minutes": 5,
            "escalation_policy": p.pk,
            "priority_map": '{"critical": "P1"}',
            "urgency_map": '{"critical": "high"}',
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = ServiceIncidentSettings.objects.get()
    assert (saved.grouping_mode, saved.group_labels, saved.escalation_policy) == (
        "labels",
        ["cluster"],
        p,
    )
    assert (saved.storm_threshold, saved.storm_window_minutes) == (8, 5)
    assert Event.objects.get(kind="incident_settings.created").actor == crew.manager


def test_settings_admin_refuses_an_empty_storm_window(crew, service):
    response = logged_in(crew.manager).post(
        reverse("admin:incidents_serviceincidentsettings_add"),
        settings_form(service, storm_window_minutes=0),
    )
    assert response.status_code == 200
    assert "greater than or equal to 1" in response.content.decode()
    assert not ServiceIncidentSettings.objects.exists()


def test_settings_admin_refuses_a_foreign_policy_and_service(crew, service):
    theirs = policy(crew.other_team, name="Theirs")
    other = Service.objects.create(team=crew.other_team, name="Search API")
    client = logged_in(crew.manager)
    base = {
        "grouping_mode": "fingerprint",
        "group_labels": "[]",
        "window_minutes": 10,
        "reopen_window_minutes": 0,
        "storm_threshold": 20,
        "storm_window_minutes": 10,
        "priority_map": "{}",
        "urgency_map": "{}",
    }
    response = client.post(
        reverse("admin:incidents_serviceincidentsettings_add"),
        {**base, "service": service.pk, "escalation_policy": theirs.pk},
    )
    assert response.status_code == 200
    response = client.post(
        reverse("admin:incidents_serviceincidentsettings_add"), {**base, "service": other.pk}
    )
    assert response.status_code == 200
    assert not ServiceIncidentSettings.objects.exists()
