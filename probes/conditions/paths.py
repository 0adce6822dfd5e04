"""JSON paths: ``data.items[0].id``, shared by conditions (``[BODY].data.items[0].id``) and
journeys (extracting a value into a variable), so the two can never disagree on what a path means.

Syntax: keys separated by dots (letters, digits, ``_``, ``-``; a header name such as
``Content-Type`` is a key), ``[n]`` for a list index (negative counts from the end),
``["any key"]`` for a key with other characters. A leading ``$`` or ``.`` is allowed in
``json_path``. A string met on the way with more steps left is parsed as JSON, so a body
(or a journey variable holding JSON) can be walked into without decoding it first.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from probes.conditions.errors import ConditionError, PathNotFound

Step = str | int
KEY_RE = re.compile(r"[\w\-]+")
INDEX_RE = re.compile(r"-?\d+")


def parse_steps(text: str, start: int) -> tuple[tuple[Step, ...], int]:
    """Read path steps from ``text[start:]`` until something that is not a step.

    Returns the steps and the index where they end. Raises ``ConditionError`` (positions in
    ``text``) for a step that starts but is malformed.
    """
    steps: list[Step] = []
    i = start
    n = len(text)
    while i < n:
        char = text[i]
        if char == ".":
            match = KEY_RE.match(text, i + 1)
            if not match:
                raise ConditionError("expected a key after '.'", i + 1, text)
            steps.append(match.group())
            i = match.end()
        elif char == "[":
            i = _bracket_step(text, i, steps)
        else:
            break
    return tuple(steps), i


def _bracket_step(text: str, i: int, steps: list[Step]) -> int:
    j = i + 1
    if j < len(text) and text[j] in "\"'":
        quote = text[j]
        close = text.find(quote, j + 1)
        if close < 0:
            raise ConditionError("unterminated key", j, text)
        steps.append(text[j + 1 : close])
        end = close + 1
    else:
        match = INDEX_RE.match(text, j)
        if not match:
            raise ConditionError('expected an index such as [0] or a quoted key ["name"]', j, text)
        steps.append(int(match.group()))
        end = match.end()
    if end >= len(text) or text[end] != "]":
        raise ConditionError("expected ']'", end, text)
    return end + 1


def render_steps(steps: tuple[Step, ...] | list[Step]) -> str:
    """``("data", "items", 0)`` → ``data.items[0]``: how messages name a place in a document."""
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif KEY_RE.fullmatch(step):
            out += f".{step}" if out else step
        else:
            out += f"[{json.dumps(step)}]"
    return out


@lru_cache(maxsize=512)
def compile_path(path: str) -> tuple[Step, ...]:
    """Parse a stand-alone path (as journeys store it) once; malformed → ``ConditionError``.

    The first key needs no dot (``data.id``); ``$`` or ``.`` in front are accepted too.
    """
    i = len(path) - len(path.lstrip())
    stop = len(path.rstrip())
    if path.startswith("$", i):
        i += 1
    steps: tuple[Step, ...] = ()
    if i < stop and path[i] not in ".[":
        match = KEY_RE.match(path, i)
        if not match:
            raise ConditionError("expected a key", i, path)
        steps, i = (match.group(),), match.end()
    more, end = parse_steps(path, i)
    if end != stop:
        raise ConditionError("unexpected character in path", end, path)
    return steps + more


def json_path(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document`` (a parsed JSON value, or a JSON string/bytes).

    Raises ``PathNotFound`` when the document has nothing there (or is not JSON), and
    ``ConditionError`` when the path itself is malformed.
    """
    return walk(document, compile_path(path))


def walk(document: Any, steps: tuple[Step, ...], *, case_insensitive: bool = False) -> Any:
    """Follow ``steps`` into ``document``; ``case_insensitive`` is for header names."""
    current = document
    for index, step in enumerate(steps):
        here = steps[: index + 1]
        if isinstance(current, str | bytes | bytearray):
            current = _decode(current, steps[:index])
        if isinstance(current, dict):
            current = _key(current, step, here, case_insensitive)
        elif isinstance(current, list):
            current = _item(current, step, here)
        else:
            kind = describe_type(current)
            raise PathNotFound(
                f"no such path: {render_steps(here)} ({_name(steps[:index])} is {kind})",
                render_steps(here),
            )
    return current


def _decode(text: str | bytes | bytearray, walked: tuple[Step, ...]) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        where = "the body" if not walked else render_steps(walked)
        raise PathNotFound(f"{where} is not JSON", render_steps(walked)) from None


def _key(mapping: dict, step: Step, here: tuple[Step, ...], case_insensitive: bool) -> Any:
    key = str(step)
    if key in mapping:
        return mapping[key]
    if case_insensitive:
        lowered = key.lower()
        for name, value in mapping.items():
            if isinstance(name, str) and name.lower() == lowered:
                return value
    raise PathNotFound(f"no such path: {render_steps(here)}", render_steps(here))


def _item(items: list, step: Step, here: tuple[Step, ...]) -> Any:
    if isinstance(step, str) and INDEX_RE.fullmatch(step):
        step = int(step)  # data.0 means data[0]
    if isinstance(step, str):
        raise PathNotFound(
            f"no such path: {render_steps(here)} ({_name(here[:-1])} is a list)",
            render_steps(here),
        )
    if -len(items) <= step < len(items):
        return items[step]
    count = f"{len(items)} item" + ("" if len(items) == 1 else "s")
    raise PathNotFound(
        f"no such path: {render_steps(here)} (the list has {count})", render_steps(here)
    )


def _name(steps: tuple[Step, ...]) -> str:
    return render_steps(steps) or "the value"


def describe_type(value: Any) -> str:
    """'a number', 'a string', … for messages about a value of the wrong kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
