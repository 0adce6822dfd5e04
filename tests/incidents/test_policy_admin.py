"""The escalation policy admin a newcomer can fill in: help on every field, people and schedules
picked from the team, time windows as days + times, clear form errors; and the service incident
settings list that shows every service, defaults included."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from incidents.escalation.admin_forms import POLICY_HELP
from incidents.models import EscalationPolicy, EscalationStep, Schedule, ServiceIncidentSettings
from monitoring.models import Service
from tests.tocsin.test_admin import change_form_data
from tocsin.models import Event

ADD = "admin:incidents_escalationpolicy_add"


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def new_policy(team: Any, **step: Any) -> dict[str, Any]:
    data = {
        "team": team.pk,
        "name": "Out of hours",
        "description": "",
        "repeat_times": 0,
        "repeat_after_minutes": 10,
        "ack_timeout_minutes": 0,
        "steps-TOTAL_FORMS": 1,
        "steps-INITIAL_FORMS": 0,
        "steps-MIN_NUM_FORMS": 0,
        "steps-MAX_NUM_FORMS": 1000,
        "steps-0-delay_minutes": 0,
        "steps-0-hours_condition": "always",
        "steps-0-time_zone": "UTC",
        "steps-0-min_priority": "",
    }
    data.update({f"steps-0-{name}": value for name, value in step.items()})
    return data


def step_errors(response: Any) -> tuple[dict[str, list[str]], list[str]]:
    formset = response.context["inline_admin_formsets"][0].formset
    return formset.errors[0], formset.non_form_errors() + formset.forms[0].non_field_errors()


@pytest.mark.django_db
def test_the_add_page_explains_every_field_and_offers_team_members(crew):
    page = client_for(crew.manager).get(reverse(ADD) + f"?team={crew.team.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    for text in POLICY_HELP.values():
        assert text.replace("“", "&ldquo;")[:30] in html or text[:30] in html
    form = page.context["adminform"].form
    assert all(form.fields[name].help_text for name in form.fields)
    step = page.context["inline_admin_formsets"][0].formset.forms[0]
    assert all(
        step.fields[name].help_text
        for name in step.fields
        if name not in ("id", "policy", "DELETE")
    )
    offered = set(step.fields["users"].queryset.values_list("username", flat=True))
    assert offered == {"viewer", "responder", "manager"}
    assert "windows" not in step.fields  # no raw JSON
    assert step.fields["time_zone"].choices[0][0]  # a list of zones, not free text
    assert form.initial["team"] == str(crew.team.pk)


@pytest.mark.django_db
def test_a_manager_creates_a_policy_with_people_a_schedule_and_a_window(crew):
    schedule = Schedule.objects.create(team=crew.team, name="Primary")
    data = new_policy(
        crew.team,
        users=[crew.responder.pk],
        schedule=schedule.pk,
        hours_condition="outside",
        time_zone="Europe/Paris",
        window1_days=["0", "1", "2", "3", "4"],
        window1_start="09:00",
        window1_end="18:00",
        min_priority="P2",
    )
    response = client_for(crew.manager).post(reverse(ADD), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    step = EscalationStep.objects.get()
    assert step.user_ids == [crew.responder.pk]
    assert step.schedule == schedule
    assert step.windows == [{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"}]
    assert (step.hours_condition, step.time_zone, step.min_priority) == (
        "outside",
        "Europe/Paris",
        "P2",
    )
    assert Event.objects.filter(kind="escalation_policy.created", actor=crew.manager).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("step", "field", "message"),
    [
        (
            {"users": ["x"], "hours_condition": "inside"},
            "users",
            "is not a valid value",
        ),
        ({"notify_team": "on", "hours_condition": "inside"}, "hours_condition", "at least one"),
        (
            {"notify_team": "on", "window1_start": "09:00", "window1_end": "17:00"},
            "window1_days",
            "Tick the days",
        ),
        (
            {"notify_team": "on", "window1_days": ["0"], "window1_start": "09:00"},
            "window1_end",
            "Give the time the window ends",
        ),
        (
            {
                "notify_team": "on",
                "window1_days": ["0"],
                "window1_start": "09:00",
                "window1_end": "09:00",
            },
            "window1_end",
            "another time",
        ),
        ({"notify_team": "on", "window1_days": ["9"]}, "window1_days", "not one of"),
        ({"notify_team": "on", "time_zone": "Mars/Olympus"}, "time_zone", "not one of"),
        ({"notify_team": "on", "min_priority": "P9"}, "min_priority", "not one of"),
        ({"notify_team": "on", "delay_minutes": "-5"}, "delay_minutes", "greater than"),
    ],
)
def test_bad_steps_are_form_errors_next_to_the_field(crew, step, field, message):
    response = client_for(crew.manager).post(reverse(ADD), new_policy(crew.team, **step))
    assert response.status_code == 200
    errors, _ = step_errors(response)
    assert message in " ".join(errors[field]), errors
    assert not EscalationPolicy.objects.exists()


@pytest.mark.django_db
def test_a_step_that_pages_nobody_is_refused(crew):
    response = client_for(crew.manager).post(reverse(ADD), new_policy(crew.team, delay_minutes=5))
    assert response.status_code == 200
    _, general = step_errors(response)
    assert "This step pages nobody" in " ".join(general)


@pytest.mark.django_db
def test_editing_keeps_the_paging_order_and_shows_the_window(crew):
    policy = EscalationPolicy.objects.create(team=crew.team, name="Day")
    EscalationStep.objects.create(
        policy=policy,
        position=0,
        user_ids=[crew.responder.pk, crew.manager.pk],
        hours_condition="inside",
        windows=[{"days": [5, 6], "start": "22:00", "end": "06:00"}],
    )
    client = client_for(crew.manager)
    url = reverse("admin:incidents_escalationpolicy_change", args=[policy.pk])
    page = client.get(url)
    step = page.context["inline_admin_formsets"][0].formset.forms[0]
    assert step["window1_days"].value() == [5, 6]
    assert step["window1_start"].value().strftime("%H:%M") == "22:00"
    data = change_form_data(page)
    data["steps-0-users"] = [crew.viewer.pk, crew.responder.pk, crew.manager.pk]
    data["steps-0-window1_start"] = "21:30"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = policy.steps.get()
    assert saved.user_ids == [crew.responder.pk, crew.manager.pk, crew.viewer.pk]
    assert saved.windows == [{"days": [5, 6], "start": "21:30", "end": "06:00"}]


@pytest.mark.django_db
def test_managers_reach_only_their_teams_policies(crew):
    theirs = EscalationPolicy.objects.create(team=crew.other_team, name="Search")
    url = reverse("admin:incidents_escalationpolicy_change", args=[theirs.pk])
    assert client_for(crew.manager).get(url).status_code in (302, 404)
    response = client_for(crew.manager).post(
        reverse(ADD), new_policy(crew.other_team, notify_team="on")
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["team"]
    for role in ("viewer", "responder"):
        assert client_for(crew.by_role(role)).get(reverse(ADD)).status_code == 302  # to login
    assert not EscalationPolicy.objects.filter(team=crew.other_team).exclude(pk=theirs.pk).exists()


@pytest.mark.django_db
def test_the_settings_list_shows_services_on_the_defaults(crew):
    customised = Service.objects.create(team=crew.team, name="Checkout API")
    plain = Service.objects.create(team=crew.team, name="Search UI")
    Service.objects.create(team=crew.other_team, name="Not mine")
    ServiceIncidentSettings.objects.create(service=customised)
    html = (
        client_for(crew.manager)
        .get(reverse("admin:incidents_serviceincidentsettings_changelist"))
        .content.decode()
    )
    assert "Services using the defaults (1)" in html
    assert f'data-default-service="{plain.pk}"' in html
    assert "Not mine" not in html
    add = reverse("admin:incidents_serviceincidentsettings_add")
    assert f"{add}?service={plain.pk}" in html


@pytest.mark.django_db
def test_group_labels_are_typed_as_a_list_of_names(crew):
    service = Service.objects.create(team=crew.team, name="Checkout API")
    client = client_for(crew.manager)
    add = reverse("admin:incidents_serviceincidentsettings_add")
    data = {
        "service": service.pk,
        "grouping_mode": "labels",
        "group_labels": "",
        "window_minutes": 10,
        "auto_resolve": "on",
        "reopen_window_minutes": 0,
        "storm_threshold": 20,
        "storm_window_minutes": 10,
        "escalation_policy": "",
        "priority_map": "{}",
        "urgency_map": "{}",
    }
    response = client.post(add, data)
    assert response.status_code == 200
    assert "Name at least one label" in response.content.decode()
    response = client.post(add, {**data, "group_labels": "alertname, cluster"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ServiceIncidentSettings.objects.get().group_labels == ["alertname", "cluster"]
