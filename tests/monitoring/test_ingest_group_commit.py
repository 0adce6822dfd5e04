"""Group commit: concurrent ingest requests of one web process share a pipeline batch.

Each request is still answered after its own alerts are committed, with its own outcomes, and a
request that fails does not fail the requests it was merged with.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from monitoring import pipeline
from monitoring.ingest import batching
from monitoring.ingest.batching import Submission, take
from monitoring.models import Alert, IntegrationKind
from monitoring.pipeline import AlertInput, Result
from tests.monitoring.conftest import make_integration


def alerts(*names: str) -> list[AlertInput]:
    return [AlertInput(labels={"alertname": name}) for name in names]


def submission(door, *names: str) -> Submission:
    return Submission(
        door.integration, IntegrationKind.PROMETHEUS, alerts(*names), time.perf_counter()
    )


@pytest.fixture
def door(service):
    return make_integration(service, IntegrationKind.PROMETHEUS)


@pytest.mark.django_db
def test_a_batch_never_holds_the_same_alert_twice_and_keeps_its_order(door):
    first, repeat, other, after_repeat = (
        submission(door, "A", "B"),
        submission(door, "B"),
        submission(door, "C"),
        submission(door, "B", "D"),
    )
    batch, left = take([first, repeat, other, after_repeat], [])
    assert batch == [first, other]
    # B's second word waits for the next batch, and so does what follows it about B.
    assert left == [repeat, after_repeat]
    assert take(left, []) == ([repeat], [after_repeat])


@pytest.mark.django_db
def test_a_request_about_an_alert_being_written_waits_for_that_batch(door, monkeypatch):
    monkeypatch.setattr(batching, "MIN_ALERTS_BESIDE_ANOTHER", 1)
    being_written = submission(door, "A")
    about_a, about_c = submission(door, "A", "B"), submission(door, "C")
    assert take([about_a, about_c], [being_written]) == ([about_c], [about_a])


@pytest.mark.django_db
def test_a_small_batch_waits_for_the_one_being_written_a_large_one_goes_beside_it(door):
    being_written = submission(door, "W")
    small = [submission(door, f"S{i}") for i in range(3)]
    assert take(small, [being_written]) == ([], small)
    assert take(small, []) == (small, [])  # nothing being written: at once
    large = [submission(door, *[f"L{i}-{n}" for n in range(50)]) for i in range(2)]
    assert take(large, [being_written]) == (large, [])


@pytest.mark.django_db
def test_a_batch_stops_growing_at_its_bound(door, monkeypatch):
    monkeypatch.setattr(batching, "MAX_BATCH_ALERTS", 3)
    subs = [submission(door, f"A{i}", f"B{i}") for i in range(3)]
    batch, left = take(subs, [])
    assert batch == subs[:1] and left == subs[1:]
    lone_big = submission(door, *[f"X{i}" for i in range(10)])
    assert take([lone_big], []) == ([lone_big], [])  # a request is never split or starved


@pytest.mark.django_db
def test_merged_requests_get_the_outcomes_each_would_have_had_alone(door):
    batching.run([submission(door, "Known")])
    merged = [submission(door, "Known", "New1"), submission(door, "New2")]
    batching.run(merged)
    assert [(o.fingerprint, o.result) for o in merged[0].outcomes] == [
        (AlertInput(labels={"alertname": "Known"}).get_fingerprint(), Result.RESENT),
        (AlertInput(labels={"alertname": "New1"}).get_fingerprint(), Result.CREATED),
    ]
    assert [o.result for o in merged[1].outcomes] == [Result.CREATED]
    assert Alert.objects.count() == 3


@pytest.mark.django_db
def test_a_failing_request_does_not_fail_the_requests_merged_with_it(door, monkeypatch):
    real_process = pipeline.process

    def process(service, inputs, **kwargs):
        inputs = list(inputs)
        if any(item.labels["alertname"] == "Poison" for item in inputs):
            raise RuntimeError("this alert cannot be stored")
        return real_process(service, inputs, **kwargs)

    monkeypatch.setattr(batching, "process", process)
    good, bad, also_good = (
        submission(door, "Fine"),
        submission(door, "Poison", "Innocent"),
        submission(door, "AlsoFine"),
    )
    batching.run([good, bad, also_good])
    assert good.error is None and also_good.error is None
    assert isinstance(bad.error, RuntimeError) and not bad.outcomes
    # The failed request stored nothing (all or nothing), the others everything.
    assert set(Alert.objects.values_list("labels__alertname", flat=True)) == {"Fine", "AlsoFine"}


def metric(text: str, name: str) -> float:
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


@pytest.mark.live
@pytest.mark.django_db(transaction=True)  # a real web process on the test database
def test_concurrent_requests_to_a_web_process_share_batches(door, tmp_path):
    from tests.live import start_web

    web = start_web(tmp_path, TOCSIN_METRICS_TOKEN="metrics-token")
    url = f"{web.url}/ingest/prometheus/{door.key}/api/v2/alerts"

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as http:
            await http.post(url, json=[{"labels": {"alertname": "Warm"}}])  # key remembered

            async def send(i: int) -> httpx.Response:
                return await http.post(url, json=[{"labels": {"alertname": f"Storm{i}"}}])

            return await asyncio.gather(*(send(i) for i in range(60)))

    try:
        answers = asyncio.run(send_all())
        metrics = httpx.get(
            f"{web.url}/metrics", headers={"Authorization": "Bearer metrics-token"}
        ).text
    finally:
        web.proc.stop()
    assert [answer.status_code for answer in answers] == [200] * 60
    assert Alert.objects.filter(labels__alertname__startswith="Storm").count() == 60
    requests = metric(metrics, "tocsin_ingest_batch_requests_total")
    batches = metric(metrics, "tocsin_ingest_batch_batches_total")
    assert requests == 61
    assert batches < requests / 2, (batches, requests)  # most requests shared a batch
    assert answers[0].headers["X-Content-Type-Options"] == "nosniff"
