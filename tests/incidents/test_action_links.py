"""Signed action links: expiry, single use, bad signatures, GET never acts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from incidents.models import Incident, IncidentStatus
from incidents.notifications import links
from tests.incidents.core_support import NOON, fire, kinds
from tocsin.models import Event


@pytest.fixture
def incident(service):
    fire(service, NOON)
    return Incident.objects.get()


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def test_get_shows_a_confirmation_and_does_not_act(crew, incident):
    url = links.make_action_link(incident, "acknowledge", crew.responder)
    assert url.startswith("http")
    response = Client().get(path_of(url))
    assert response.status_code == 200
    assert b"Acknowledge incident" in response.content
    assert b'<form method="post"' in response.content
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.TRIGGERED


def test_post_acts_as_the_links_user_once(crew, incident):
    path = path_of(links.make_action_link(incident, "acknowledge", crew.responder))
    client = Client()
    acted = client.post(path)
    assert acted.status_code == 303  # POST -> redirect -> GET
    assert acted["Location"] == path + "?done=1"
    done = client.get(acted["Location"])
    assert done.status_code == 200 and b"<h1>Done</h1>" in done.content
    assert b"is now acknowledged" in done.content
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACKNOWLEDGED
    event = Event.objects.get(kind="incident.acknowledged")
    assert event.actor == crew.responder and event.payload["via"] == "link"
    again = client.post(path)
    assert again.status_code == 410
    assert b"already been used" in again.content
    assert kinds(incident).count("incident.acknowledged") == 1


def test_resolve_link(crew, incident):
    path = path_of(links.make_action_link(incident, "resolve", crew.responder))
    Client().post(path)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_expired_links_are_refused(crew, incident):
    token = links.make_token(
        incident,
        "acknowledge",
        crew.responder,
        ttl=timedelta(hours=1),
        now=NOON - timedelta(days=1),
    )
    response = Client().post(f"/incidents/act/{token}/")
    assert response.status_code == 410
    assert b"expired" in response.content
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.TRIGGERED


def test_tampered_links_are_refused(crew, incident):
    token = links.make_token(incident, "acknowledge", crew.responder)
    response = Client().post(f"/incidents/act/{token[:-2]}xx/")
    assert response.status_code == 400
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.TRIGGERED


def test_a_viewer_link_cannot_act(crew, incident):
    path = path_of(links.make_action_link(incident, "acknowledge", crew.viewer))
    assert Client().post(path).status_code == 403
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.TRIGGERED
