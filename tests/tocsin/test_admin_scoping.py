"""Declarative scoping of foreign keys in team-scoped admins (``team_scoped_fields``).

A manager's admin form offers only services, schedules and people of the teams they manage; a
forged POST naming another team's row is a form error and writes nothing; a row of another
team they also manage is refused when it is not the edited row's team. Superusers may pick
from every team, and the same-team rule holds for them too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents.models import (
    EscalationPolicy,
    EscalationStep,
    ResponseTarget,
    Schedule,
    ScheduleOverride,
)
from incidents.slas.services import SLA_SERVICE_SLUG
from monitoring.models import Service, Silence
from tests.conftest import make_user
from tests.tocsin.test_admin import change_form_data
from tocsin.models import Event, Membership, Role, Team


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def doors(crew: Any) -> Team:
    """A second team the crew's manager manages (Search is managed by the outsider only)."""
    team = Team.objects.create(name="Doors")
    Membership.objects.create(team=team, user=crew.manager, role=Role.MANAGER)
    return team


def choices(response: Any, field: str) -> set[int]:
    form = response.context["adminform"].form
    return {row.pk for row in form.fields[field].queryset}


# -- a team's own foreign key: silences (monitoring) -----------------------------------------------
def silence_post(team: Team, service: Service) -> dict[str, Any]:
    return {
        "team": team.pk,
        "service": service.pk,
        "matchers": 'alertname="Down"',
        "duration": "1h",
        "comment": "deploy",
    }


def test_silence_form_offers_only_services_of_managed_teams(crew: Any, doors: Team) -> None:
    ours = Service.objects.create(team=crew.team, name="Checkout")
    theirs = Service.objects.create(team=crew.other_team, name="Search API")
    door = Service.objects.create(team=doors, name="Door API")
    page = client_for(crew.manager).get(reverse("admin:monitoring_silence_add"))
    assert choices(page, "service") == {ours.pk, door.pk}
    page = client_for(crew.admin).get(reverse("admin:monitoring_silence_add"))
    assert {ours.pk, theirs.pk, door.pk} <= choices(page, "service")


