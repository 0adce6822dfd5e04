"""Evaluating conditions: every placeholder, operator and function, and what a run shows."""

from __future__ import annotations

import json

import pytest

from probes.conditions import evaluate_all, parse

BODY = json.dumps(
    {
        "status": "DOWN",
        "version": "2.4.1",
        "count": "200",
        "data": {"items": [{"id": 7, "name": "alpha"}, {"id": 8, "name": "beta"}], "empty": []},
        "user": {"name": "john.doe", "admin": False, "email": None},
        "tags": ["prod", "eu"],
        "ratio": 0.25,
    }
)
VALUES = {
    "STATUS": 503,
    "RESPONSE_TIME": 812.4,
    "BODY": BODY,
    "HEADERS": {"content-type": "application/json; charset=utf-8", "x-request-id": "abc"},
    "IP": "127.0.0.1",
    "CONNECTED": True,
    "CERT_EXPIRY": 13 * 86_400_000 + 4 * 3_600_000,
    "DNS_RCODE": "NOERROR",
    "VALUE": 42,
    "CONTEXT": {"token": "s3cr3t", "user": {"id": 12}, "raw": '{"a": [1, 2]}'},
}


def run(text: str, values: dict | None = None) -> tuple[bool, str]:
    verdict = parse(text).evaluate(VALUES if values is None else values)
    return verdict.passed, verdict.explanation


# ------------------------------------------------------------------ placeholders


@pytest.mark.parametrize(
    ("text", "passed", "explanation"),
    [
        ("[STATUS] == 503", True, "[STATUS] (503) == 503"),
        ("[RESPONSE_TIME] < 1000", True, "[RESPONSE_TIME] (812 ms) < 1000"),
        ("[BODY].status == UP", False, '[BODY].status ("DOWN") == UP'),
        ("[BODY].data.items[1].name == beta", True, '[BODY].data.items[1].name ("beta") == beta'),
        ("[BODY].data.items[-1].id == 8", True, "[BODY].data.items[-1].id (8) == 8"),
        ("[BODY].data.items.0.id == 7", True, "[BODY].data.items.0.id (7) == 7"),
        ("[HEADERS].Content-Type contains json", True, None),
        ("[HEADERS].X-REQUEST-ID == abc", True, '[HEADERS].X-REQUEST-ID ("abc") == abc'),
        ("[IP] == 127.0.0.1", True, '[IP] ("127.0.0.1") == 127.0.0.1'),
        ("[CONNECTED] == true", True, "[CONNECTED] (true) == true"),
        ("[CERT_EXPIRY] > 14d", False, "[CERT_EXPIRY] (13d 4h) > 14d"),
        ("[CERTIFICATE_EXPIRATION] > 48h", True, "[CERTIFICATE_EXPIRATION] (13d 4h) > 48h"),
        ("[DNS_RCODE] == NOERROR", True, '[DNS_RCODE] ("NOERROR") == NOERROR'),
        ("[VALUE] >= 42", True, "[VALUE] (42) >= 42"),
        ("[CONTEXT].token == s3cr3t", True, '[CONTEXT].token ("s3cr3t") == s3cr3t'),
        ("[CONTEXT].user.id == 12", True, "[CONTEXT].user.id (12) == 12"),
        ("[CONTEXT].raw.a[1] == 2", True, "[CONTEXT].raw.a[1] (2) == 2"),
    ],
)
def test_every_placeholder_resolves(text: str, passed: bool, explanation: str | None) -> None:
    assert run(text)[0] is passed
    if explanation is not None:
        assert run(text)[1] == explanation


def test_a_body_that_is_already_parsed_is_walked_as_is() -> None:
    values = {"BODY": {"data": [{"id": 1}]}}
    assert run("[BODY].data[0].id == 1", values) == (True, "[BODY].data[0].id (1) == 1")
    assert run("len([BODY].data) == 1", values)[0] is True


def test_the_whole_body_is_compared_as_text() -> None:
    assert run("[BODY] == 1", {"BODY": "1"}) == (True, '[BODY] ("1") == 1')
    assert run("len([BODY]) == 5", {"BODY": "hello"})[0] is True


def test_a_long_body_is_cut_in_the_explanation() -> None:
    passed, explanation = run("[BODY] contains needle", {"BODY": "x" * 5_000})
    assert passed is False
    assert explanation.endswith("… (5,000 chars)) contains needle")
    assert len(explanation) < 150


def test_a_placeholder_the_run_did_not_fill_fails_and_says_so() -> None:
    assert run("[STATUS] in 200..299", {}) == (False, "[STATUS] (no value) in 200..299")
    assert run("[BODY].a == 1", {"STATUS": 200}) == (False, "[BODY].a (no value) == 1")


