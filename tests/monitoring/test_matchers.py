"""Label matchers: Alertmanager's operators, anchoring, missing labels, parsing and errors."""

from __future__ import annotations

import pytest

from monitoring.matchers import (
    Matcher,
    MatcherError,
    compile_regex,
    format_matchers,
    parse_matcher,
    parse_matchers,
    to_matchers,
)

LABELS = {"alertname": "HighLatency", "severity": "critical", "env": "prod-eu"}


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        ('severity="critical"', True),
        ('severity="crit"', False),
        ('severity!="critical"', False),
        ('severity!="warning"', True),
        ('severity=~"critical|page"', True),
        ('severity=~"crit"', False),  # anchored: a regex must match the whole value
        ('severity=~"crit.*"', True),
        ('severity!~"crit"', True),
        ('severity!~"crit.*"', False),
        ('env=~"prod-.*"', True),
        ('env=~"(?i)PROD-EU"', True),  # Go-style leading flags work inside the anchoring
        ('env=~"prod-(?i)EU"', True),  # …and anywhere, as in Go (RE2)
    ],
)
def test_each_operator(matcher, expected):
    assert parse_matcher(matcher).matches(LABELS) is expected


def test_a_missing_label_is_the_empty_string():
    assert parse_matcher('team=""').matches(LABELS)
    assert not parse_matcher('team!=""').matches(LABELS)
    assert parse_matcher('team=~".*"').matches(LABELS)
    assert not parse_matcher('team=~".+"').matches(LABELS)
    assert parse_matcher('team!="payments"').matches(LABELS)
    assert parse_matcher('team=""').matches_empty()


def test_anchoring_does_not_match_before_a_trailing_newline():
    assert not parse_matcher('x=~"a"').matches({"x": "a\n"})


def test_it_parses_braces_quotes_and_the_unquoted_shorthand():
    braced = parse_matchers('{alertname="X", severity=~"crit|page"}')
    assert braced == [Matcher("alertname", "=", "X"), Matcher("severity", "=~", "crit|page")]
    assert parse_matchers("alertname=X,env!=prod") == [
        Matcher("alertname", "=", "X"),
        Matcher("env", "!=", "prod"),
    ]
    assert parse_matchers(" a = 1 , b !~ 2 , ") == [Matcher("a", "=", "1"), Matcher("b", "!~", "2")]
    assert parse_matchers("{}") == []


def test_quoted_values_keep_commas_and_escapes():
    [m] = parse_matchers(r'msg="a, \"b\"", ')
    assert m.value == 'a, "b"'
    [r] = parse_matchers(r'path=~"/api/v\d+/.*"')
    assert r.value == r"/api/v\d+/.*" and r.matches({"path": "/api/v2/x"})


def test_format_round_trips():
    matchers = parse_matchers('a="x, \\"y\\"", b=~"c|d", e!~"", f!="g"')
    assert parse_matchers(format_matchers(matchers)) == matchers


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('severity=~"crit("', 'severity=~"crit("'),
        ("severity", "expected = != =~ or !~"),
        ('=~"x"', "expected a label name"),
        ('a="x" b="y"', "expected a comma"),
        ('a="x', "not closed"),
        ('{a="x"', "closing }"),
        ("1abc=x", "expected a label name"),
        ('a=b"c', "stray quote"),
    ],
)
def test_bad_matchers_raise_a_value_error_naming_them(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_matchers(text)
    assert isinstance(info.value, MatcherError)
    assert fragment in str(info.value)


def test_bad_regex_error_says_it_is_a_regex():
    with pytest.raises(MatcherError, match=r'matcher env!~"\[": invalid regular expression'):
        Matcher("env", "!~", "[")


def test_from_dicts_and_lists():
    assert to_matchers([{"name": "a", "op": "=~", "value": "b"}, 'c!="d"']) == [
        Matcher("a", "=~", "b"),
        Matcher("c", "!=", "d"),
    ]
    with pytest.raises(MatcherError, match="unknown operator"):
        to_matchers([{"name": "a", "op": "==", "value": "b"}])
    with pytest.raises(MatcherError):
        to_matchers(42)


def test_compiled_regexes_are_cached():
    compile_regex.cache_clear()
    parse_matcher('a=~"x+"').matches({"a": "xx"})
    parse_matcher('a=~"x+"').matches({"a": "xy"})
    info = compile_regex.cache_info()
    assert info.misses == 1 and info.hits >= 2


@pytest.mark.timeout(20)
def test_a_backtracking_pattern_cannot_hang_matching():
    """``(.*.*)*X`` backtracks exponentially in Python's re (seconds at 14 characters, doubling
    with each one); RE2, Alertmanager's engine, matches in linear time."""
    matcher = Matcher("alertname", "=~", "(.*.*)*X")
    assert not matcher.matches({"alertname": "a" * 60})
    assert matcher.matches({"alertname": "a" * 60 + "X"})
    nested = Matcher("host", "=~", "(a+)+$b")
    assert not nested.matches({"host": "a" * 5000})


def test_what_go_refuses_is_refused():
    # No backreferences or lookarounds in Go's regexp, nor here: a silence means the same in
    # Tocsin as in Alertmanager.
    for pattern in (r"(x)\1", "a(?=b)", "(?<!a)b"):
        with pytest.raises(MatcherError, match="invalid regular expression"):
            Matcher("a", "=~", pattern)


def test_any_label_name_can_be_matched_quoted_as_alertmanager_writes_it():
    labels = {"app.kubernetes.io/name": "api", "1st": "yes", "team name": "ops"}
    matchers = parse_matchers('{"app.kubernetes.io/name"="api", "1st"=~"y.*", "team name"!="x"}')
    assert [m.name for m in matchers] == ["app.kubernetes.io/name", "1st", "team name"]
    assert all(m.matches(labels) for m in matchers)
    # Written back quoted where needed, and read back the same.
    text = format_matchers(matchers)
    assert text.startswith('{"app.kubernetes.io/name"="api"') and "alertname" not in text
    assert parse_matchers(text) == matchers
    assert str(Matcher("alertname", "=", "X")) == 'alertname="X"'  # classic names stay bare
    for bad in ("", "a\nb", "tab\there"):
        with pytest.raises(MatcherError, match="is not a label name"):
            Matcher(bad, "=", "x")
