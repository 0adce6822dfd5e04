"""Silence pages: the list, creating (from scratch or an alert, with a preview), unsilencing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from monitoring.models import Alert, AlertStatus, Service, Silence, Suppression
from monitoring.pipeline import AlertInput, process
from monitoring.suppression import create_silence
from tests.monitoring.page_support import logged_in, queries_for
from tocsin.models import Event


def fire(service, **labels) -> Alert:
    item = AlertInput(labels={"alertname": "HighLatency", **labels})
    return process(service, [item], source="alertmanager")[0].alert


def silence(team, matchers='alertname="HighLatency"', **kw) -> Silence:
    kw.setdefault("duration", timedelta(hours=1))
    return create_silence(team=team, matchers=matchers, **kw)


def listed(response) -> list[str]:
    return re.findall(r'data-silence-id="(\d+)"', response.content.decode())


def form_data(team, **overrides) -> dict:
    return {
        "team": str(team.pk),
        "service": "",
        "matchers": 'alertname="HighLatency"',
        "duration": "2h",
        "starts_in": "",
        "comment": "deploying",
        **overrides,
    }


def silence_events() -> int:
    return Event.objects.filter(kind__startswith="silence.").count()


# --- the list -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "responder", "manager", "admin"])
def test_members_read_the_list_by_state(crew, role):
    now = timezone.now()
    active = silence(crew.team, comment="now")
    pending = silence(crew.team, starts_at=now + timedelta(hours=1))
    ended = silence(crew.team)
    ended.ends_at = ended.starts_at = now - timedelta(minutes=1)
    ended.save()
    client = logged_in(crew.by_role(role))
    assert listed(client.get(reverse("silences"))) == [str(active.pk)]
    assert listed(client.get(reverse("silences") + "?state=pending")) == [str(pending.pk)]
    assert listed(client.get(reverse("silences") + "?state=expired")) == [str(ended.pk)]
    body = client.get(reverse("silences")).content.decode()
    assert "alertname=&quot;HighLatency&quot;" in body and "now" in body


def test_other_teams_silences_are_not_listed(crew):
    silence(crew.other_team)
    mine = silence(crew.team)
    assert listed(logged_in(crew.viewer).get(reverse("silences"))) == [str(mine.pk)]
    outsider = logged_in(crew.outsider)
    assert str(mine.pk) not in listed(outsider.get(reverse("silences")))
    assert outsider.get(reverse("silences") + f"?team={crew.team.slug}").status_code == 404
    assert listed(outsider.get(reverse("silences") + f"?silence={mine.pk}")) == []


def test_a_bad_filter_is_a_400(crew):
    response = logged_in(crew.viewer).get(reverse("silences") + "?state=sleeping")
    assert response.status_code == 400 and "state" in response.content.decode()


def test_who_may_unsilence_sees_the_button(crew):
    silence(crew.team)
    assert "Unsilence" not in logged_in(crew.viewer).get(reverse("silences")).content.decode()
    assert "Unsilence" in logged_in(crew.responder).get(reverse("silences")).content.decode()


def test_the_list_costs_the_same_queries_for_more_silences(crew, service):
    client = logged_in(crew.responder)
    silence(crew.team, service=service)
    client.get(reverse("silences"))

    def count() -> int:
        return queries_for(client, reverse("silences"))

    few = count()
    other = Service.objects.create(team=crew.team, name="Cart")
    for n in range(12):
        silence(crew.team, matchers=f'alertname="A{n}"', service=other if n % 2 else None)
    assert count() == few


# --- creating -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["responder", "manager", "admin"])
def test_responders_create_a_silence_and_are_redirected(crew, service, role):
    alert = fire(service)
    response = logged_in(crew.by_role(role)).post(reverse("silence_create"), form_data(crew.team))
    assert response.status_code == 302
    assert response["Location"] == reverse("silences") + f"?team={crew.team.slug}&state=active"
    created = Silence.objects.get()
    assert created.label == '{alertname="HighLatency"}' and created.comment == "deploying"
    assert created.ends_at - created.starts_at == timedelta(hours=2)
    assert created.created_by == crew.by_role(role)
    alert.refresh_from_db()
    assert alert.suppression == Suppression.SILENCED


def test_a_silence_may_start_later(crew, service):
    logged_in(crew.responder).post(
        reverse("silence_create"), form_data(crew.team, starts_in="1h", service=str(service.pk))
    )
    created = Silence.objects.get()
    assert created.state() == "pending" and created.service == service


def test_viewers_cannot_create_silences(crew, service):
    client = logged_in(crew.viewer)
    assert client.get(reverse("silence_create")).status_code == 403
    assert client.post(reverse("silence_create"), form_data(crew.team)).status_code == 403
    assert not Silence.objects.exists() and silence_events() == 0


def test_another_teams_silence_is_a_404(crew, other_service):
    response = logged_in(crew.responder).post(reverse("silence_create"), form_data(crew.other_team))
    assert response.status_code == 404
    assert not Silence.objects.exists()


def test_a_service_of_another_team_is_refused(crew, other_service):
    response = logged_in(crew.admin).post(
        reverse("silence_create"), form_data(crew.team, service=str(other_service.pk))
    )
    assert response.status_code == 400
    assert "another team" in response.content.decode()
    assert not Silence.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("matchers", 'alertname="unclosed', "not closed"),
        ("matchers", 'env=~"("', "invalid regular expression"),
        ("matchers", 'env=~".*"', "must not match an empty label"),
        ("matchers", "", "This field is required"),
        ("duration", "forever", "not a duration"),
        ("duration", "0m", "positive duration"),
        ("starts_in", "soon", "not a duration"),
    ],
)
def test_bad_input_is_a_400_with_the_error_and_nothing_changes(
    crew, service, field, value, message
):
    response = logged_in(crew.responder).post(
        reverse("silence_create"), form_data(crew.team, **{field: value})
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Silence.objects.exists() and silence_events() == 0


# --- from an alert, with a preview ----------------------------------------------------------------


def test_an_alerts_labels_prefill_the_form_and_the_preview(crew, service):
    alert = fire(service, instance="api-1")
    sibling = fire(service, instance="api-2")
    response = logged_in(crew.responder).get(reverse("silence_create") + f"?alert={alert.pk}")
    assert response.status_code == 200
    body = response.content.decode()
    textarea = re.search(r'<textarea name="matchers"[^>]*>(.*?)</textarea>', body, re.S).group(1)
    assert textarea.strip() == "alertname=&quot;HighLatency&quot;, instance=&quot;api-1&quot;"

    assert f'<option value="{service.pk}" selected>' in body
    assert re.findall(r'data-preview-alert="(\d+)"', body) == [str(alert.pk)]
    assert str(sibling.pk) not in re.findall(r'data-preview-alert="(\d+)"', body)


def test_prefilling_follows_the_alerts_permissions(crew, service, other_service):
    alert = fire(service)
    url = reverse("silence_create") + f"?alert={alert.pk}"
    assert logged_in(crew.viewer).get(url).status_code == 403
    assert logged_in(crew.outsider).get(url).status_code == 404


def test_the_preview_is_what_the_pipeline_then_suppresses(crew, service):
    cart = Service.objects.create(team=crew.team, name="Cart")
    alerts = [
        fire(service, instance="api-1", env="prod"),
        fire(service, instance="api-2", env="staging"),
        fire(service, instance="api-3"),
        fire(cart, instance="cart-1", env="prod"),
        fire(service, alertname="DiskFull", env="prod"),
    ]
    data = form_data(crew.team, matchers='alertname="HighLatency", env!="staging"')
    response = logged_in(crew.responder).post(reverse("silence_preview"), data)
    assert response.status_code == 200
    previewed = {
        int(pk) for pk in re.findall(r'data-preview-alert="(\d+)"', response.content.decode())
    }
    assert previewed == {alerts[0].pk, alerts[2].pk, alerts[3].pk}
    assert 'data-preview-total="3"' in response.content.decode()
    assert not Silence.objects.exists()  # a preview writes nothing

    logged_in(crew.responder).post(reverse("silence_create"), data)
    suppressed = set(
        Alert.objects.filter(suppression=Suppression.SILENCED).values_list("pk", flat=True)
    )
    assert suppressed == previewed


def test_the_preview_answers_htmx_with_the_partial(crew, service):
    alert = fire(service)
    response = logged_in(crew.responder).post(
        reverse("silence_preview"), form_data(crew.team), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="silence-preview"')
    assert f'data-preview-alert="{alert.pk}"' in body and "<html" not in body


def test_a_bad_preview_is_a_400_with_the_error(crew, service):
    response = logged_in(crew.responder).post(
        reverse("silence_preview"), form_data(crew.team, matchers='env=~"("'), HTTP_HX_REQUEST="1"
    )
    assert response.status_code == 400
    assert "invalid regular expression" in response.content.decode()


def test_the_preview_follows_the_create_permissions(crew, service):
    assert (
        logged_in(crew.viewer).post(reverse("silence_preview"), form_data(crew.team)).status_code
        == 403
    )
    assert (
        logged_in(crew.outsider).post(reverse("silence_preview"), form_data(crew.team)).status_code
        == 404
    )


# --- unsilencing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["responder", "manager"])
def test_responders_unsilence_and_the_alert_pages_again(crew, service, role):
    muted = silence(crew.team)
    alert = fire(service)
    assert alert.suppression == Suppression.SILENCED
    response = logged_in(crew.by_role(role)).post(reverse("silence_expire", args=[muted.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("silences") + f"?team={crew.team.slug}"
    muted.refresh_from_db()
    assert muted.state() == "expired" and muted.expired_by == crew.by_role(role)
    alert.refresh_from_db()
    assert alert.suppression == Suppression.NONE and alert.status == AlertStatus.FIRING
    expired = logged_in(crew.viewer).get(reverse("silences") + "?state=expired")
    assert (
        listed(expired) == [str(muted.pk)] and f"ended early by {role}" in expired.content.decode()
    )


def test_viewers_and_outsiders_cannot_unsilence(crew):
    muted = silence(crew.team)
    assert (
        logged_in(crew.viewer).post(reverse("silence_expire", args=[muted.pk])).status_code == 403
    )
    assert (
        logged_in(crew.outsider).post(reverse("silence_expire", args=[muted.pk])).status_code == 404
    )
    muted.refresh_from_db()
    assert muted.state() == "active" and muted.expired_at is None


def test_unsilencing_needs_a_post(crew):
    muted = silence(crew.team)
    response = logged_in(crew.responder).get(reverse("silence_expire", args=[muted.pk]))
    assert response.status_code == 405


def test_unsilencing_an_ended_silence_says_so(crew):
    muted = silence(crew.team)
    client = logged_in(crew.responder)
    client.post(reverse("silence_expire", args=[muted.pk]))
    events = silence_events()
    response = client.post(reverse("silence_expire", args=[muted.pk]), follow=True)
    assert response.status_code == 200
    assert "already ended" in response.content.decode()
    assert silence_events() == events


def test_the_preview_needs_only_what_decides_the_match(crew, service):
    alert = fire(service)
    response = logged_in(crew.responder).post(
        reverse("silence_preview"), form_data(crew.team, duration=""), HTTP_HX_REQUEST="1"
    )
    assert response.status_code == 200
    assert f'data-preview-alert="{alert.pk}"' in response.content.decode()


def test_an_out_of_range_team_id_is_a_404_not_a_500(crew):
    response = logged_in(crew.responder).post(
        reverse("silence_create"), {**form_data(crew.team), "team": "9" * 30}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "url",
    ["silences", "silence_create", "maintenance", "maintenance_create"],
)
def test_anonymous_users_are_sent_to_log_in(db, url):
    response = Client().get(reverse(url))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_an_alert_with_any_label_names_can_be_silenced(crew, service):
    """Senders' labels may have any name (Kubernetes' app.kubernetes.io/name); the form quotes
    them, as Alertmanager writes UTF-8 names, and the silence then mutes the alert."""
    alert = fire(service, **{"app.kubernetes.io/name": "api", "1st zone": "eu"})
    client = logged_in(crew.responder)
    response = client.get(reverse("silence_create") + f"?alert={alert.pk}")
    assert response.status_code == 200
    body = response.content.decode()
    assert "&quot;app.kubernetes.io/name&quot;=&quot;api&quot;" in body
    assert re.findall(r'data-preview-alert="(\d+)"', body) == [str(alert.pk)]
    textarea = re.search(r'<textarea name="matchers"[^>]*>(.*?)</textarea>', body, re.S).group(1)
    matchers = textarea.strip().replace("&quot;", '"')
    created = client.post(reverse("silence_create"), form_data(crew.team, matchers=matchers))
    assert created.status_code == 302
    alert.refresh_from_db()
    assert alert.suppression == Suppression.SILENCED


def test_one_click_silence_of_an_alert_with_any_label_names(crew, service):
    alert = fire(service, **{"app.kubernetes.io/name": "api"})
    response = logged_in(crew.responder).post(reverse("alert_silence", args=[alert.pk]))
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.suppression == Suppression.SILENCED