# ------------------------------------------------------------------ data problems


@pytest.mark.parametrize(
    ("text", "values", "explanation"),
    [
        ("[BODY].data.id == 1", {"BODY": "{}"}, "[BODY].data.id (no such path: data) == 1"),
        ("[BODY].status == UP", {"BODY": "<html>"}, "[BODY].status (the body is not JSON) == UP"),
        (
            "[BODY].items[3] == 1",
            {"BODY": "[]"},
            "[BODY].items[3] (no such path: items (the value is a list)) == 1",
        ),
        (
            "[BODY][3] == 1",
            {"BODY": "[1, 2]"},
            "[BODY][3] (no such path: [3] (the list has 2 items)) == 1",
        ),
        (
            "[BODY].a.b == 1",
            {"BODY": '{"a": 5}'},
            "[BODY].a.b (no such path: a.b (a is a number)) == 1",
        ),
        ("len([STATUS]) > 1", {"STATUS": 200}, "len([STATUS]) (len() of a number: 200) > 1"),
        (
            "[BODY].a > 1",
            {"BODY": '{"a": [1]}'},
            "[BODY].a (a list, not a number or text) > 1",
        ),
        ("[BODY].a in 1..5", {"BODY": '{"a": "x"}'}, '[BODY].a ("x", not a number) in 1..5'),
        (
            "[BODY].a contains x",
            {"BODY": '{"a": null}'},
            "[BODY].a (null, not a text or a list) contains x",
        ),
    ],
)
def test_data_problems_fail_with_a_reason_and_never_raise(
    text: str, values: dict, explanation: str
) -> None:
    assert run(text, values) == (False, explanation)


def test_a_data_problem_stays_a_failure_under_not() -> None:
    passed, explanation = run("not [BODY].a == 1", {"BODY": "{}"})
    assert passed is False
    assert explanation == "not ([BODY].a (no such path: a) == 1)"
    assert run("not [BODY].a == 1", {"BODY": '{"a": 2}'})[0] is True


# ------------------------------------------------------------------ operators


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ("[STATUS] == 503", True),
        ("[STATUS] == 200", False),
        ("[STATUS] != 200", True),
        ("[STATUS] != 503", False),
        ("[STATUS] < 504", True),
        ("[STATUS] < 503", False),
        ("[STATUS] <= 503", True),
        ("[STATUS] <= 502", False),
        ("[STATUS] > 502", True),
        ("[STATUS] > 503", False),
        ("[STATUS] >= 503", True),
        ("[STATUS] >= 504", False),
        ("[BODY].version =~ '^2\\.\\d+'", True),
        ("[BODY].version =~ ^3", False),
        ("[BODY].version !~ ^3", True),
        ("[BODY].version !~ '\\d'", False),
        ("[BODY].status contains OW", True),
        ("[BODY].status contains ow", False),
        ("[BODY].tags contains eu", True),
        ("[BODY].tags contains us", False),
        ("[BODY].user contains name", True),
        ("[BODY].tags not contains us", True),
        ("[STATUS] in 500..599", True),
        ("[STATUS] in 200..299", False),
        ("[STATUS] not in 200..299", True),
        ("[STATUS] in 503..503", True),
        ("[STATUS] in (200, 503)", True),
        ("[STATUS] in (200, 201)", False),
        ("[BODY].status in (UP, DOWN)", True),
        ("eu in [BODY].tags", True),
        ("[IP] in [CONTEXT].token", False),
    ],
)
def test_every_operator(text: str, passed: bool) -> None:
    assert run(text)[0] is passed


def test_comparison_is_numeric_when_both_sides_are_numbers() -> None:
    assert run("[BODY].count == 200")[0] is True  # "200" in the body equals 200
    assert run("[BODY].count > 30")[0] is True  # 200 > 30, not "200" < "30"
    assert run("[STATUS] == '503'")[0] is True
    assert run("[BODY].ratio == 0.25")[0] is True
    assert run("[VALUE] == 42.0")[0] is True


def test_comparison_falls_back_to_exact_text() -> None:
    assert run("[BODY].version > 10")[0] is True  # "2.4.1" is no number: "2…" > "1…" as text
    assert run("[BODY].version < 3")[0] is True
    assert run("[BODY].status == down")[0] is False  # exact, case-sensitive
    assert run('[BODY].status == "DOWN"')[0] is True
    assert run("[BODY].user.admin == false")[0] is True
    assert run("[BODY].user.email == null")[0] is True
    assert run("[BODY].user.name == john.doe")[0] is True


