"""Label matchers, as Alertmanager has them: ``name="value"``, ``!=``, ``=~``, ``!~``.

Silences and inhibition rules store matchers as data (``{"name", "op", "value"}`` dicts) and
evaluate them here. The semantics are Alertmanager's, because that is what users type from
memory: regexes are anchored at both ends (``severity=~"crit"`` does not match ``critical``),
and a label the alert lacks has the empty value (``env=""`` matches alerts without ``env``).

Text forms accepted by :func:`parse_matchers`: ``{alertname="X", severity=~"crit|page"}`` and
the unquoted shorthand ``alertname=X,env!=prod``. A label name outside Prometheus's classic
alphabet is quoted, as Alertmanager 0.27 writes UTF-8 names: ``"app.kubernetes.io/name"="api"``
(senders' labels may have any name, and every stored alert must be silenceable).

Regexes run on RE2 (google-re2), the engine of Go's regexp and so of Alertmanager: the same
syntax and, above all, matching in linear time. Python's ``re`` backtracks: one responder's
``(.*.*)*X`` in a silence took seconds per label in the preview and would have held every later
alert of the team in the intake transaction. RE2 cannot be made to hang.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

EQUAL, NOT_EQUAL, REGEX, NOT_REGEX = "=", "!=", "=~", "!~"
OPS = (EQUAL, NOT_EQUAL, REGEX, NOT_REGEX)
# Longest first, so "=~" is not read as "=" followed by a value starting with "~".
_OPS_BY_LENGTH = (REGEX, NOT_REGEX, NOT_EQUAL, EQUAL)

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")  # names written without quotes
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a pattern being typed is refused with a message, not logged
_RE2_OPTIONS.never_capture = True  # matched or not is all we ask
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


class MatcherError(ValueError):
    """A matcher (or a list of them) that cannot be parsed or compiled; says which and why."""


@lru_cache(maxsize=2048)
def compile_regex(value: str) -> Any:
    """The anchored RE2 pattern for a ``=~``/``!~`` value, compiled once per process; raises
    MatcherError with RE2's reason when it is not a valid pattern."""
    try:
        return re2.compile(f"^(?:{value})$", _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise MatcherError(f"invalid regular expression: {reason}") from None


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or _CONTROL.search(self.name):
            raise MatcherError(
                f"matcher {self}: {self.name!r} is not a label name "
                "(any text without control characters; quote names other than letters, "
                'digits, _ . : - such as "app.kubernetes.io/name")'
            )
        if self.op not in OPS:
            raise MatcherError(f"matcher {self}: unknown operator {self.op!r}; use = != =~ !~")
        if not isinstance(self.value, str):
            raise MatcherError(f"matcher {self.name}{self.op}: the value must be a string")
        if self.op in (REGEX, NOT_REGEX):
            try:
                compile_regex(self.value)
            except MatcherError as exc:
                raise MatcherError(f"matcher {self}: {exc}") from None

    def __str__(self) -> str:
        name = self.name if NAME_RE.fullmatch(str(self.name)) else quote(str(self.name))
        return f"{name}{self.op}{quote(str(self.value))}"

    def matches(self, labels: Mapping[str, Any]) -> bool:
        value = labels.get(self.name)
        value = "" if value is None else str(value)
        if self.op == EQUAL:
            return value == self.value
        if self.op == NOT_EQUAL:
            return value != self.value
        found = compile_regex(self.value).fullmatch(value) is not None
        return found if self.op == REGEX else not found

    def matches_empty(self) -> bool:
        """Does this matcher match an alert that lacks the label altogether?"""
        return self.matches({})

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, data: Any) -> Matcher:
        if not isinstance(data, Mapping) or set(data) - {"name", "op", "value"}:
            raise MatcherError(f"matcher {data!r}: expected an object with name, op and value")
        if "name" not in data or "value" not in data:
            raise MatcherError(f"matcher {dict(data)!r}: name and value are required")
        return cls(data["name"], data.get("op", EQUAL), data["value"])


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _quoted(text: str, pos: int, name: str) -> tuple[str, int]:
    """Read a double-quoted value starting at ``text[pos] == '"'``; returns (value, end)."""
    out = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and text[pos + 1 : pos + 2] in _ESCAPES:
            out.append(_ESCAPES[text[pos + 1]])
            pos += 2
            continue
        # Other backslashes stay as written: regexes need theirs (\d, \.).
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    raise MatcherError(f'matcher {name}: the quoted value is not closed (missing ")')


