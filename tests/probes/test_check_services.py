"""Check services (create, update, pause/resume, run now, test a configuration) and the admin
that calls them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from monitoring.models import AlertStatus
from probes.checks import scheduler, services
from probes.checks.choices import ANY_LOCATION
from probes.checks.models import Check, CheckState, Result, ResultStatus, Slot
from probes.kinds.base import InvalidConfig
from tests.probes import test_check_target as support
from tests.probes.test_check_target import T0, down_alert, due_at, make_check, step

service, target = support.service, support.target  # fixtures


def locations(check: Check) -> set[str]:
    return set(Slot.objects.filter(probe=check).values_list("location", flat=True))


def test_a_new_check_gets_one_slot_per_location_due_soon(service, target):
    anywhere = make_check(service, target, name="a")
    placed = make_check(service, target, name="b", locations=["eu", "us"])

    assert locations(anywhere) == {ANY_LOCATION}
    assert locations(placed) == {"eu", "us"}
    assert T0 <= due_at(placed) <= T0 + timedelta(seconds=5)  # soon, spread a little
    assert anywhere.state == CheckState.UNKNOWN


def test_changing_the_locations_changes_the_slots(service, target):
    check = make_check(service, target, locations=["eu", "us"])

    services.update_check(check, locations=["us", "asia"])

    assert locations(check) == {"us", "asia"}


def test_a_changed_configuration_starts_over_and_resolves_the_alert(service, target):
    check = make_check(service, target, failure_threshold=1)
    step(check, 503, target=target)
    assert down_alert(check).status == AlertStatus.FIRING

    check = services.update_check(check, config={"url": target.url("/health")})

    assert check.state == CheckState.UNKNOWN
    assert down_alert(check).status == AlertStatus.RESOLVED
    assert Slot.objects.get(probe=check).consecutive_failures == 0


def test_an_invalid_update_changes_nothing(service, target):
    check = make_check(service, target)

    with pytest.raises(ValidationError):
        services.update_check(check, conditions=["[STATUS] =="])

    check.refresh_from_db()
    assert check.conditions == []


def test_resume_runs_it_again_from_now(service, target):
    check = make_check(service, target)
    services.pause(check, now=T0)
    assert scheduler.run_batch(T0 + timedelta(days=1)) == 0

    check = services.resume(check, now=T0 + timedelta(days=1))

    assert check.state == CheckState.UNKNOWN
    assert scheduler.run_batch(due_at(check)) == 1
    assert not Result.objects.filter(status=ResultStatus.UNKNOWN).exists()


def test_run_now_stores_a_result_that_counts_and_leaves_the_schedule(service, target):
    check = make_check(service, target, failure_threshold=1)
    due = due_at(check)
    target.set(503)

    result = services.run_now(check, now=T0)

    assert result.status == ResultStatus.DOWN
    assert result.details["run_now"] is True
    check.refresh_from_db()
    assert check.state == CheckState.DOWN
    assert down_alert(check).status == AlertStatus.FIRING
    assert due_at(check) == due


def test_test_config_runs_an_unsaved_check_and_stores_nothing(target):
    outcome = services.test_config("http", {"url": target.url("/")}, ["[BODY] == ok"])

    assert outcome.status == ResultStatus.UP
    assert outcome.excerpt == "ok"
    target.set(200, "nope")
    outcome = services.test_config("http", {"url": target.url("/")}, ["[BODY] == ok"])
    assert outcome.status == ResultStatus.DOWN
    assert outcome.explanation == '[BODY] ("nope") == ok'


def test_test_config_refuses_what_cannot_be_saved(target):
    with pytest.raises(InvalidConfig):
        services.test_config("http", {"url": "gopher://x"})
    with pytest.raises(ValidationError):
        services.test_config("http", {"url": target.url("/")}, ["[STATUS] in 200.."])
    with pytest.raises(LookupError):
        services.test_config("carrier-pigeon", {})


# -- admin ----------------------------------------------------------------------------------------
def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form(service, **changes: Any) -> dict[str, Any]:
    data = {
        "service": service.pk,
        "name": "Shop front",
        "kind": "http",
        "config": json.dumps({"url": "http://127.0.0.1:9/"}),
        "conditions": "[]",
        "degraded_conditions": "[]",
        "interval": 60,
        "timeout": 10,
        "failure_threshold": 3,
        "recovery_threshold": 2,
        "window_failures": "",
        "window_size": "",
        "reminder_interval": "",
        "locations": "[]",
        "down_when_failing": 1,
    }
    return data | changes


def test_a_manager_adds_a_check_in_the_admin_and_it_gets_its_slot(crew, service):
    response = client_for(crew.manager).post(reverse("admin:probes_check_add"), form(service))

    assert response.status_code == 302, response.content[:3000]
    check = Check.objects.get()
    assert locations(check) == {ANY_LOCATION}


def test_the_admin_shows_config_and_condition_errors_on_their_fields(crew, service):
    response = client_for(crew.manager).post(
        reverse("admin:probes_check_add"),
        form(service, config=json.dumps({"url": "ftp://x"}), conditions='["[STATUS] =="]'),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["config"][0].startswith("url: ")
    assert errors["conditions"][0].startswith("Condition 1: ")
    assert not Check.objects.exists()


def test_another_teams_manager_does_not_see_the_check(crew, service, target):
    check = make_check(service, target)

    response = client_for(crew.outsider).get(reverse("admin:probes_check_change", args=[check.pk]))

    assert response.status_code in (302, 404)
