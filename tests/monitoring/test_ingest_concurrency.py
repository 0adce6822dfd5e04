"""Many copies of one new alert at once, through two real web processes on one database.

Dedup is the (service, fingerprint) unique constraint, not luck: exactly one request creates the
alert and records ``alert.firing``; every other one, however it interleaves, counts as a re-send.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from monitoring.models import Alert
from tests.monitoring.ingest_support import event_kinds, fixture

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

POSTS = 40


def fire_together(urls: list[str], body: dict) -> list[int]:
    """POST ``body`` to each URL from its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(urls))

    def send(url: str) -> int:
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            return client.post(url, json=body).status_code

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(send, urls))


def test_the_same_new_alert_posted_in_parallel_is_stored_once(web_servers, doors):
    key = doors["alertmanager"].key
    urls = [f"{web_servers[i % 2].url}/ingest/alertmanager/{key}/" for i in range(POSTS)]
    statuses = fire_together(urls, fixture("alertmanager-webhook-v4.json"))
    assert statuses == [200] * POSTS
    alert = Alert.objects.get()
    assert alert.occurrences == POSTS
    assert event_kinds() == ["alert.firing"]


def test_the_same_new_event_posted_in_parallel_is_stored_once(web_servers, doors):
    body = fixture("pagerduty-events-v2-trigger.json")
    body["routing_key"] = doors["events_v2"].key
    urls = [f"{web_servers[i % 2].url}/ingest/pagerduty/v2/enqueue" for i in range(POSTS)]
    assert fire_together(urls, body) == [202] * POSTS
    alert = Alert.objects.get()
    assert (alert.fingerprint, alert.occurrences) == ("srv01/mysql", POSTS)
    assert event_kinds() == ["alert.firing"]