def test_ranges_are_inclusive_and_accept_durations() -> None:
    assert run("[STATUS] in 503..599")[0] is True
    assert run("[STATUS] in 500..503")[0] is True
    assert run("[RESPONSE_TIME] in 500ms..1s")[0] is True
    assert run("[RESPONSE_TIME] in 1s..2s")[0] is False
    assert run("[VALUE] in -5..42")[0] is True


def test_a_regex_searches_anywhere_and_anchors_when_asked() -> None:
    assert run('[BODY] =~ "\\"status\\": \\"DOWN\\""')[0] is True
    assert run("[DNS_RCODE] =~ ^NOERROR$")[0] is True
    assert run("[DNS_RCODE] =~ ^NOERR$")[0] is False
    assert run("[DNS_RCODE] =~ '.*ERROR'")[0] is True


def test_a_regex_over_a_huge_body_searches_a_bounded_prefix() -> None:
    values = {"BODY": "a" * 100_000 + "needle"}
    passed, explanation = run("[BODY] =~ 'a.*needle'", values)
    assert passed is False
    assert explanation.endswith("=~ 'a.*needle' (searched the first 16,384 characters)")
    assert run("[BODY] contains needle", values)[0] is True


# ------------------------------------------------------------------ functions


def test_len_counts_strings_lists_and_objects() -> None:
    assert run("len([BODY].data.items) == 2") == (True, "len([BODY].data.items) (2) == 2")
    assert run("len([BODY].data.empty) > 0") == (False, "len([BODY].data.empty) (0) > 0")
    assert run("len([BODY].user.name) == 8")[0] is True
    assert run("len([BODY].user) == 3")[0] is True
    assert run("len([HEADERS]) == 2")[0] is True
    assert run("len([BODY].missing) > 0") == (
        False,
        "len([BODY].missing) (no such path: missing) > 0",
    )


def test_has_tells_whether_a_path_exists() -> None:
    assert run("has([BODY].user.email)") == (True, "has([BODY].user.email) (true)")
    assert run("has([BODY].errors) == false") == (True, "has([BODY].errors) (false) == false")
    assert run("has([BODY].errors)") == (False, "has([BODY].errors) (false)")
    assert run("not has([BODY].errors)") == (True, "not has([BODY].errors) (false)")
    assert run("has([BODY].x)", {"BODY": "not json"})[0] is False
    assert run("has([HEADERS].X-Request-Id)")[0] is True


def test_any_in_both_of_its_forms() -> None:
    assert run("[STATUS] == any(200, 503)") == (True, "[STATUS] (503) == any(200, 503)")
    assert run("[STATUS] == any(200, 429)") == (False, "[STATUS] (503) == any(200, 429)")
    assert run("[STATUS] != any(200, 429)")[0] is True
    assert run("any(200, 503) == [STATUS]")[0] is True
    assert run("any([STATUS], 200, 503)") == (True, "any([STATUS] (503), 200, 503)")
    assert run("any([STATUS], 200, 201)") == (False, "any([STATUS] (503), 200, 201)")
    assert run("[BODY].user.name == any(john.doe, jane.doe)")[0] is True
    assert run("[IP] == any([CONTEXT].token, 127.0.0.1)")[0] is True


def test_pat_matches_the_whole_value_with_wildcards() -> None:
    assert run("[IP] == pat(127.0.*)") == (True, '[IP] ("127.0.0.1") == pat(127.0.*)')
    assert run("[IP] == pat(10.*)")[0] is False
    assert run("[IP] != pat(10.*)")[0] is True
    assert run("[STATUS] == pat(5*)")[0] is True
    assert run("[BODY] == pat(*<h1>Example Domain</h1>*)", {"BODY": "<p><h1>Example Domain</h1>"})[
        0
    ]
    assert run("[IP] == pat('127.0.0.1')")[0] is True
    assert run("[IP] == pat(127.?.0.1)")[0] is False  # only * is a wildcard


# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ("[RESPONSE_TIME] < 300ms", False),
        ("[RESPONSE_TIME] < 300", False),
        ("[RESPONSE_TIME] < 1s", True),
        ("[RESPONSE_TIME] < 1000", True),
        ("[RESPONSE_TIME] < 0.5s", False),
        ("[RESPONSE_TIME] < 1m", True),
        ("[CERT_EXPIRY] > 13d", True),
        ("[CERT_EXPIRY] > 14d", False),
        ("[CERT_EXPIRY] > 316h", False),
        ("[CERT_EXPIRY] > 1h30m", True),
    ],
)
def test_durations_are_milliseconds(text: str, passed: bool) -> None:
    assert run(text)[0] is passed


