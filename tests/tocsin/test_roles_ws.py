"""Role matrix for the WebSocket surface: who may open the live stream and what reaches them."""

from __future__ import annotations

import json
import time

import pytest
from django.db import transaction
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import team_test_event

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

# role → does a team event reach them?
RECEIVES_TEAM_EVENTS = {
    "viewer": True,
    "responder": True,
    "manager": True,
    "admin": True,
    "outsider": False,
}


def test_anonymous_cannot_open_the_stream(web):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{web.ws_url}/ws/live/?after=0", additional_headers=web.ws_headers(None))
    assert refused.value.response.status_code == 403


def test_a_deactivated_user_cannot_open_the_stream(web, crew):
    headers = web.ws_headers(crew.viewer)  # session made while active
    crew.viewer.is_active = False
    crew.viewer.save()
    with pytest.raises(InvalidStatus):
        connect(f"{web.ws_url}/ws/live/?after=0", additional_headers=headers)


@pytest.mark.parametrize("role", sorted(RECEIVES_TEAM_EVENTS))
def test_role_matrix_for_team_events(web, crew, role):
    user = crew.by_role(role)
    with connect(
        f"{web.ws_url}/ws/live/?format=json", additional_headers=web.ws_headers(user)
    ) as ws:
        ws.send(json.dumps({"action": "subscribe", "after": 0}))
        time.sleep(0.3)
        with transaction.atomic():
            team_event = team_test_event(crew.team)
            marker = team_test_event(crew.other_team)
        # Events arrive in id order, so once the last one this user should see has arrived,
        # the team event has arrived too if it was ever going to.
        last_expected = marker.pk if role in ("outsider", "admin") else team_event.pk
        received = []
        while last_expected not in received:
            message = json.loads(ws.recv(timeout=3))
            if message["type"] == "event":
                received.append(message["event"]["id"])
    assert (team_event.pk in received) is RECEIVES_TEAM_EVENTS[role]
