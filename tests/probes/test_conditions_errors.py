"""A condition is parsed when a check is saved: every mistake must point at its character."""

from __future__ import annotations

import pytest

from probes.conditions import ConditionError, parse


def error_for(text: str) -> ConditionError:
    with pytest.raises(ConditionError) as caught:
        parse(text)
    return caught.value


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("[STATUS] 200", 9, "expected an operator"),
        ("[STATUS]", 8, "expected an operator"),
        ('[BODY].name == "john', 15, "unterminated string"),
        ("[BODY].name == 'john", 15, "unterminated string"),
        ("[STATU] == 200", 0, "unknown placeholder [STATU]; did you mean [STATUS]?"),
        ("[STATUS] == 200 and [NOPE] == 1", 20, "unknown placeholder [NOPE]"),
        ('[BODY] =~ "(abc"', 11, "invalid regular expression: missing ), unterminated subpattern"),
        ('[BODY] =~ "ab[c"', 13, "invalid regular expression: unterminated character set"),
        ("[BODY] =~ ab[c", 12, "invalid regular expression: unterminated character set"),
        ("foo([BODY]) > 1", 0, "unknown function foo(); known: len(), has(), any(), pat()"),
        ("[STATUS] == 200 200", 16, "expected 'and', 'or' or the end of the condition"),
        ("", 0, "the condition is empty"),
        ("   ", 0, "the condition is empty"),
        ("([STATUS] == 200", 0, "unclosed '('"),
        ("[STATUS] == 200)", 15, "unmatched ')'"),
        ("([STATUS] == 200 [BODY] == 1)", 17, "expected ')', 'and' or 'or'"),
        ("[STATUS] == 200 and", 19, "expected a condition after 'and'"),
        ("[STATUS] == 200 or or [IP] == x", 19, "expected a condition before 'or'"),
        ("and [STATUS] == 200", 0, "expected a condition before 'and'"),
        ("[STATUS] ==", 11, "expected a value after '=='"),
        ("[STATUS] = 200", 9, "unknown operator '='; did you mean '=='?"),
        ("[STATUS] in 300..200", 12, "the range goes backwards"),
        ("[STATUS] in 200", 12, "expected a range such as 200..299 or a list such as (200, 201)"),
        ("[STATUS].code == 1", 8, "[STATUS] takes no path"),
        ("[BODY].data[x] == 1", 12, "expected an index such as [0]"),
        ("[BODY].data. == 1", 12, "expected a key after '.'"),
        ("[BODY].data[0 == 1", 13, "expected ']'"),
        ("[STATUS == 200", 7, "expected ']' to close the placeholder"),
        ("[] == 200", 1, "expected a placeholder name such as [STATUS]"),
        ("len([BODY]", 10, "expected ')' to close len("),
        ("len(200) > 1", 4, "len() takes a placeholder such as [BODY].items"),
        ("has(x)", 4, "has() takes a placeholder such as [BODY].items"),
        ("[STATUS] == any()", 12, "any() needs at least one value"),
        ("[STATUS] == any(200 201)", 20, "expected ',' or ')'"),
        ("any([STATUS])", 0, "any(x, a, b, …) needs a value and what it may equal"),
        ("[STATUS] < any(200, 201)", 9, "any() works only with == and !="),
        ("[STATUS] contains pat(2*)", 9, "pat() works only with == and !="),
        ("[IP] == pat()", 12, "pat() needs a pattern such as pat(2*)"),
        ("[RESPONSE_TIME] < 300sec", 18, "expected a number or a duration such as 300ms"),
        ("[BODY] =~ [STATUS]", 10, "expected a regular expression (a quoted string)"),
        ("[BODY] =~ '(a+)+$'", 10, "this regular expression repeats a group"),
        ("[BODY] =~ '(ab|a)*x'", 10, "this regular expression repeats a group"),
        ("[status] == 200", 0, "unknown placeholder [status] (placeholders are upper-case"),
        ("[STATUS] == 200 and ([BODY] == 1 or)", 35, "expected a condition after 'or'"),
        ("[BODY].msg == all good", 18, "expected 'and', 'or' or the end of the condition"),
    ],
)
def test_it_points_at_the_offending_character(text: str, position: int, message: str) -> None:
    error = error_for(text)
    assert error.position == position, str(error)
    assert error.message.startswith(message), error.message
    assert error.text == text


def test_the_message_reads_with_the_position_and_a_caret_under_the_character() -> None:
    error = error_for("[STATUS] 200")
    first, caret = str(error).splitlines()
    assert first == "expected an operator at position 9: [STATUS] 200"
    assert caret.index("^") == first.index("200")
    assert caret.strip() == "^"


def test_a_value_with_spaces_is_told_to_be_quoted() -> None:
    assert "quote a value that contains spaces" in error_for("[BODY].msg == all good").message
    assert parse('[BODY].msg == "all good"').text == '[BODY].msg == "all good"'


def test_a_condition_error_is_a_value_error_and_survives_pickling() -> None:
    import pickle

    error = error_for("[STATUS] 200")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.position, copy.text) == (error.message, 9, "[STATUS] 200")


def test_an_overlong_regex_is_refused() -> None:
    error = error_for(f"[BODY] =~ '{'a' * 600}'")
    assert error.position == 10
    assert "longer than 512 characters" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "[STATUS] == 200",
        "[STATUS]==200",
        "[BODY].data.items[0].id == 1",
        "[BODY][0].id == 1",
        '[BODY]["odd key"] == 1',
        "[HEADERS].Content-Type contains json",
        "[CONTEXT].token.exp > 0",
        "[CERTIFICATE_EXPIRATION] > 48h",
        "[STATUS] in (200, 201, 204)",
        "[STATUS] not in 500..599",
        "[BODY] == pat(*<h1>Example Domain</h1>*)",
        "[BODY].ip == any(127.0.0.1, ::1)",
        "has([BODY].errors) == false",
        "not has([BODY].errors)",
        "[CONNECTED] && [RESPONSE_TIME] < 1h30m || [IP] == 10.0.0.1",
        "[VALUE] > -1.5",
        "[BODY].status =~ '^(UP|OK)$'",
    ],
)
def test_it_accepts_the_language(text: str) -> None:
    assert parse(text).text == text


def test_it_lists_the_placeholders_a_condition_uses() -> None:
    condition = parse("[STATUS] == 200 and len([BODY].items) > 0 or [CERTIFICATE_EXPIRATION] > 1d")
    assert condition.placeholders == {"STATUS", "BODY", "CERT_EXPIRY"}
    assert parse("any([CONTEXT].a, [HEADERS].x, 1)").placeholders == {"CONTEXT", "HEADERS"}
    assert parse("[IP] in ([CONTEXT].ip, 1.1.1.1)").placeholders == {"IP", "CONTEXT"}
    assert parse("true").placeholders == frozenset()
