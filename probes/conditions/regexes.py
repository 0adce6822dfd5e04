"""Regular expressions that cannot hang the prober.

Python's ``re`` has no timeout and holds the GIL while it backtracks, so one user's
``(a+)+$`` against a large body would stall every check in the worker. We refuse at save time
the shapes that backtrack exponentially (a repeated group that itself repeats or has
alternatives), cap the pattern's length, and the evaluator searches at most
``REGEX_SUBJECT_LIMIT`` characters, which bounds the quadratic shapes we still accept.
Matching is a search (``=~ "ok"`` matches anywhere); anchor with ``^…$`` for a whole value.
"""

from __future__ import annotations

import re
from typing import Any

from probes.conditions.errors import ConditionError
from probes.conditions.lexer import Token

try:  # CPython's own regex parser, to inspect a pattern's structure
    import re._constants as _sre_constants
    import re._parser as _sre_parser
except ImportError:  # pragma: no cover - older or other Pythons: structure not checked
    _sre_parser = None  # type: ignore[assignment]

PATTERN_LIMIT = 512
_WIDE = 100  # a repeat this wide counts as unbounded
_LEADING_ANY = re.compile(r"\.\*\??(?![*+?{])")


def compile_regex(token: Token, text: str) -> re.Pattern:
    """The compiled regex of a STRING, WORD or NUMBER token; errors point into ``text``."""
    if token.kind == "STRING":
        pattern, offsets = token.value, token.offsets
    else:
        pattern, offsets = token.text, list(range(token.pos, token.end))

    def at(index: int | None) -> int:
        if index is None or not offsets:
            return token.pos
        return offsets[min(index, len(offsets) - 1)]

    if len(pattern) > PATTERN_LIMIT:
        raise ConditionError(
            f"the regular expression is longer than {PATTERN_LIMIT} characters", token.pos, text
        )
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        message = f"invalid regular expression: {error.msg}"
        raise ConditionError(message, at(error.pos), text) from None
    if _sre_parser is not None and _explosive(_sre_parser.parse(pattern).data):
        raise ConditionError(
            "this regular expression repeats a group that itself repeats or has alternatives "
            "(like (a+)+ or (a|ab)*), which can take exponential time; simplify it",
            token.pos,
            text,
        )
    # A search already tries every start, so a leading .* only adds quadratic backtracking.
    leading = _LEADING_ANY.match(pattern)
    if leading:
        compiled = re.compile(pattern[leading.end() :])
    return compiled


def compile_pattern(token: Token, text: str) -> re.Pattern:
    """Gatus's ``pat(…)``: ``*`` matches any run of characters, the rest literally, whole value."""
    pattern = token.value
    if len(pattern) > PATTERN_LIMIT:
        raise ConditionError(
            f"the pattern is longer than {PATTERN_LIMIT} characters", token.pos, text
        )
    if not pattern:
        raise ConditionError("pat() needs a pattern such as pat(2*)", token.pos, text)
    # Runs of * collapse: "a**b" would otherwise be a quadratic ".*.*".
    parts = re.split(r"\*+", pattern)
    return re.compile(".*".join(re.escape(part) for part in parts), re.DOTALL)


def _explosive(items: Any, inside_repeat: bool = False) -> bool:
    """Whether a parsed pattern has a repeat nested in a wide repeat, or alternatives in one."""
    for op, argument in items:
        if op in (_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT):
            _low, high, body = argument
            wide = high == _sre_constants.MAXREPEAT or high >= _WIDE
            if inside_repeat and high > 1:
                return True
            if _explosive(body.data if hasattr(body, "data") else body, inside_repeat or wide):
                return True
        elif op == _sre_constants.BRANCH:
            if inside_repeat:
                return True
            if any(_explosive(branch.data, inside_repeat) for branch in argument[1]):
                return True
        elif op == _sre_constants.SUBPATTERN:
            body = argument[-1]
            if _explosive(body.data, inside_repeat):
                return True
        elif op in (_sre_constants.ASSERT, _sre_constants.ASSERT_NOT) and _explosive(
            argument[1].data, inside_repeat
        ):
            return True
    return False