def parse_matchers(text: str) -> list[Matcher]:
    """Parse ``{a="1", b=~"x|y"}`` or ``a=1,b!=2`` into matchers; MatcherError says what is off."""
    if not isinstance(text, str):
        raise MatcherError('matchers must be text such as alertname="X", env=~"prod.*"')
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise MatcherError(f"matchers {text!r}: opening {{ without a closing }}")
        body = body[1:-1]
    elif body.endswith("}"):
        raise MatcherError(f"matchers {text!r}: closing }} without an opening {{")
    matchers: list[Matcher] = []
    pos = _skip_space(body, 0)
    while pos < len(body):
        start = pos
        if body[pos] == '"':
            name, pos = _quoted(body, pos, "label name")
        else:
            name_match = NAME_RE.match(body, pos)
            if not name_match:
                rest = body[pos:].split(",")[0].strip()
                raise MatcherError(f"matcher {rest!r}: expected a label name")
            name, pos = name_match.group(), name_match.end()
        pos = _skip_space(body, pos)
        op = next((o for o in _OPS_BY_LENGTH if body.startswith(o, pos)), None)
        if op is None:
            rest = body[start:].split(",")[0].strip()
            raise MatcherError(f"matcher {rest!r}: expected = != =~ or !~ after {name!r}")
        pos = _skip_space(body, pos + len(op))
        if pos < len(body) and body[pos] == '"':
            value, pos = _quoted(body, pos, f"{name}{op}")
        else:
            end = body.find(",", pos)
            end = len(body) if end == -1 else end
            value = body[pos:end].strip()
            if '"' in value:
                raise MatcherError(f"matcher {name}{op}{value}: stray quote in an unquoted value")
            pos = end
        matchers.append(Matcher(name, op, value))
        pos = _skip_space(body, pos)
        if pos < len(body):
            if body[pos] != ",":
                raise MatcherError(
                    f"matcher {matchers[-1]}: expected a comma before {body[pos:].strip()!r}"
                )
            pos = _skip_space(body, pos + 1)  # a trailing comma is fine, as in Alertmanager
    return matchers


def parse_matcher(text: str) -> Matcher:
    """Exactly one matcher, e.g. ``severity=~"critical|page"``."""
    matchers = parse_matchers(text)
    if len(matchers) != 1:
        raise MatcherError(f"{text!r}: expected exactly one matcher, found {len(matchers)}")
    return matchers[0]


def to_matchers(data: Any) -> list[Matcher]:
    """Matchers from any form a client may send: text, a list of texts, or a list of dicts."""
    if isinstance(data, str):
        return parse_matchers(data)
    if isinstance(data, Matcher):
        return [data]
    if not isinstance(data, list | tuple):
        raise MatcherError("matchers must be text or a list")
    out: list[Matcher] = []
    for item in data:
        if isinstance(item, Matcher):
            out.append(item)
        elif isinstance(item, str):
            out.extend(parse_matchers(item))
        else:
            out.append(Matcher.from_dict(item))
    return out


def from_stored(data: Iterable[Mapping[str, str]]) -> list[Matcher]:
    """Stored dicts back into matchers (validated when they were saved)."""
    return [Matcher(d["name"], d.get("op", EQUAL), d["value"]) for d in data]


def to_stored(matchers: Iterable[Matcher]) -> list[dict[str, str]]:
    return [m.as_dict() for m in matchers]


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, Any]) -> bool:
    return all(m.matches(labels) for m in matchers)


def format_matchers(matchers: Iterable[Matcher]) -> str:
    """``{alertname="X", env=~"prod.*"}``: parse_matchers reads it back unchanged."""
    return "{" + ", ".join(str(m) for m in matchers) + "}"
