"""JSON paths (shared with journeys) and the value helpers explanations are written with."""

from __future__ import annotations

import pytest

from probes import kinds
from probes.conditions import (
    ConditionError,
    PathNotFound,
    format_duration,
    format_ms,
    format_value,
    json_path,
    parse,
    parse_duration,
)

DOCUMENT = {"data": {"items": [{"id": 1, "tags": ["a"]}, {"id": 2}]}, "odd key": True, "n": None}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.items[0].id", 1),
        (".data.items[1].id", 2),
        ("$.data.items[-1].id", 2),
        ("data.items.0.tags[0]", "a"),
        ('["odd key"]', True),
        ("n", None),
        ("", DOCUMENT),
        ("$", DOCUMENT),
    ],
)
def test_json_path_walks_objects_and_lists(path: str, expected: object) -> None:
    assert json_path(DOCUMENT, path) == expected


def test_json_path_parses_a_json_string_or_bytes() -> None:
    assert json_path('{"token": "abc"}', "token") == "abc"
    assert json_path(b'[{"id": 5}]', "[0].id") == 5


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (DOCUMENT, "missing", "no such path: missing"),
        (DOCUMENT, "data.missing.id", "no such path: data.missing"),
        (DOCUMENT, "data.items[5]", "no such path: data.items[5] (the list has 2 items)"),
        (DOCUMENT, "data.items.id", "no such path: data.items.id (data.items is a list)"),
        (
            DOCUMENT,
            "data.items[0].id.x",
            "no such path: data.items[0].id.x (data.items[0].id is a number)",
        ),
        (DOCUMENT, "n.x", "no such path: n.x (n is null)"),
        ("<html>", "a", "the body is not JSON"),
    ],
)
def test_json_path_says_where_it_stopped(document: object, path: str, message: str) -> None:
    with pytest.raises(PathNotFound) as caught:
        json_path(document, path)
    assert str(caught.value) == message
    assert isinstance(caught.value, LookupError)


@pytest.mark.parametrize(
    ("path", "position", "message"),
    [
        ("data[x]", 5, "expected an index"),
        ("data.", 5, "expected a key after '.'"),
        ("data[0", 6, "expected ']'"),
        ("data items", 4, "unexpected character in path"),
        ("  data[x]", 7, "expected an index"),
    ],
)
def test_a_malformed_path_is_refused_with_its_position(
    path: str, position: int, message: str
) -> None:
    with pytest.raises(ConditionError) as caught:
        json_path({}, path)
    assert caught.value.position == position, str(caught.value)
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("300ms", 300),
        ("2s", 2_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("14d", 1_209_600_000),
        ("1h30m", 5_400_000),
        ("1.5s", 1_500),
    ],
)
def test_durations_convert_to_milliseconds(text: str, ms: float) -> None:
    assert parse_duration(text) == ms


def test_a_bare_number_is_not_a_duration_string() -> None:
    with pytest.raises(ValueError):
        parse_duration("300")
    with pytest.raises(ValueError):
        parse_duration("2w")


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (4.25, "4.2 ms"),
        (812.4, "812 ms"),
        (4_200, "4.2 s"),
        (2_000, "2 s"),
        (303_000, "5m 3s"),
        (11_520_000, "3h 12m"),
        (1_137_600_000, "13d 4h"),
        (-90_000_000, "expired 1d 1h ago"),
    ],
)
def test_durations_read_for_people(ms: float, shown: str) -> None:
    assert format_duration(ms) == shown


def test_values_are_shown_in_their_placeholders_units() -> None:
    assert format_ms(0) == "0 ms"
    assert format_value(812.4, "RESPONSE_TIME") == "812 ms"
    assert format_value(86_400_000, "CERT_EXPIRY") == "1d 0h"
    assert format_value("DOWN") == '"DOWN"'
    assert format_value(200.0) == "200"
    assert format_value(None) == "null"
    assert format_value([1, 2]) == "[1,2]"
    assert format_value(list(range(100))).endswith("… (100 items)")


def test_every_kinds_default_conditions_parse_and_use_only_what_the_kind_fills() -> None:
    for module in kinds.MODULES:
        texts = list(module.DEFAULT_CONDITIONS) + kinds.degraded_conditions_for(module.KIND, {})
        for text in texts:
            condition = parse(text)
            assert condition.placeholders <= set(module.PLACEHOLDERS), (module.KIND, text)