def test_an_unknown_unit_is_refused_rather_than_compared_as_text() -> None:
    with pytest.raises(ValueError, match="expected a number or a duration"):
        parse("[CERT_EXPIRY] < 2w")


def test_an_expired_certificate_reads_as_expired() -> None:
    values = {"CERT_EXPIRY": -2 * 86_400_000}
    assert run("[CERT_EXPIRY] > 7d", values) == (False, "[CERT_EXPIRY] (expired 2d 0h ago) > 7d")


# ------------------------------------------------------------------ and / or / not


def test_and_binds_tighter_than_or() -> None:
    # true or (false and false) — if "or" bound tighter this would be (true or false) and false
    assert run("[STATUS] == 503 or [STATUS] == 200 and [IP] == x")[0] is True
    assert run("([STATUS] == 503 or [STATUS] == 200) and [IP] == x")[0] is False
    assert run("[IP] == x and [STATUS] == 200 or [STATUS] == 503")[0] is True


def test_a_failed_and_names_only_what_failed() -> None:
    text = "[STATUS] == 503 and [BODY].status == UP and [RESPONSE_TIME] < 300ms"
    assert run(text) == (
        False,
        '[BODY].status ("DOWN") == UP and [RESPONSE_TIME] (812 ms) < 300ms',
    )


def test_a_passed_and_shows_every_part() -> None:
    assert run("[STATUS] == 503 and [CONNECTED]") == (
        True,
        "[STATUS] (503) == 503 and [CONNECTED] (true)",
    )


def test_a_passed_or_names_the_branch_that_passed() -> None:
    assert run("[STATUS] == 200 or [STATUS] == 503") == (True, "[STATUS] (503) == 503")


def test_a_failed_or_shows_every_branch_with_groups_in_parentheses() -> None:
    text = "([STATUS] == 200 and [IP] == x) or [BODY].status == UP or [VALUE] < 1"
    assert run(text) == (
        False,
        '([STATUS] (503) == 200 and [IP] ("127.0.0.1") == x) or [BODY].status ("DOWN") == UP'
        " or [VALUE] (42) < 1",
    )


def test_not_and_symbol_forms() -> None:
    assert run("not [STATUS] == 200") == (True, "not ([STATUS] (503) == 200)")
    assert run("not ([STATUS] == 503 or [STATUS] == 200)")[0] is False
    assert run("[CONNECTED] && [STATUS] == 503 || [STATUS] == 1")[0] is True
    assert run("not not [CONNECTED]")[0] is True


def test_evaluate_all_decodes_the_body_once_for_every_condition(monkeypatch) -> None:
    conditions = [parse("[BODY].status == DOWN"), parse("len([BODY].tags) == 2")]
    calls = []
    real_loads = json.loads

    def counting_loads(*args, **kwargs):
        calls.append(1)
        return real_loads(*args, **kwargs)

    monkeypatch.setattr("probes.conditions.nodes.json.loads", counting_loads)
    verdicts = evaluate_all(conditions, VALUES)
    assert [v.passed for v in verdicts] == [True, True]
    assert len(calls) == 1
    assert bool(verdicts[0]) is True


ODD_VALUES = [
    {},
    {"STATUS": "200", "BODY": b'{"a": 1}', "HEADERS": [], "CONTEXT": "not a dict"},
    {"STATUS": None, "BODY": 5, "RESPONSE_TIME": float("inf"), "CERT_EXPIRY": "soon"},
    {"BODY": "[" * 100_000, "VALUE": {"nested": [None, True, 1.5]}, "CONNECTED": "yes"},
    {"BODY": {"data": "x"}, "HEADERS": {"Content-Type": None}, "IP": 7, "DNS_RCODE": False},
]
ODD_CONDITIONS = [
    "[STATUS] in 200..299",
    "[BODY].data.items[0].id == 1",
    "len([BODY].data) > 0",
    "has([CONTEXT].token.x)",
    "[HEADERS].content-type contains json",
    "[RESPONSE_TIME] < 300ms and [CERT_EXPIRY] > 14d",
    "[VALUE].nested[1] == true or [VALUE] =~ nested",
    "[IP] == pat(1*) or [DNS_RCODE] in (NOERROR, NXDOMAIN)",
    "not [CONNECTED] or any([BODY], 1, 2)",
    "[VALUE] contains 1.5 and [BODY] in [CONTEXT]",
]


@pytest.mark.parametrize("values", ODD_VALUES)
def test_evaluation_never_raises_whatever_the_values(values: dict) -> None:
    for text in ODD_CONDITIONS:
        verdict = parse(text).evaluate(values)
        assert isinstance(verdict.passed, bool)
        assert verdict.explanation
