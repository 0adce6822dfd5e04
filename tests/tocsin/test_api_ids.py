"""Ids and integers in the API: anything but an id in range is a 404 (paths) or a 400 naming the
input (filters, bodies), with the one error shape, never a 500.

The paths and filters come from the generated schema, so an endpoint added later is covered
without touching this file.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.tocsin.api_support import assert_error

BEYOND_BIGINT = str(2**63)  # one past the largest id PostgreSQL and SQLite can store
NOT_IDS = ["abc", "1.5", "-1", BEYOND_BIGINT, str(2**64)]


@pytest.fixture
def schema(db: None, api: Any) -> dict[str, Any]:
    response = api().get("/api/v1/schema/?format=json")
    assert response.status_code == 200, response.content
    return response.json()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in {"get", "post", "patch", "delete"}
    ]


def _with_ids(path: str, bad: str) -> str:
    """Every path parameter replaced by ``bad`` (a team id stays bad too: 404 either way)."""
    return re.sub(r"\{[^}]+\}", bad, path)


@pytest.mark.parametrize("bad", NOT_IDS)
def test_anything_but_an_id_in_a_path_is_a_json_404(
    crew: Any, api: Any, schema: dict[str, Any], bad: str
) -> None:
    client = api(crew.admin)
    client.raise_request_exception = False  # a 500 is a finding here, not a crash
    checked, failures = 0, []
    for path, method, _ in _operations(schema):
        if "{" not in path:
            continue
        response = getattr(client, method)(_with_ids(path, bad), {}, format="json")
        if response.status_code != 404:
            failures.append((method, path, response.status_code))
            continue
        assert_error(response, 404, "not_found")
        checked += 1
    assert not failures
    assert checked > 40


def _integer_filters(schema: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for path, method, operation in _operations(schema):
        if method != "get" or "{" in path:
            continue
        for param in operation.get("parameters", []):
            kind = param.get("schema", {}).get("type")
            paging = param["name"] in {"page", "page_size"}
            if (
                param["in"] == "query"
                and not paging
                and (kind == "integer" or param["name"] == "team")
            ):
                found.append((path, param["name"]))
    return found


def test_schema_declares_integer_filters(schema: dict[str, Any]) -> None:
    found = set(_integer_filters(schema))
    assert ("/api/v1/alerts/", "service") in found
    assert ("/api/v1/incidents/", "service") in found
    assert ("/api/v1/integrations/", "service") in found


@pytest.mark.parametrize("value", [BEYOND_BIGINT, str(2**64), "-" + BEYOND_BIGINT + "0"])
def test_an_integer_filter_out_of_range_is_a_400_naming_it(
    crew: Any, api: Any, schema: dict[str, Any], value: str
) -> None:
    client = api(crew.admin)
    client.raise_request_exception = False  # a 500 is a finding here, not a crash
    failures = []
    for path, name in _integer_filters(schema):
        response = client.get(path, {name: value})
        if response.status_code != 400:
            failures.append((path, name, response.status_code))
            continue
        assert_error(response, 400, "invalid", {name})
    assert not failures


def _incident(crew: Any) -> Any:
    from incidents.models import Incident
    from monitoring.models import Service
    from monitoring.pipeline import AlertInput, process

    service = Service.objects.create(team=crew.team, name="Checkout API")
    process(service, [AlertInput(labels={"alertname": "HighLatency"})], source="test")
    return Incident.objects.get()


@pytest.mark.parametrize("value", [2**63, 2**64])
def test_merge_sources_out_of_range_are_a_400_on_the_field(crew: Any, api: Any, value: int) -> None:
    incident = _incident(crew)
    response = api(crew.responder).post(
        f"/api/v1/incidents/{incident.pk}/merge/", {"sources": [value]}, format="json"
    )

    assert_error(response, 400, "invalid", {"sources.0"})


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/action-items/", {"incident": 2**63, "title": "Fix it"}, "incident"),
        ("/api/v1/integrations/", {"service": 2**63, "kind": "generic"}, "service"),
        ("/api/v1/grouping-preview/", {"service": 2**63, "labels": {"a": "b"}}, "service"),
        ("/api/v1/silences/", {"team": 2**63, "matchers": "a=b", "duration": "1h"}, "team"),
        ("/api/v1/maintenance-windows/", {"service": 2**63, "title": "Patch"}, "service"),
        ("/api/v1/notification-channels/", {"team": 2**63, "kind": "email"}, "team"),
        ("/api/v1/swap-requests/", {"schedule": 2**63}, "schedule"),
        ("/api/v1/teams/{team}/members/", {"user_id": 2**63}, "user_id"),
    ],
)
def test_an_id_out_of_range_in_a_body_is_a_400_on_the_field(
    crew: Any, api: Any, url: str, body: dict[str, Any], field: str
) -> None:
    client = api(crew.admin)
    client.raise_request_exception = False

    response = client.post(url.format(team=crew.team.pk), body, format="json")

    error = assert_error(response, 400, "invalid")
    assert field in error["fields"], error


def test_the_issue_examples(crew: Any, api: Any) -> None:
    client = api(crew.viewer)
    client.raise_request_exception = False

    assert_error(client.get("/api/v1/silences/abc/"), 404, "not_found")
    assert_error(client.get("/api/v1/alerts/", {"service": BEYOND_BIGINT}), 400, "invalid")
