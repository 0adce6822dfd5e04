"""The schema says what the API answers: blank links, nulls, local times, unpaginated lists."""

from __future__ import annotations

import re
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _props(spec: dict[str, Any], component: str) -> dict[str, Any]:
    return spec["components"]["schemas"][component]["properties"]


@pytest.mark.parametrize(
    ("component", "field"),
    [("Service", "runbook_url"), ("Alert", "generator_url"), ("ActionItem", "tracker_url")],
)
def test_links_that_may_be_blank_allow_the_empty_string(
    spec: dict[str, Any], component: str, field: str
) -> None:
    schema = _props(spec, component)[field]

    assert "format" not in schema
    assert {"maxLength": 0} in schema["anyOf"] and {"format": "uri"} in schema["anyOf"]


def test_nulls_are_declared(spec: dict[str, Any]) -> None:
    assert _props(spec, "MaintenanceWindow")["duration"] == {
        "type": "integer",
        "nullable": True,
        "readOnly": True,
        "description": "Seconds; null for a one-off window.",
    }
    assert _props(spec, "Silence")["expired_by"]["nullable"] is True


def test_times_of_day_are_local_times_not_rfc3339(spec: dict[str, Any]) -> None:
    schema = _props(spec, "Layer")["handoff_time"]

    assert "format" not in schema
    assert re.match(schema["pattern"], "09:00:00") and re.match(schema["pattern"], "09:00")
    assert not re.match(schema["pattern"], "25:00")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/incidents/{id}/timeline/",
        "/api/v1/schedules/{id}/overrides/",
        "/api/v1/schedules/{id}/shifts/",
    ],
)
def test_whole_lists_are_declared_as_lists(spec: dict[str, Any], path: str) -> None:
    operation = spec["paths"][path]["get"]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]

    assert body["type"] == "array"
    assert not {"page", "page_size"} & {p["name"] for p in operation.get("parameters", [])}


def test_page_parameters_carry_their_bounds(spec: dict[str, Any]) -> None:
    operation = spec["paths"]["/api/v1/teams/"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"]}

    assert params["page_size"] == {"type": "integer", "minimum": 1, "maximum": 500}
    assert params["page"]["minimum"] == 1
    assert "404" in operation["responses"]  # a page past the last
