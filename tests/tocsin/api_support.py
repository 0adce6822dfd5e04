"""Helpers shared by the REST API tests: the error-shape assertion and a database snapshot.

"Bad input changes nothing" is asserted by comparing :func:`db_state` before and after; it
covers every table the API writes (teams, memberships, tokens, events) and the task queue.
"""

from __future__ import annotations

from typing import Any

from django_q.brokers import get_broker

from tocsin.models import ApiToken, Event, Membership, Team


def db_state() -> dict[str, Any]:
    return {
        "teams": list(Team.objects.order_by("pk").values_list("pk", "name", "slug", "description")),
        "memberships": list(
            Membership.objects.order_by("pk").values_list("pk", "team_id", "user_id", "role")
        ),
        "tokens": list(
            ApiToken.objects.order_by("pk").values_list("pk", "name", "revoked_at", "expires_at")
        ),
        "events": list(Event.objects.order_by("pk").values_list("pk", flat=True)),
        "queued_tasks": get_broker().queue_size(),
    }


def assert_error(
    response: Any, status: int, code: str | None = None, fields: set[str] | None = None
) -> dict[str, Any]:
    """The response is an API error with the one shape; returns its ``error`` object."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["fields"], dict), error
    for name, messages in error["fields"].items():
        assert isinstance(name, str) and name, error
        assert messages and all(isinstance(m, str) and m for m in messages), error
    if code is not None:
        assert error["code"] == code, error
    if fields is not None:
        assert set(error["fields"]) == fields, error
    return error


def bearer(client: Any, raw_token: str) -> Any:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    return client
