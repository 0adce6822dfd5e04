"""Admin for silences, inhibition rules and maintenance windows: roles, services, form errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from monitoring.models import InhibitionRule, MaintenanceWindow, Silence
from monitoring.suppression import create_silence
from tocsin.models import Event

ROLES = ("anonymous", "viewer", "responder", "manager", "outsider", "admin")


def client_for(crew, role):
    c = Client()
    if role != "anonymous":
        c.force_login(crew.by_role(role))
    return c


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", ["silence", "inhibitionrule", "maintenancewindow"])
def test_changelists_per_role(crew, role, model):
    response = client_for(crew, role).get(reverse(f"admin:monitoring_{model}_changelist"))
    if role in ("anonymous", "viewer", "responder"):
        assert response.status_code == 302 and "login" in response["Location"]
    else:
        assert response.status_code == 200


def test_outsiders_do_not_see_the_teams_silences(crew):
    silence = create_silence(team=crew.team, matchers="a=b", duration=timedelta(hours=1))
    manager = client_for(crew, "manager").get(reverse("admin:monitoring_silence_changelist"))
    outsider = client_for(crew, "outsider").get(reverse("admin:monitoring_silence_changelist"))
    assert silence.label in manager.content.decode().replace("&quot;", '"')
    assert 'a="b"' not in outsider.content.decode().replace("&quot;", '"')


def test_a_manager_creates_a_silence_through_the_service(crew, service):
    response = client_for(crew, "manager").post(
        reverse("admin:monitoring_silence_add"),
        {"team": crew.team.pk, "matchers": 'alertname="X", env=~"prod.*"', "duration": "2h"},
    )
    assert response.status_code == 302, response.content
    silence = Silence.objects.get()
    assert silence.created_by == crew.manager
    assert silence.ends_at - silence.starts_at == timedelta(hours=2)
    assert Event.objects.filter(kind="silence.created").count() == 1


def test_a_bad_regex_is_a_form_error(crew):
    response = client_for(crew, "manager").post(
        reverse("admin:monitoring_silence_add"),
        {"team": crew.team.pk, "matchers": 'env=~"prod("', "duration": "2h"},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "invalid regular expression" in errors["matchers"][0]
    assert not Silence.objects.exists()
    assert not Event.objects.exclude(kind__startswith="user.").exists()


def test_an_outsider_cannot_silence_another_team(crew):
    response = client_for(crew, "outsider").post(
        reverse("admin:monitoring_silence_add"),
        {"team": crew.team.pk, "matchers": "a=b", "duration": "2h"},
    )
    assert response.status_code == 200
    assert "team" in response.context["adminform"].form.errors
    assert not Silence.objects.exists()


def test_expire_now_action(crew):
    silence = create_silence(team=crew.team, matchers="a=b", duration=timedelta(hours=1))
    response = client_for(crew, "manager").post(
        reverse("admin:monitoring_silence_changelist"),
        {"action": "expire_now", "_selected_action": [silence.pk]},
    )
    assert response.status_code == 302
    silence.refresh_from_db()
    assert silence.expired_by == crew.manager
    assert Event.objects.filter(kind="silence.expired").count() == 1


def test_an_inhibition_rule_with_a_bad_matcher_is_refused(crew):
    url = reverse("admin:monitoring_inhibitionrule_add")
    data = {
        "team": crew.team.pk,
        "name": "r",
        "source_matchers": "severity=critical",
        "target_matchers": "severity",
        "equal": "cluster",
        "enabled": "on",
    }
    response = client_for(crew, "manager").post(url, data)
    assert (
        "expected = != =~ or !~" in response.context["adminform"].form.errors["target_matchers"][0]
    )
    data["target_matchers"] = "severity=warning"
    response = client_for(crew, "manager").post(url, data)
    assert response.status_code == 302
    rule = InhibitionRule.objects.get()
    assert rule.equal == ["cluster"]
    assert Event.objects.filter(kind="inhibition.created").count() == 1


def test_a_manager_creates_a_recurring_window(crew, service):
    response = client_for(crew, "manager").post(
        reverse("admin:monitoring_maintenancewindow_add"),
        {
            "service": service.pk,
            "title": "nightly",
            "weekdays": ["0", "4"],
            "start_time": "23:30",
            "duration": "2h",
            "time_zone": "Europe/Berlin",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    window = MaintenanceWindow.objects.get()
    assert window.weekdays == [0, 4] and window.duration == timedelta(hours=2)
    assert Event.objects.filter(kind="maintenance.created").count() == 1


def test_a_bad_time_zone_is_a_form_error(crew, service):
    response = client_for(crew, "manager").post(
        reverse("admin:monitoring_maintenancewindow_add"),
        {
            "service": service.pk,
            "title": "nightly",
            "weekdays": ["0"],
            "start_time": "23:30",
            "duration": "2h",
            "time_zone": "Mars/Olympus",
        },
    )
    assert response.status_code == 200
    assert "unknown time zone" in response.context["adminform"].form.errors["time_zone"][0]
    assert not MaintenanceWindow.objects.exists()


def test_an_outsider_cannot_pick_another_teams_service(crew, service):
    response = client_for(crew, "outsider").post(
        reverse("admin:monitoring_maintenancewindow_add"),
        {"service": service.pk, "title": "t", "starts_at_0": "2030-01-01", "starts_at_1": "00:00"},
    )
    assert response.status_code == 200
    assert "service" in response.context["adminform"].form.errors
