"""Tokens of a condition, each with the exact span it came from, so every later error (and
every explanation) can point back at the source.

Bare words follow Gatus: ``[BODY].status == UP`` and ``[IP] == 127.0.0.1`` need no quotes. A
bare word runs until whitespace, ``(``, ``)``, ``,`` or an operator (``==``, ``!=``, ``=~``,
``!~``, ``<``, ``>``, ``&&``, ``||``); quote values that contain those.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from probes.conditions.errors import ConditionError
from probes.conditions.paths import Step, parse_steps
from probes.conditions.values import DURATION_RE, NUMBER_RE, parse_duration

# name → whether it takes a JSON path after it
PLACEHOLDERS: dict[str, bool] = {
    "STATUS": False,
    "RESPONSE_TIME": False,
    "BODY": True,
    "HEADERS": True,
    "IP": False,
    "CONNECTED": False,
    "CERT_EXPIRY": False,
    "DNS_RCODE": False,
    "VALUE": True,
    "CONTEXT": True,
}
# Gatus spellings, accepted so its conditions paste in unchanged
ALIASES = {"CERTIFICATE_EXPIRATION": "CERT_EXPIRY"}
FUNCTIONS = ("len", "has", "any", "pat")
KEYWORDS = {"and", "or", "not", "contains", "in", "true", "false", "null"}
OPERATORS = ("==", "!=", "<=", ">=", "=~", "!~", "&&", "||", "<", ">")
_WORD_STOP_RE = re.compile(r"\s|[(),]|==|!=|=~|!~|<|>|&&|\|\|")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BOUND = r"-?\d+(?:\.\d+)?(?:(?:ms|s|m|h|d)(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))*)?"
_RANGE_RE = re.compile(rf"({_BOUND})\s*\.\.\s*({_BOUND})(?=$|[\s()])")
_IDENT_RE = re.compile(r"[A-Za-z_]\w*")


@dataclass
class Token:
    kind: str  # PLACEHOLDER NUMBER STRING WORD RANGE OP KEYWORD FUNC ( ) , RAW END
    text: str  # the exact source slice
    pos: int
    value: Any = None
    steps: tuple[Step, ...] = ()
    # for STRING and RAW: source index of each character of ``value`` (regex error positions)
    offsets: list[int] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.pos + len(self.text)


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text`` followed by an END token; raises ``ConditionError``."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            tokens.append(Token("END", "", n))
            return tokens
        char = text[i]
        if char == "[":
            token = _placeholder(text, i)
        elif char in "\"'":
            token = _string(text, i)
        elif char in "(),":
            token = Token(char, char, i)
        elif op := next((op for op in OPERATORS if text.startswith(op, i)), None):
            token = Token("OP", op, i, op)
        elif match := _RANGE_RE.match(text, i):
            token = _range(text, match)
        else:
            token = _word(text, i)
        tokens.append(token)
        i = token.end
        if token.kind == "FUNC" and token.value == "pat":
            tokens.extend(_pattern_argument(text, i))
            i = tokens[-1].end


def _placeholder(text: str, start: int) -> Token:
    close = text.find("]", start)
    name_match = _NAME_RE.fullmatch(text, start + 1, close) if close > 0 else None
    if not name_match:
        match = _NAME_RE.match(text, start + 1)
        if match and (match.end() >= len(text) or text[match.end()] != "]"):
            raise ConditionError("expected ']' to close the placeholder", match.end(), text)
        raise ConditionError("expected a placeholder name such as [STATUS]", start + 1, text)
    raw = name_match.group()
    name = ALIASES.get(raw, raw)
    if name not in PLACEHOLDERS:
        raise ConditionError(_unknown_placeholder(raw), start, text)
    steps, end = parse_steps(text, close + 1)
    if steps and not PLACEHOLDERS[name]:
        raise ConditionError(f"[{raw}] takes no path", close + 1, text)
    return Token("PLACEHOLDER", text[start:end], start, name, steps)


def _unknown_placeholder(raw: str) -> str:
    names = list(PLACEHOLDERS) + list(ALIASES)
    if raw.upper() in names:
        return f"unknown placeholder [{raw}] (placeholders are upper-case: [{raw.upper()}])"
    close = difflib.get_close_matches(raw.upper(), names, n=1, cutoff=0.6)
    hint = (
        f"did you mean [{close[0]}]?"
        if close
        else "known: " + ", ".join(f"[{name}]" for name in PLACEHOLDERS)
    )
    return f"unknown placeholder [{raw}]; {hint}"


def _string(text: str, start: int) -> Token:
    """A quoted string; a backslash escapes only the quote and itself, so regexes stay readable
    (``"\\d+"`` is the regex ``\\d+``)."""
    quote = text[start]
    chars: list[str] = []
    offsets: list[int] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            chars.append(text[i + 1])
            offsets.append(i + 1)
            i += 2
            continue
        if char == quote:
            return Token("STRING", text[start : i + 1], start, "".join(chars), offsets=offsets)
        chars.append(char)
        offsets.append(i)
        i += 1
    raise ConditionError("unterminated string", start, text)


def _range(text: str, match: re.Match) -> Token:
    bounds = []
    for group in (1, 2):
        raw = match.group(group)
        try:
            bounds.append(_number(raw))
        except ValueError:
            raise ConditionError(
                f"not a number or duration: {raw}", match.start(group), text
            ) from None
    if bounds[0] > bounds[1]:
        raise ConditionError("the range goes backwards", match.start(), text)
    return Token("RANGE", match.group(), match.start(), tuple(bounds))


def _number(raw: str) -> float | int:
    body = raw.lstrip("-")
    sign = -1 if raw.startswith("-") else 1
    if NUMBER_RE.fullmatch(raw):
        number = float(raw)
        return (
            int(number)
            if number.is_integer() and "." not in raw and "e" not in raw.lower()
            else number
        )
    return sign * parse_duration(body)


def _word(text: str, start: int) -> Token:
    stop = _WORD_STOP_RE.search(text, start)
    end = stop.start() if stop else len(text)
    if end == start:  # cannot happen: every stop character is a token of its own
        raise ConditionError("unexpected character", start, text)
    raw = text[start:end]
    if end < len(text) and text[end] == "(" and _IDENT_RE.fullmatch(raw):
        if raw not in FUNCTIONS:
            known = ", ".join(f"{name}()" for name in FUNCTIONS)
            raise ConditionError(f"unknown function {raw}(); known: {known}", start, text)
        return Token("FUNC", raw, start, raw)
    if raw in KEYWORDS:
        value = {"true": True, "false": False, "null": None}.get(raw, raw)
        kind = "LITERAL" if raw in ("true", "false", "null") else "KEYWORD"
        return Token(kind, raw, start, value)
    if NUMBER_RE.fullmatch(raw) or DURATION_RE.fullmatch(raw.lstrip("-")):
        return Token("NUMBER", raw, start, _number(raw))
    return Token("WORD", raw, start, raw)


def _pattern_argument(text: str, start: int) -> list[Token]:
    """``pat(`` takes its argument raw, as Gatus does: ``pat(*<h1>Example Domain</h1>*)``."""
    tokens = [Token("(", "(", start)]
    i = start + 1
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] in "\"'":
        token = _string(text, i)
        tokens.append(Token("RAW", token.text, i, token.value, offsets=token.offsets))
        return tokens  # the closing ")" is an ordinary token after the string
    depth = 0
    j = i
    while j < len(text):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            if depth == 0:
                break
            depth -= 1
        j += 1
    if j >= len(text):
        raise ConditionError("expected ')' to close pat(", start, text)
    raw = text[i:j].rstrip()
    tokens.append(Token("RAW", raw, i, raw, offsets=list(range(i, i + len(raw)))))
    return tokens
