"""The alert page follows its team's live stream, like the incident page: the page subscribes to
the alert's team only, the team's alert and incident events reach it over a real WebSocket
(daphne) and make its changing part (``alert_live``) re-fetch itself; a user of another team can
neither subscribe to those events nor fetch the part."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from monitoring.models import Alert, AlertStatus, Suppression
from monitoring.pipeline import AlertInput, process
from monitoring.suppression import create_silence, expire_silence
from tests.conftest import team_test_event
from tests.monitoring.page_support import logged_in, queries_for
from tests.tocsin.test_live_stream import assert_silent, next_message, open_socket
from tocsin.models import Event

LABELS = {"alertname": "HighLatency", "instance": "api-1"}


def fire(service, labels=None, status=AlertStatus.FIRING, **kw) -> Alert:
    item = AlertInput(labels=dict(labels or LABELS), status=status, **kw)
    return process(service, [item], source="alertmanager")[0].alert


def live_part(user, alert: Alert):
    return logged_in(user).get(reverse("alert_live", args=[alert.pk]))


def occurrences(body: str) -> str:
    return re.search(r"data-occurrences>([^<]*)<", body).group(1)


# -- the page and its re-fetched part ---------------------------------------------------------
def test_the_page_follows_the_alerts_team_and_names_its_live_part(crew, service):
    alert = fire(service)
    newest = Event.objects.order_by("-id").first().pk
    body = logged_in(crew.viewer).get(reverse("alert", args=[alert.pk])).content.decode()
    stream = re.search(r"<div hx-ext=\"ws\"[^>]*>", body).group(0)
    assert 'ws-connect="/ws/live/"' in stream and "data-live-stream" in stream
    assert f'data-team-id="{crew.team.pk}"' in stream
    assert f'data-last-event-id="{newest}"' in stream
    assert 'id="live-events"' in body and 'id="live-status"' in body
    assert f'hx-get="{reverse("alert_live", args=[alert.pk])}"' in body
    assert "tocsin:live-alert from:body delay:750ms" in body
    assert "tocsin:live-incident from:body delay:750ms" in body
    # Identical re-sends record no event: the part also re-fetches on a timer.
    assert 'hx-trigger="every 60s,' in body


def test_the_live_part_shows_what_changed_since_the_page_was_drawn(crew, service):
    alert = fire(service)
    first = live_part(crew.viewer, alert)
    assert first.status_code == 200
    html = first.content.decode()
    assert html.lstrip().startswith('<div id="alert-live"') and "<html" not in html
    assert occurrences(html) == "1 time, fired 1 time"
    assert 'class="badge badge-firing">firing' in html

    fire(service)  # identical re-send
    fire(service, status=AlertStatus.RESOLVED)
    html = live_part(crew.viewer, alert).content.decode()
    assert occurrences(html) == "2 times, fired 1 time"
    assert 'class="badge badge-ok">resolved' in html
    assert 'data-kind="alert.resolved"' in html  # the history too

    fire(service)  # fires again: refired
    silence = create_silence(
        team=crew.team, matchers='alertname="HighLatency"', duration=timedelta(hours=1)
    )
    alert.refresh_from_db()
    assert alert.suppression == Suppression.SILENCED
    html = live_part(crew.responder, alert).content.decode()
    assert occurrences(html) == "3 times, fired 2 times"
    assert f'data-suppression="{Suppression.SILENCED}"' in html and "data-unsilence" in html
    expire_silence(silence)
    html = live_part(crew.responder, alert).content.decode()
    assert 'data-suppression=""' in html and "data-unsilence" not in html
    assert "data-silence-link" in html  # a responder may silence it again


def test_the_live_part_names_the_incident_the_alert_joined(crew, service):
    alert = fire(service)
    html = live_part(crew.viewer, alert).content.decode()
    incident = re.search(r"data-incident>(.*?)</dd>", html, re.S).group(1)
    assert "#" in incident and "HighLatency" in incident


def test_other_teams_and_anonymous_users_cannot_fetch_the_live_part(crew, service):
    alert = fire(service)
    assert live_part(crew.outsider, alert).status_code == 404
    assert (
        logged_in(crew.viewer).get(reverse("alert_live", args=[alert.pk + 999])).status_code == 404
    )
    response = Client().get(reverse("alert_live", args=[alert.pk]))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_the_live_part_costs_the_same_queries_however_long_the_history(crew, service):
    alert = fire(service)
    client = logged_in(crew.viewer)
    url = reverse("alert_live", args=[alert.pk])
    client.get(url)  # warm the session
    short = queries_for(client, url)
    for _ in range(5):
        fire(service, status=AlertStatus.RESOLVED)
        fire(service)
    assert queries_for(client, url) == short


# -- over a real WebSocket --------------------------------------------------------------------
def subscribe_as_the_page(ws, alert: Alert, after: int) -> None:
    """What tocsin.js sends for the alert page: the last id it rendered, the alert's team."""
    ws.send(json.dumps({"action": "subscribe", "after": after, "teams": [alert.team_id]}))


def kinds_until(ws, predicate, timeout=5.0) -> list[tuple[str, str]]:
    """(kind, subject id) of the events received until one satisfies ``predicate``."""
    seen = []
    while True:
        message = next_message(ws, timeout=timeout)
        if message["type"] != "event":
            raise AssertionError(f"unexpected message {message}")
        event = message["event"]
        seen.append((event["kind"], event["subject"]["id"]))
        if predicate(event):
            return seen


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_the_alerts_changes_reach_a_subscribed_page(web, crew, service):
    alert = fire(service)
    rendered = Event.objects.order_by("-id").first().pk
    own = str(alert.pk)

    def about_alert(kind):
        return lambda e: e["kind"] == kind and e["subject"]["id"] == own

    with open_socket(web, crew.viewer) as ws:
        subscribe_as_the_page(ws, alert, rendered)
        # A new occurrence with new content, a resolution, firing again.
        fire(service, annotations={"summary": "p99 over 3 s"})
        kinds_until(ws, about_alert("alert.updated"))
        fire(service, status=AlertStatus.RESOLVED)
        kinds_until(ws, about_alert("alert.resolved"))
        fire(service)
        kinds_until(ws, about_alert("alert.refired"))
        # Silenced, then unsilenced.
        silence = create_silence(
            team=crew.team, matchers='alertname="HighLatency"', duration=timedelta(hours=1)
        )
        kinds_until(ws, about_alert("alert.suppressed"))
        expire_silence(silence)
        kinds_until(ws, about_alert("alert.unsuppressed"))
        # Another alert of the service joins the incident: an incident event of the team.
        fire(service, {"alertname": "HighLatency", "instance": "api-2"})
        seen = kinds_until(ws, lambda e: e["kind"].startswith("incident."))
        assert any(kind.startswith("incident.") for kind, _ in seen)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_user_of_another_team_cannot_subscribe_to_the_alerts_updates(web, crew, service):
    alert = fire(service)
    rendered = Event.objects.order_by("-id").first().pk
    with open_socket(web, crew.outsider) as outsider, open_socket(web, crew.viewer) as member:
        subscribe_as_the_page(outsider, alert, 0)  # asking for the whole history, too
        refused = next_message(outsider)
        assert refused["type"] == "error"
        assert str(crew.team.pk) in refused["message"]
        subscribe_as_the_page(member, alert, rendered)
        fire(service, status=AlertStatus.RESOLVED)
        kinds_until(member, lambda e: e["kind"] == "alert.resolved")
        with transaction.atomic():  # the outsider's own team's news is not asked for either
            team_test_event(crew.other_team)
        assert_silent(outsider, 1.0)
