"""Values as the language sees them: durations, numbers hidden in strings, and how a resolved
value is written in an explanation (``(503)``, ``(812 ms)``, ``("DOWN")``, ``(13d 4h)``).

Comparison rules live here too, in one place, so ``==`` in ``any()``, ``in (…)`` and
``contains`` on a list all agree: numeric when both sides are numbers or numeric strings (a
status of "200" equals 200), booleans against booleans or "true"/"false", otherwise exact
string comparison.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

UNITS_MS = {"ms": 1.0, "s": 1_000.0, "m": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}
DURATION_RE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
# What a numeric string may look like: no "nan", "inf", "1_000" or hex that float() accepts.
_NUMERIC_STRING_RE = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")
SHOWN_LIMIT = 80


def parse_duration(text: str) -> float:
    """``300ms``, ``2s``, ``5m``, ``1h``, ``14d``, ``1h30m`` → milliseconds.

    Raises ``ValueError`` for anything else (a bare number is not a duration here: the
    caller decides that a bare number already means milliseconds).
    """
    if not DURATION_RE.fullmatch(text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * UNITS_MS[unit] for n, unit in _DURATION_PART_RE.findall(text))


def as_number(value: Any) -> float | int | None:
    """The number a value stands for, or None: numbers and numeric strings, never booleans."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, str) and len(value) < 100 and _NUMERIC_STRING_RE.fullmatch(value):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return None


def as_text(value: Any) -> str:
    """The string form used for string comparison, ``contains`` and regexes."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def equal(left: Any, right: Any) -> bool:
    """Whether two values are equal under the language's rules (see the module docstring)."""
    if isinstance(left, bool) or isinstance(right, bool):
        a, b = as_bool(left), as_bool(right)
        if a is not None and b is not None:
            return a == b
    if left is None or right is None:
        return (left is None or left == "null") and (right is None or right == "null")
    a_num, b_num = as_number(left), as_number(right)
    if a_num is not None and b_num is not None:
        return a_num == b_num
    if isinstance(left, list | dict) and isinstance(right, list | dict):
        return left == right
    return as_text(left) == as_text(right)


def order(left: Any, right: Any) -> int:
    """-1, 0 or 1: numerically when both are numbers, else by their string forms."""
    a_num, b_num = as_number(left), as_number(right)
    if a_num is not None and b_num is not None:
        a, b = a_num, b_num
    else:
        a, b = as_text(left), as_text(right)  # type: ignore[assignment]
    return (a > b) - (a < b)


def format_number(number: float | int) -> str:
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return str(number)


def format_ms(ms: float) -> str:
    """A response time: ``812 ms``, ``4.2 ms`` (milliseconds are what users compare it with)."""
    if not math.isfinite(ms):
        return f"{ms} ms"
    if abs(ms) >= 10 or ms == int(ms):
        return f"{round(ms):d} ms"
    return f"{ms:.1f} ms"


def format_duration(ms: float) -> str:
    """A long duration for people: ``812 ms``, ``4.2 s``, ``5m 3s``, ``3h 12m``, ``13d 4h``.

    Negative durations (a certificate that expired) read ``expired 2d 3h ago``.
    """
    if not math.isfinite(ms):
        return format_ms(ms)
    if ms < 0:
        return f"expired {format_duration(-ms)} ago"
    if ms < 1_000:
        return format_ms(ms)
    seconds = ms / 1_000
    if seconds < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def format_value(value: Any, placeholder: str = "") -> str:
    """A resolved value as an explanation shows it, in the placeholder's own unit.

    Strings are quoted (so ``"DOWN"`` and ``"200"`` read as text) and cut at SHOWN_LIMIT
    characters with their full length, since a body can be megabytes.
    """
    if placeholder == "RESPONSE_TIME" and as_number(value) is not None:
        return format_ms(float(as_number(value)))  # type: ignore[arg-type]
    if placeholder == "CERT_EXPIRY" and as_number(value) is not None:
        return format_duration(float(as_number(value)))  # type: ignore[arg-type]
    if isinstance(value, bytes | bytearray):
        value = as_text(value)
    if isinstance(value, str):
        return _cut(json.dumps(value, ensure_ascii=False), len(value), "chars")
    if isinstance(value, bool) or value is None:
        return as_text(value)
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, list | dict):
        text = as_text(value)
        count = f"{len(value)} {'items' if isinstance(value, list) else 'keys'}"
        return text if len(text) <= SHOWN_LIMIT else f"{text[:SHOWN_LIMIT]}… ({count})"
    return _cut(repr(value), len(repr(value)), "chars")


def _cut(text: str, length: int, unit: str) -> str:
    if len(text) <= SHOWN_LIMIT:
        return text
    return f"{text[:SHOWN_LIMIT]}… ({length:,} {unit})"