def test_a_forged_service_of_another_team_is_a_form_error(crew: Any) -> None:
    theirs = Service.objects.create(team=crew.other_team, name="Search API")
    response = client_for(crew.manager).post(
        reverse("admin:monitoring_silence_add"), silence_post(crew.team, theirs)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["service"] == ["Choose a service of a team you manage."]
    assert not Silence.objects.exists()
    assert not Event.objects.filter(kind="silence.created").exists()


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_a_service_of_another_managed_team_is_refused(crew: Any, doors: Team, who: str) -> None:
    door = Service.objects.create(team=doors, name="Door API")
    response = client_for(crew.by_role(who)).post(
        reverse("admin:monitoring_silence_add"), silence_post(crew.team, door)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["service"] == ["This service belongs to another team."]
    assert not Silence.objects.exists()


def test_the_team_of_an_existing_row_decides(crew: Any, doors: Team) -> None:
    """Response targets: the team is read-only once created; a service must still match it."""
    target = ResponseTarget.objects.create(team=crew.team, priority="P1", ack_minutes=5)
    door = Service.objects.create(team=doors, name="Door API")
    Service.objects.create(team=crew.team, name="SLAs", slug=SLA_SERVICE_SLUG)
    url = reverse("admin:incidents_responsetarget_change", args=[target.pk])
    client = client_for(crew.manager)
    page = client.get(url)
    assert door.pk in choices(page, "service")
    assert not Service.objects.filter(pk__in=choices(page, "service"), slug=SLA_SERVICE_SLUG)
    data = {**change_form_data(page), "service": door.pk}
    response = client.post(url, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["service"]
    target.refresh_from_db()
    assert target.service_id is None


# -- inlines: a step's schedule, an override's person (incidents) ---------------------------------
@pytest.fixture
def policy(crew: Any) -> EscalationPolicy:
    policy = EscalationPolicy.objects.create(team=crew.team, name="Checkout")
    EscalationStep.objects.create(policy=policy, position=0, notify_team=True)
    return policy


def step_post(client: Client, policy: EscalationPolicy, schedule: Schedule) -> Any:
    url = reverse("admin:incidents_escalationpolicy_change", args=[policy.pk])
    data = {**change_form_data(client.get(url)), "steps-0-schedule": schedule.pk}
    return client.post(url, data)


def test_step_schedules_are_those_of_managed_teams(crew: Any, policy: EscalationPolicy) -> None:
    ours = Schedule.objects.create(team=crew.team, name="Primary")
    theirs = Schedule.objects.create(team=crew.other_team, name="Search primary")
    client = client_for(crew.manager)
    page = client.get(reverse("admin:incidents_escalationpolicy_change", args=[policy.pk]))
    step_form = page.context["inline_admin_formsets"][0].formset.forms[0]
    offered = set(step_form.fields["schedule"].queryset.values_list("pk", flat=True))
    assert offered == {ours.pk}
    response = step_post(client, policy, theirs)
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.errors[0]["schedule"] == ["Choose a schedule of a team you manage."]
    assert policy.steps.get().schedule_id is None


def test_a_step_cannot_page_a_schedule_of_another_managed_team(
    crew: Any, doors: Team, policy: EscalationPolicy
) -> None:
    door = Schedule.objects.create(team=doors, name="Doors primary")
    response = step_post(client_for(crew.manager), policy, door)
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.errors[0]["schedule"] == ["This schedule belongs to another team."]
    assert policy.steps.get().schedule_id is None
    assert not Event.objects.filter(kind="escalation_policy.updated").exists()


def override_post(client: Client, schedule: Schedule, user: Any) -> Any:
    url = reverse("admin:incidents_schedule_change", args=[schedule.pk])
    page = client.get(url)
    data = change_form_data(page)
    prefix = next(  # the "add overrides" rows; the other override inline only lists them
        inline.formset.prefix
        for inline in page.context["inline_admin_formsets"]
        if inline.opts.model is ScheduleOverride and inline.has_add_permission
    )
    start = timezone.now() + timedelta(hours=1)
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": 1,
            f"{prefix}-0-user": user.pk,
            f"{prefix}-0-start_0": start.strftime("%Y-%m-%d"),
            f"{prefix}-0-start_1": start.strftime("%H:%M:%S"),
            f"{prefix}-0-end_0": (start + timedelta(hours=2)).strftime("%Y-%m-%d"),
            f"{prefix}-0-end_1": (start + timedelta(hours=2)).strftime("%H:%M:%S"),
            f"{prefix}-0-reason": "covering",
        }
    )
    return client.post(url, data)


def override_errors(response: Any) -> list[Any]:
    return [
        error
        for inline in response.context["inline_admin_formsets"]
        for error in inline.formset.errors
        if error
    ]


@pytest.mark.parametrize(
    ("stranger_team", "message"),
    [
        ("other_team", "This user is not a member of a team you manage."),
        ("doors", "This user is not a member of this team."),
    ],
)
def test_an_override_cannot_name_someone_outside_the_team(
    crew: Any, doors: Team, stranger_team: str, message: str
) -> None:
    team = doors if stranger_team == "doors" else crew.other_team
    stranger = make_user("stranger")
    Membership.objects.create(team=team, user=stranger, role=Role.RESPONDER)
    schedule = Schedule.objects.create(team=crew.team, name="Primary")
    response = override_post(client_for(crew.manager), schedule, stranger)
    assert response.status_code == 200
    assert override_errors(response) == [{"user": [message]}]
    assert not ScheduleOverride.objects.exists()


def test_an_override_for_a_member_of_the_team_is_saved(crew: Any) -> None:
    schedule = Schedule.objects.create(team=crew.team, name="Primary")
    response = override_post(client_for(crew.manager), schedule, crew.responder)
    assert response.status_code == 302, override_errors(response)
    assert ScheduleOverride.objects.get().user == crew.responder


def user_search(client: Client, model: str, field: str, term: str) -> set[str]:
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "incidents", "model_name": model, "field_name": field, "term": term},
    )
    assert response.status_code == 200
    return {row["text"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("model", "field"), [("scheduleoverride", "user"), ("actionitem", "owner")]
)
def test_the_person_picker_offers_people_of_managed_teams(
    crew: Any, doors: Team, model: str, field: str
) -> None:
    for name, team in (("rosa", doors), ("rolf", crew.other_team), ("ronja", None)):
        person = make_user(name)
        if team is not None:
            Membership.objects.create(team=team, user=person, role=Role.RESPONDER)
    assert user_search(client_for(crew.manager), model, field, "ro") == {"rosa"}
    assert user_search(client_for(crew.admin), model, field, "ro") == {"rosa", "rolf", "ronja"}
