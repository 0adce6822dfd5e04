"""Tocsin's probe condition language: one language for every check kind, a superset of Gatus's.

    [STATUS] in 200..299
    [RESPONSE_TIME] < 300ms and [BODY].status == UP
    len([BODY].data.items) > 0 or has([BODY].fallback)
    [HEADERS].Content-Type contains json
    [CERT_EXPIRY] > 14d
    [STATUS] == any(200, 201)

``parse(text)`` validates when a check is saved (``ConditionError`` points at the character);
``Condition.evaluate(values)`` returns a ``Verdict`` whose explanation shows the resolved
values (``[STATUS] (503) in 200..299``). ``json_path`` walks the same paths for journeys.
"""

from probes.conditions.condition import Condition, Verdict, evaluate_all, parse
from probes.conditions.errors import ConditionError, PathNotFound
from probes.conditions.lexer import PLACEHOLDERS
from probes.conditions.paths import compile_path, json_path
from probes.conditions.values import format_duration, format_ms, format_value, parse_duration

__all__ = [
    "PLACEHOLDERS",
    "Condition",
    "ConditionError",
    "PathNotFound",
    "Verdict",
    "compile_path",
    "evaluate_all",
    "format_duration",
    "format_ms",
    "format_value",
    "json_path",
    "parse",
    "parse_duration",
]
