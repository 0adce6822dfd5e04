"""The journey kind against a real local HTTP server: log in, carry values, stop on failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from probes import kinds
from probes.conditions import evaluate_all, parse
from probes.kinds import journey
from probes.kinds.base import InvalidConfig, Observation
from tests.probes.conftest import run_check
from tests.probes.servers import (
    JOURNEY_CSRF,
    JOURNEY_PASSWORD,
    JOURNEY_REQUEST_ID,
    JOURNEY_SESSION,
    JOURNEY_TOKEN,
    JOURNEY_USER,
    JourneyServer,
    free_port,
)


@pytest.fixture(scope="module")
def shop() -> Iterator[JourneyServer]:
    server = JourneyServer()
    yield server
    server.stop()


def login_step(shop: JourneyServer, password: str = "{{password}}") -> dict[str, Any]:
    return {
        "name": "log in",
        "method": "POST",
        "url": shop.url("/login"),
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"username": JOURNEY_USER, "password": password}),
        "conditions": ["[STATUS] == 200"],
        "extract": {"token": {"from": "body", "path": "token"}},
    }


def orders_step(shop: JourneyServer) -> dict[str, Any]:
    return {
        "name": "get orders",
        "url": shop.url("/api/orders"),
        "headers": {"Authorization": "Bearer {{token}}"},
        "conditions": ["[STATUS] == 200", "len([BODY].orders) == 2", "[BODY].owner == 7"],
    }


def api_journey(shop: JourneyServer, password: str = JOURNEY_PASSWORD) -> dict[str, Any]:
    return {
        "steps": [login_step(shop), orders_step(shop)],
        "variables": {"password": password},
    }


def check_passes(seen: Observation, config: dict[str, Any]) -> bool:
    conditions = [
        parse(c) for c in kinds.conditions_for("journey", kinds.get("journey").validate(config))
    ]
    return all(evaluate_all(conditions, seen.values))


def test_it_logs_in_takes_the_token_and_calls_the_api(shop: JourneyServer) -> None:
    config = api_journey(shop)

    seen = run_check("journey", config)

    assert seen.reached, seen.error
    assert seen.values["STATUS"] == 200
    assert json.loads(seen.values["BODY"])["orders"] == [{"id": 1}, {"id": 2}]
    assert seen.values["CONTEXT"]["token"] == JOURNEY_TOKEN
    assert seen.values["CONTEXT"]["journey_passed"] is True
    steps = seen.details["steps"]
    assert [s["name"] for s in steps] == ["log in", "get orders"]
    assert [s["status"] for s in steps] == [200, 200]
    assert all(s["passed"] for s in steps)
    assert steps[0]["extracted"] == ["token"]
    assert [c["passed"] for c in steps[1]["conditions"]] == [True, True, True]
    total = sum(s["response_time"] for s in steps)
    assert seen.values["RESPONSE_TIME"] == pytest.approx(total, abs=0.01)
    assert "failed_step" not in seen.details
    assert check_passes(seen, config)


def test_a_wrong_password_stops_the_journey_at_step_one(shop: JourneyServer) -> None:
    config = api_journey(shop, password="wrong")

    seen = run_check("journey", config)

    assert seen.reached  # the site answered: a failed step is not an unreachable target
    assert seen.values["STATUS"] == 401
    assert seen.values["CONTEXT"]["journey_passed"] is False
    assert seen.details["failed_step"]["number"] == 1
    assert seen.details["failed_step"]["name"] == "log in"
    assert seen.details["failed_step"]["reason"] == "[STATUS] (401) == 200"
    assert len(seen.details["steps"]) == 1  # step 2 never ran
    assert seen.details["steps"][0]["failed_condition"] == "[STATUS] (401) == 200"
    assert not check_passes(seen, config)
    [verdict] = evaluate_all([parse(journey.DEFAULT_CONDITIONS[0])], seen.values)
    assert verdict.explanation == "[CONTEXT].journey_passed (false) == true"


def test_a_step_without_conditions_must_answer_2xx(shop: JourneyServer) -> None:
    step = {"name": "missing", "url": shop.url("/status/404")}

    seen = run_check("journey", {"steps": [step, {"name": "after", "url": shop.url("/ok")}]})

    assert seen.details["failed_step"]["reason"] == "[STATUS] (404) in 200..299"
    assert [s["name"] for s in seen.details["steps"]] == ["missing"]


def test_a_failed_extraction_stops_the_journey(shop: JourneyServer) -> None:
    step = {
        "name": "json",
        "url": shop.url("/json"),
        "extract": {"id": {"from": "body", "path": "data.id"}},
    }

    seen = run_check("journey", {"steps": [step]})

    assert seen.values["CONTEXT"]["journey_passed"] is False
    assert seen.details["failed_step"]["reason"] == "extract id: no such path: data"


def test_a_cookie_session_login_carries_the_cookie(shop: JourneyServer) -> None:
    config = {
        "steps": [
            {
                "name": "form login",
                "method": "POST",
                "url": shop.url("/form-login"),
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                "body": f"user={JOURNEY_USER}&password={{{{password}}}}",
            },
            {"name": "who am i", "url": shop.url("/me"), "conditions": ["[BODY].user == alice"]},
        ],
        "variables": {"password": JOURNEY_PASSWORD},
    }

    seen = run_check("journey", config)

    assert seen.values["CONTEXT"]["journey_passed"] is True, seen.details
    # both cookies came back, the one with an Expires date (a comma inside) unbroken
    sent = json.loads(seen.values["BODY"])["cookie"]
    assert sorted(sent.split("; ")) == [f"sid={JOURNEY_SESSION}", "theme=dark"]
    # the session is a secret: never shown in details
    assert JOURNEY_SESSION not in json.dumps(seen.details)
    assert JOURNEY_SESSION not in seen.excerpt

    without = run_check("journey", {**config, "cookies": False})
    assert without.values["STATUS"] == 401
    assert without.details["failed_step"]["name"] == "who am i"


def test_it_extracts_by_regex_and_header_and_uses_them(shop: JourneyServer) -> None:
    config = {
        "steps": [
            {
                "name": "page",
                "url": shop.url("/page"),
                "extract": {
                    "form_field": {"from": "regex", "pattern": r'name="csrf" value="([^"]+)"'},
                    "request_id": {"from": "header", "name": "X-Request-Id"},
                    "whole": {"from": "regex", "pattern": r"<form>"},
                },
                "conditions": ["[CONTEXT].request_id == req-4242"],
            },
            {
                "name": "echo",
                "method": "POST",
                "url": shop.url("/echo?rid={{request_id}}"),
                "headers": {"X-Form": "{{form_field}}"},
                "body": "field={{form_field}}",
            },
        ]
    }

    seen = run_check("journey", config)

    assert seen.values["CONTEXT"]["journey_passed"] is True, seen.details
    context = seen.values["CONTEXT"]
    assert context["form_field"] == JOURNEY_CSRF
    assert context["request_id"] == JOURNEY_REQUEST_ID
    assert context["whole"] == "<form>"
    echoed = json.loads(seen.values["BODY"])
    assert echoed["query"] == f"rid={JOURNEY_REQUEST_ID}"
    assert echoed["headers"]["x-form"] == JOURNEY_CSRF
    assert echoed["body"] == f"field={JOURNEY_CSRF}"


def test_a_missing_header_or_regex_fails_the_step(shop: JourneyServer) -> None:
    step = {
        "name": "page",
        "url": shop.url("/page"),
        "extract": {
            "nothing": {"from": "header", "name": "X-Absent"},
            "nomatch": {"from": "regex", "pattern": "zzz(\\d+)"},
        },
    }

    seen = run_check("journey", {"steps": [step]})

    reason = seen.details["failed_step"]["reason"]
    assert "extract nothing: the response has no X-Absent header" in reason
    assert "extract nomatch: the body does not match /zzz(\\d+)/" in reason


def test_a_variable_no_earlier_step_extracts_is_refused(shop: JourneyServer) -> None:
    config = {"steps": [orders_step(shop), login_step(shop, password="x")]}

    with pytest.raises(InvalidConfig) as caught:
        journey.validate(config)

    message = caught.value.fields["steps.1.headers"]
    assert message == (
        'step 1 "get orders": uses {{token}} but no earlier step extracts it '
        "and it is not one of the journey's variables"
    )


def test_a_bad_condition_names_the_step_the_condition_and_the_position(shop: JourneyServer) -> None:
    step = {**orders_step(shop), "conditions": ["[STATUS] == 200", "[STATUS] =! 200"]}
    config = {"steps": [login_step(shop, password="x"), step]}

    with pytest.raises(InvalidConfig) as caught:
        journey.validate(config)

    message = caught.value.fields["steps.2.conditions.2"]
    assert message.startswith('step 2 "get orders": condition 2 "[STATUS] =! 200": ')
    assert message.endswith("at position 9")


def test_validation_refuses_bad_extractions_and_urls() -> None:
    config = {
        "steps": [
            {
                "name": "one",
                "url": "ftp://nowhere",
                "extract": {
                    "1bad": {"from": "body", "path": "a"},
                    "path": {"from": "body", "path": "a[x"},
                    "rx": {"from": "regex", "pattern": "(a+)+$"},
                    "where": {"from": "cookie", "name": "x"},
                    "journey_passed": {"from": "body", "path": "ok"},
                },
            }
        ]
    }

    with pytest.raises(InvalidConfig) as caught:
        journey.validate(config)

    fields = caught.value.fields
    assert fields["steps.1.url"].startswith('step 1 "one": must be an http')
    assert "not a variable name" in fields["steps.1.extract.1bad"]
    assert "position" in fields["steps.1.extract.path"]
    assert "exponential" in fields["steps.1.extract.rx"]
    assert '"from": "body"|"header"|"regex"' in fields["steps.1.extract.where"]
    assert "reserved" in fields["steps.1.extract.journey_passed"]
    with pytest.raises(InvalidConfig) as empty:
        journey.validate({"steps": []})
    assert "steps" in empty.value.fields


def test_a_url_from_a_variable_is_accepted_and_checked_when_it_runs(shop: JourneyServer) -> None:
    base = shop.url("")
    good = {
        "steps": [{"name": "ok", "url": "{{base}}/ok"}],
        "variables": {"base": base.rstrip("/")},
    }
    bad = {"steps": [{"name": "ok", "url": "{{base}}/ok"}], "variables": {"base": "nope"}}

    assert run_check("journey", good).values["CONTEXT"]["journey_passed"] is True
    seen = run_check("journey", bad)
    assert seen.values["CONTEXT"]["journey_passed"] is False
    assert "not an http:// or https:// URL" in seen.details["failed_step"]["reason"]


def test_an_unreachable_step_names_the_step(shop: JourneyServer) -> None:
    port = free_port()
    config = {
        "steps": [
            login_step(shop),
            {**orders_step(shop), "url": f"http://127.0.0.1:{port}/api/orders"},
        ],
        "variables": {"password": JOURNEY_PASSWORD},
    }

    seen = run_check("journey", config)

    assert not seen.reached
    assert seen.error == f'step 2 "get orders": connection refused by 127.0.0.1:{port}'
    assert seen.values["CONNECTED"] is False  # the values are the failed step's
    assert "STATUS" not in seen.values
    assert seen.values["CONTEXT"]["journey_passed"] is False
    assert seen.details["failed_step"]["number"] == 2
    assert [s["passed"] for s in seen.details["steps"]] == [True, False]


def test_the_journey_shares_one_timeout(shop: JourneyServer) -> None:
    config = {
        "steps": [
            {"name": "slow", "url": shop.url("/slow/0.6")},
            {"name": "slower", "url": shop.url("/slow/0.6")},
        ]
    }

    seen = run_check("journey", config, timeout=1.0)

    assert not seen.reached
    assert seen.error.startswith('step 2 "slower": timed out after')


def test_secrets_are_masked_in_details_and_excerpt(shop: JourneyServer) -> None:
    step = {
        **login_step(shop),
        "conditions": ["[STATUS] == 200", "[CONTEXT].token == tok-9f8e7d6c5b"],
    }
    config = {"steps": [step], "variables": {"password": JOURNEY_PASSWORD, "user": "alice"}}

    seen = run_check("journey", config)

    assert seen.values["CONTEXT"]["journey_passed"] is True, seen.details
    assert seen.values["CONTEXT"]["token"] == JOURNEY_TOKEN  # conditions still see it
    shown = json.dumps(seen.details) + seen.excerpt
    assert JOURNEY_TOKEN not in shown
    assert JOURNEY_PASSWORD not in shown
    assert seen.details["context"] == {
        "password": journey.MASK,
        "user": "alice",
        "token": journey.MASK,
    }
    explanation = seen.details["steps"][0]["conditions"][1]["explanation"]
    assert journey.MASK in explanation
    assert journey.MASK in seen.excerpt


def test_it_is_registered_with_its_default_condition() -> None:
    assert kinds.get("journey") is journey
    assert ("journey", journey.LABEL) in kinds.choices()
    assert kinds.conditions_for("journey", {}) == ["[CONTEXT].journey_passed == true"]
