"""Bounds on what senders may store: labels, annotations and links, the same for every sender.

A refusal is a 400 naming the field path and the bound, and nothing is stored.
"""

from __future__ import annotations

import pytest

from tests.monitoring.ingest_support import assert_nothing_stored, fixture, post

pytestmark = pytest.mark.django_db


def many_labels(count: int) -> dict[str, str]:
    return {f"label_{n}": "x" for n in range(count)}


def refused(response, path: str, words: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    messages = body["error"]["fields"][path]
    assert any(words in message for message in messages), messages
    assert_nothing_stored()


def generic(doors, body):
    return post(f"/ingest/generic/{doors['generic'].key}/", body)


def test_generic_refuses_more_than_100_labels(doors):
    refused(generic(doors, {"title": "x", "labels": many_labels(101)}), "labels", "at most 100")


def test_generic_accepts_exactly_100_labels(doors):
    assert generic(doors, {"title": "x", "labels": many_labels(100)}).status_code == 200


def test_a_label_value_over_2048_characters_is_refused(doors):
    body = {"title": "x", "labels": {"host": "a" * 2049}}
    refused(generic(doors, body), "labels.host", "at most 2048 characters")


def test_a_label_name_over_128_characters_is_refused(doors):
    body = {"title": "x", "labels": {"n" * 129: "v"}}
    refused(generic(doors, body), "labels", "at most 128 characters")


def test_an_annotation_value_over_16_kib_is_refused(doors):
    body = {"title": "x", "annotations": {"description": "d" * 200_000}}
    refused(generic(doors, body), "annotations.description", "at most 16384 characters")


def test_more_than_100_annotations_are_refused(doors):
    body = {"title": "x", "annotations": many_labels(101)}
    refused(generic(doors, body), "annotations", "at most 100 annotations")


@pytest.mark.parametrize(
    "href", ["javascript:alert(document.cookie)", "JavaScript:alert(1)", "data:text/html,x", "//x"]
)
def test_generic_links_must_be_http_or_https(doors, href):
    refused(generic(doors, {"title": "x", "links": [href]}), "links[0]", "http or https URL")


def test_a_javascript_runbook_annotation_is_refused(doors):
    body = {"title": "x", "annotations": {"runbook_url": "javascript:alert(1)"}}
    refused(generic(doors, body), "annotations.runbook_url", "http or https URL")


def test_alertmanager_labels_are_bounded(doors):
    body = fixture("alertmanager-webhook-v4.json")
    body["alerts"][0]["labels"] = many_labels(10_000)
    response = post(f"/ingest/alertmanager/{doors['alertmanager'].key}/", body)
    refused(response, "alerts[0].labels", "at most 100 labels (got 10000)")


def test_alertmanager_generator_url_must_be_http(doors):
    body = fixture("alertmanager-webhook-v4.json")
    body["alerts"][0]["generatorURL"] = "javascript:alert(1)"
    response = post(f"/ingest/alertmanager/{doors['alertmanager'].key}/", body)
    refused(response, "alerts[0].generatorURL", "http or https URL")


def test_prometheus_annotation_values_are_bounded(doors):
    body = [{"labels": {"alertname": "X"}, "annotations": {"summary": "s" * 20_000}}]
    response = post(f"/ingest/prometheus/{doors['prometheus'].key}/api/v2/alerts", body)
    refused(response, "[0].annotations.summary", "at most 16384 characters")


def test_grafana_links_must_be_http(doors):
    body = fixture("grafana-webhook.json")
    body["alerts"][0]["dashboardURL"] = "javascript:alert(1)"
    response = post(f"/ingest/grafana/{doors['grafana'].key}/", body)
    refused(response, "alerts[0].dashboardURL", "http or https URL")


def test_events_v2_links_must_be_http_and_labels_bounded(doors):
    body = fixture("pagerduty-events-v2-trigger.json")
    body["routing_key"] = doors["events_v2"].key
    body["links"] = [{"href": "javascript:alert(1)", "text": "click"}]
    body["payload"]["component"] = "c" * 3000
    response = post("/ingest/pagerduty/v2/enqueue", body)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(e.startswith("links[0].href") and "http or https" in e for e in errors), errors
    assert any(e.startswith("payload.component") and "2048" in e for e in errors), errors
    assert_nothing_stored()


def test_https_links_are_still_accepted(doors):
    body = {"title": "x", "links": ["https://example.com/run", {"href": "http://a.example/b"}]}
    response = generic(doors, body)
    assert response.status_code == 200, response.content
