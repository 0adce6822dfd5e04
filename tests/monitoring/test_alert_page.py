"""The alert page: what the sender said, history, suppression reason, incident, permissions."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents.models import Incident
from monitoring.models import Alert, AlertStatus, Severity, Suppression
from monitoring.pipeline import AlertInput, process
from monitoring.suppression import (
    create_inhibition_rule,
    create_maintenance_window,
    create_silence,
)
from tests.monitoring.page_support import logged_in, queries_for

LABELS = {"alertname": "HighLatency", "instance": "api-1"}


def fire(service, labels=None, status=AlertStatus.FIRING, **kw) -> Alert:
    item = AlertInput(labels=dict(labels or LABELS), status=status, **kw)
    return process(service, [item], source="alertmanager")[0].alert


def page(user, alert: Alert):
    return logged_in(user).get(reverse("alert", args=[alert.pk]))


@pytest.mark.parametrize("role", ["viewer", "responder", "manager", "admin"])
def test_every_member_reads_the_alert_page(crew, service, role):
    alert = fire(service, severity=Severity.CRITICAL)
    response = page(crew.by_role(role), alert)
    assert response.status_code == 200
    body = response.content.decode()
    assert "HighLatency" in body and "badge-critical" in body
    assert "data-occurrences>1 time," in body


def test_other_teams_get_a_404(crew, service):
    alert = fire(service)
    assert page(crew.outsider, alert).status_code == 404
    assert logged_in(crew.viewer).get(reverse("alert", args=[alert.pk + 999])).status_code == 404


def test_anonymous_users_are_sent_to_log_in(service):
    alert = fire(service)
    response = Client().get(reverse("alert", args=[alert.pk]))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_it_shows_labels_annotations_links_and_the_runbook(crew, service):
    service.runbook_url = "https://wiki.example.org/checkout"
    service.save()
    alert = fire(
        service,
        annotations={"summary": "p99 over 2 s", "runbook_url": "https://runbooks.example.org/lat"},
        generator_url="https://prometheus.example.org/graph?g0.expr=up",
        links=[{"href": "https://grafana.example.org/d/1", "text": "Dashboard"}],
    )
    body = page(crew.viewer, alert).content.decode()
    labels = re.search(r"data-labels>(.*?)</dl>", body, re.S).group(1)
    assert "<code>instance</code>" in labels and "api-1" in labels
    assert "p99 over 2 s" in body
    assert 'href="https://runbooks.example.org/lat"' in body  # the alert's own runbook wins
    assert 'href="https://prometheus.example.org/graph?g0.expr=up"' in body
    assert (
        '<a href="https://grafana.example.org/d/1" rel="noopener noreferrer">Dashboard</a>' in body
    )


def test_a_runbook_annotation_that_is_not_http_is_not_a_link(crew, service):
    service.runbook_url = "https://wiki.example.org/checkout"
    service.save()
    alert = fire(service, annotations={"runbook_url": "javascript:alert(1)"})
    body = page(crew.viewer, alert).content.decode()
    assert 'href="javascript:' not in body
    assert 'href="https://wiki.example.org/checkout" rel="noopener noreferrer" data-runbook' in body


def test_the_payload_is_pretty_json_and_escaped(crew, service):
    alert = fire(
        service,
        {"alertname": "Inject", "note": "<script>alert(1)</script>"},
        annotations={"description": "a </pre><b>bold</b>"},
    )
    body = page(crew.viewer, alert).content.decode()
    assert "<script>alert(1)</script>" not in body and "<b>bold</b>" not in body
    shown = re.search(r"<pre class=\"json-block\" data-payload>(.*?)</pre>", body, re.S).group(1)
    payload = json.loads(html.unescape(shown))
    assert payload["labels"] == {"alertname": "Inject", "note": "<script>alert(1)</script>"}
    assert payload["annotations"]["description"] == "a </pre><b>bold</b>"
    assert "\n  " in shown  # indented


def test_it_counts_occurrences_and_shows_the_history(crew, service):
    alert = fire(service)
    fire(service)  # an identical re-send: one more occurrence, no event
    fire(service, status=AlertStatus.RESOLVED)
    fire(service)  # fires again
    body = page(crew.viewer, alert).content.decode()
    assert "data-occurrences>3 times, fired 2 times" in body
    history = re.search(r"data-history>(.*?)</table>", body, re.S).group(1)
    kinds = [k for k in re.findall(r'data-kind="([^"]+)"', history) if k != "incident"]
    assert kinds == ["alert.firing", "alert.resolved", "alert.refired"]
    assert "Fired again" in history and "Resolved" in history


def test_it_names_the_incident_the_alert_joined(crew, service):
    first = fire(service, {"alertname": "A"})
    incident = Incident.objects.get()
    body = page(crew.viewer, first).content.decode()
    incident_cell = re.search(r"data-incident>(.*?)</dd>", body, re.S).group(1)
    assert f'href="{reverse("incident", args=[incident.pk])}"' in incident_cell
    assert f"#{incident.pk} {incident.title}" in incident_cell
    assert 'data-kind="incident"' in body  # "joined incident #N" on the history


def test_an_alert_that_is_in_no_incident_says_so(crew, service):
    create_silence(team=crew.team, matchers='alertname="HighLatency"', duration=timedelta(hours=1))
    alert = fire(service)
    assert not Incident.objects.exists()
    body = page(crew.viewer, alert).content.decode()
    assert "None: suppressed alerts do not page" in body


def test_it_links_the_silence_that_mutes_it(crew, service):
    silence = create_silence(
        team=crew.team,
        matchers='alertname="HighLatency"',
        duration=timedelta(hours=1),
        comment="deploying",
    )
    alert = fire(service)
    assert alert.suppression == Suppression.SILENCED
    body = page(crew.viewer, alert).content.decode()
    assert 'data-suppression="silenced"' in body
    link = f"{reverse('silences')}?silence={silence.pk}"
    assert f'<a href="{link}" data-suppressed-by>deploying</a>' in body
    listed = logged_in(crew.viewer).get(link).content.decode()
    assert re.findall(r'data-silence-id="(\d+)"', listed) == [str(silence.pk)]


def test_it_links_the_maintenance_window_that_mutes_it(crew, service):
    now = timezone.now()
    window = create_maintenance_window(
        service=service,
        title="DB upgrade",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )
    alert = fire(service)
    body = page(crew.viewer, alert).content.decode()
    url = reverse("maintenance_window", args=[window.pk])
    assert f'<a href="{url}" data-suppressed-by>DB upgrade</a>' in body


def test_it_names_the_inhibition_rule_and_links_it_for_managers(crew, service):
    rule = create_inhibition_rule(
        team=crew.team,
        name="Database down mutes latency",
        source_matchers='alertname="DatabaseDown"',
        target_matchers='alertname="HighLatency"',
    )
    fire(service, {"alertname": "DatabaseDown"})
    alert = fire(service)
    assert alert.suppression == Suppression.INHIBITED
    viewer = page(crew.viewer, alert).content.decode()
    assert "<strong data-suppressed-by>Database down mutes latency</strong>" in viewer
    manager = page(crew.manager, alert).content.decode()
    admin_url = reverse("admin:monitoring_inhibitionrule_change", args=[rule.pk])
    assert f'<a href="{admin_url}" data-suppressed-by>' in manager


def test_the_silence_button_is_for_responders_of_firing_alerts(crew, service):
    alert = fire(service)
    assert "data-silence-link" not in page(crew.viewer, alert).content.decode()
    body = page(crew.responder, alert).content.decode()
    assert f'href="{reverse("silence_create")}?alert={alert.pk}"' in body
    fire(service, status=AlertStatus.RESOLVED)
    assert "data-silence-link" not in page(crew.responder, alert).content.decode()


def test_the_alerts_list_and_the_service_page_link_to_it(crew, service):
    alert = fire(service)
    url = reverse("alert", args=[alert.pk])
    listed = logged_in(crew.viewer).get(reverse("alerts")).content.decode()
    assert f'<a href="{url}"><strong>HighLatency</strong></a>' in listed
    service_page = logged_in(crew.viewer).get(
        reverse("service", args=[crew.team.slug, service.slug])
    )
    assert f'<a href="{url}"><strong>HighLatency</strong></a>' in service_page.content.decode()


def test_the_page_costs_the_same_queries_however_long_the_history(crew, service):
    alert = fire(service)
    client = logged_in(crew.viewer)
    client.get(reverse("alert", args=[alert.pk]))  # warm the session

    def count() -> int:
        return queries_for(client, reverse("alert", args=[alert.pk]))

    short = count()
    for _ in range(5):
        fire(service, status=AlertStatus.RESOLVED)
        fire(service)
    assert count() == short


def test_responders_unsilence_from_the_alert_page(crew, service):
    muted = create_silence(
        team=crew.team, matchers='alertname="HighLatency"', duration=timedelta(hours=1)
    )
    alert = fire(service)
    assert "data-unsilence" not in page(crew.viewer, alert).content.decode()
    body = page(crew.responder, alert).content.decode()
    assert f'action="{reverse("silence_expire", args=[muted.pk])}"' in body
    response = logged_in(crew.responder).post(
        reverse("silence_expire", args=[muted.pk]), {"next": reverse("alert", args=[alert.pk])}
    )
    assert response.status_code == 302 and response["Location"] == reverse("alert", args=[alert.pk])
    alert.refresh_from_db()
    assert alert.suppression == Suppression.NONE
    after = page(crew.responder, alert).content.decode()
    assert 'data-suppression=""' in after and "data-unsilence" not in after


def test_the_incident_page_links_its_alerts_here(crew, service):
    alert = fire(service)
    incident = Incident.objects.get()
    body = logged_in(crew.viewer).get(reverse("incident", args=[incident.pk])).content.decode()
    assert f'<a href="{reverse("alert", args=[alert.pk])}">HighLatency</a>' in body
