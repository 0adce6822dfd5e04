"""The ASGI handler's short road for views with an async form (the alert webhooks).

Django's handler runs every request inside a ``ThreadSensitiveContext`` and sends
``request_started``/``request_finished``, whose receivers run in a thread made for that one
request; for a webhook none of it is needed (it touches the database only in threads that manage
their own connections), and under a storm of single alerts it cost a sixth of the web process.
Every other request keeps Django's full road: signals, middleware, session, CSRF.
"""

from __future__ import annotations

import asyncio

import pytest
from django.core.signals import request_finished, request_started

from tocsin.asgi import django_asgi_app


def call(path: str, method: str = "POST", body: bytes = b"{}") -> tuple[dict, bytes]:
    """One request through the ASGI application: (response start message, body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []
    received = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if received:
            return received.pop(0)
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(django_asgi_app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start, content


@pytest.fixture
def signals_seen():
    seen: list[str] = []

    def started(**kwargs) -> None:
        seen.append("started")

    def finished(**kwargs) -> None:
        seen.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    yield seen
    request_started.disconnect(started)
    request_finished.disconnect(finished)


def test_a_webhook_post_takes_the_short_road(signals_seen):
    # No key at all: refused by the webhook itself, before any database work.
    start, content = call("/ingest/prometheus/api/v2/alerts")
    assert start["status"] == 401
    assert b"Bearer" in content
    headers = dict(start["headers"])
    assert headers[b"X-Content-Type-Options"] == b"nosniff"
    assert headers[b"X-Frame-Options"] == b"DENY"
    assert signals_seen == []


@pytest.mark.django_db(transaction=True)
def test_every_other_request_keeps_djangos_road(signals_seen):
    start, _ = call("/accounts/login/")  # a POST without a CSRF token: the middleware answers
    assert start["status"] == 403
    assert signals_seen == ["started", "finished"]


def test_an_async_form_answers_every_method_of_its_url(signals_seen):
    start, _ = call("/ingest/prometheus/api/v2/alerts", method="GET")
    assert start["status"] == 405  # the webhook's own answer: alerts are POSTed
    assert (b"Allow", b"POST") in start["headers"]
    assert signals_seen == []
