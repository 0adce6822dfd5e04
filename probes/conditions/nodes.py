"""The parsed form of a condition and how it is evaluated against one run's values.

Evaluation never raises for what the target sent: a missing placeholder, a body that is not
JSON, a path that leads nowhere or a value of the wrong kind fails the test it is in, and the
explanation says why in place of the value (``[BODY].data.id (no such path: data) == 1``). A
test that failed for such a reason stays failed under ``not``: not knowing is not a pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from probes.conditions.errors import PathNotFound
from probes.conditions.paths import Step, describe_type, walk
from probes.conditions.values import as_number, as_text, equal, format_value, order

# A regex sees at most this much of a value: Python's re has no timeout, and a search over a
# large body can take quadratic time even after the parser refused the exponential shapes.
REGEX_SUBJECT_LIMIT = 16_384


class Resolver:
    """One run's values, with each JSON body decoded at most once however many tests use it."""

    def __init__(self, values: Mapping[str, Any]):
        self.values = values
        self._decoded: dict[str, Any] = {}

    def lookup(self, name: str, steps: tuple[Step, ...]) -> Any:
        """The value, or ``PathNotFound`` (also for a placeholder this run did not fill)."""
        if name not in self.values or (self.values[name] is None and name != "VALUE"):
            raise PathNotFound("no value")
        value = self.values[name]
        if not steps:
            return value
        if isinstance(value, str | bytes | bytearray):
            if name not in self._decoded:
                try:
                    self._decoded[name] = ("ok", json.loads(value))
                except (ValueError, RecursionError):
                    what = "the body" if name == "BODY" else f"[{name}]"
                    self._decoded[name] = ("error", f"{what} is not JSON")
            status, value = self._decoded[name]
            if status == "error":
                raise PathNotFound(value)
        return walk(value, steps, case_insensitive=name == "HEADERS")


@dataclass
class Resolved:
    value: Any = None
    problem: str | None = None  # why there is no value: shown instead of it, and the test fails
    shown: str | None = None  # how the value is written after the operand; None for literals

    @property
    def annotation(self) -> str:
        note = self.problem if self.problem is not None else self.shown
        return "" if note is None else f" ({note})"


# ---------------------------------------------------------------- operands


@dataclass
class Operand:
    text: str  # the exact source, which is what explanations quote
    pos: int = field(default=0, kw_only=True)  # where it starts in the condition

    def resolve(self, resolver: Resolver) -> Resolved:
        raise NotImplementedError

    @property
    def placeholders(self) -> set[str]:
        return set()


@dataclass
class Literal(Operand):
    value: Any = None
    kind: str = "word"  # number, string, word, literal (true/false/null)

    def resolve(self, resolver: Resolver) -> Resolved:
        return Resolved(self.value)


@dataclass
class PlaceholderRef(Operand):
    name: str = ""
    steps: tuple[Step, ...] = ()

    def resolve(self, resolver: Resolver) -> Resolved:
        try:
            value = resolver.lookup(self.name, self.steps)
        except PathNotFound as missing:
            return Resolved(problem=missing.message)
        return Resolved(value, shown=format_value(value, "" if self.steps else self.name))

    @property
    def placeholders(self) -> set[str]:
        return {self.name}


@dataclass
class LenCall(Operand):
    argument: PlaceholderRef = field(default_factory=PlaceholderRef)

    def resolve(self, resolver: Resolver) -> Resolved:
        inner = self.argument.resolve(resolver)
        if inner.problem is not None:
            return inner
        if isinstance(inner.value, str | list | dict):
            return Resolved(len(inner.value), shown=str(len(inner.value)))
        return Resolved(problem=f"len() of {describe_type(inner.value)}: {inner.shown}")

    @property
    def placeholders(self) -> set[str]:
        return self.argument.placeholders


@dataclass
class HasCall(Operand):
    argument: PlaceholderRef = field(default_factory=PlaceholderRef)

    def resolve(self, resolver: Resolver) -> Resolved:
        found = self.argument.resolve(resolver).problem is None
        return Resolved(found, shown="true" if found else "false")

    @property
    def placeholders(self) -> set[str]:
        return self.argument.placeholders


@dataclass
class AnyOf(Operand):
    """``any(200, 429)`` on one side of ``==``/``!=``: equal to one of these."""

    options: list[Operand] = field(default_factory=list)
    subject_end: int = field(default=0, kw_only=True)  # for the bare form any(x, a, b)

    def resolve(self, resolver: Resolver) -> Resolved:
        resolved = [option.resolve(resolver) for option in self.options]
        return Resolved([r.value for r in resolved if r.problem is None])

    @property
    def placeholders(self) -> set[str]:
        return set().union(*(option.placeholders for option in self.options))


@dataclass
class Pattern(Operand):
    """``pat(john*)``: Gatus's wildcard pattern, ``*`` for any run of characters, whole value."""

    regex: re.Pattern = field(default_factory=lambda: re.compile(""))

    def resolve(self, resolver: Resolver) -> Resolved:
        return Resolved(self.regex)


@dataclass
class RangeOf(Operand):
    low: float = 0
    high: float = 0

    def resolve(self, resolver: Resolver) -> Resolved:
        return Resolved((self.low, self.high))


@dataclass
class ListOf(Operand):
    items: list[Operand] = field(default_factory=list)

    def resolve(self, resolver: Resolver) -> Resolved:
        return Resolved([item.resolve(resolver) for item in self.items])

    @property
    def placeholders(self) -> set[str]:
        return set().union(*(item.placeholders for item in self.items))


@dataclass
class Regex(Operand):
    regex: re.Pattern = field(default_factory=lambda: re.compile(""))

    def resolve(self, resolver: Resolver) -> Resolved:
        return Resolved(self.regex)


# ---------------------------------------------------------------- tests


@dataclass
class Outcome:
    passed: bool
    explanation: str
    unknown: bool = False  # failed for lack of a value, not because the value was wrong
    compound: bool = False  # several parts joined by and/or: parenthesise when nested


class Node:
    def check(self, resolver: Resolver) -> Outcome:
        raise NotImplementedError

    @property
    def placeholders(self) -> set[str]:
        raise NotImplementedError


@dataclass
class Comparison(Node):
    left: Operand
    op: str  # == != < <= > >= =~ !~ contains in
    right: Operand
    negated: bool = False  # "not in", "not contains"

    def check(self, resolver: Resolver) -> Outcome:
        left, right = self.left.resolve(resolver), self.right.resolve(resolver)
        op = f"not {self.op}" if self.negated else self.op
        explanation = f"{self.left.text}{left.annotation} {op} {self.right.text}"
        if not isinstance(self.right, AnyOf | ListOf):
            explanation += right.annotation
        problem = left.problem or right.problem
        if problem is None:
            passed, problem, note = self._compare(left.value, right.value)
            if note:
                explanation += f" ({note})"
        if problem is not None:
            if left.problem is None and right.problem is None:  # a problem found comparing
                explanation = f"{self.left.text} ({problem}) {op} {self.right.text}"
            return Outcome(False, explanation, unknown=True)
        return Outcome(passed != self.negated, explanation)

    def _compare(self, left: Any, right: Any) -> tuple[bool, str | None, str]:
        """(passed, problem, note) for the operator between two resolved values."""
        op = self.op
        if op in ("==", "!="):
            if isinstance(self.right, Pattern):
                same = right.fullmatch(as_text(left)) is not None
            elif isinstance(self.right, AnyOf):
                same = any(equal(left, option) for option in right)
            else:
                same = equal(left, right)
            return same == (op == "=="), None, ""
        if op in ("<", "<=", ">", ">="):
            for value in (left, right):
                if isinstance(value, list | dict | bool) or value is None:
                    return False, f"{describe_type(value)}, not a number or text", ""
            sign = order(left, right)
            passed = {"<": sign < 0, "<=": sign <= 0, ">": sign > 0, ">=": sign >= 0}[op]
            return passed, None, ""
        if op in ("=~", "!~"):
            subject = as_text(left)
            note = ""
            if len(subject) > REGEX_SUBJECT_LIMIT:
                subject = subject[:REGEX_SUBJECT_LIMIT]
                note = f"searched the first {REGEX_SUBJECT_LIMIT:,} characters"
            found = right.search(subject) is not None
            return found == (op == "=~"), None, note if not found else ""
        if op == "contains":
            return _contains(left, right)
        # in
        if isinstance(self.right, RangeOf):
            number = as_number(left)
            if number is None:
                return False, f"{format_value(left)}, not a number", ""
            return self.right.low <= number <= self.right.high, None, ""
        if isinstance(self.right, ListOf):
            options = [item.value for item in right if item.problem is None]
            return any(equal(left, option) for option in options), None, ""
        return _contains(right, left)

    @property
    def placeholders(self) -> set[str]:
        return self.left.placeholders | self.right.placeholders


def _contains(container: Any, item: Any) -> tuple[bool, str | None, str]:
    if isinstance(container, list):
        return any(equal(element, item) for element in container), None, ""
    if isinstance(container, dict):
        return as_text(item) in container, None, ""
    if container is None or isinstance(container, bool):
        return False, f"{describe_type(container)}, not a text or a list", ""
    return as_text(item) in as_text(container), None, ""


@dataclass
class Truth(Node):
    """A test with no operator: ``has([BODY].errors)``, ``[CONNECTED]``, ``true``."""

    operand: Operand

    def check(self, resolver: Resolver) -> Outcome:
        resolved = self.operand.resolve(resolver)
        explanation = f"{self.operand.text}{resolved.annotation}"
        if resolved.problem is not None:
            return Outcome(False, explanation, unknown=True)
        return Outcome(equal(resolved.value, True), explanation)

    @property
    def placeholders(self) -> set[str]:
        return self.operand.placeholders


@dataclass
class AnySubject(Node):
    """``any([STATUS], 200, 201)``: the first argument equals one of the others."""

    text: str
    start: int  # where ``text`` starts in the condition, to place the annotation
    subject: Operand
    subject_end: int
    options: list[Operand]

    def check(self, resolver: Resolver) -> Outcome:
        subject = self.subject.resolve(resolver)
        cut = self.subject_end - self.start
        explanation = f"{self.text[:cut]}{subject.annotation}{self.text[cut:]}"
        if subject.problem is not None:
            return Outcome(False, explanation, unknown=True)
        options = [option.resolve(resolver) for option in self.options]
        passed = any(equal(subject.value, o.value) for o in options if o.problem is None)
        return Outcome(passed, explanation)

    @property
    def placeholders(self) -> set[str]:
        return self.subject.placeholders.union(*(o.placeholders for o in self.options))


def _part(outcome: Outcome) -> str:
    return f"({outcome.explanation})" if outcome.compound else outcome.explanation


@dataclass
class All(Node):
    children: list[Node]

    def check(self, resolver: Resolver) -> Outcome:
        outcomes = [child.check(resolver) for child in self.children]
        failed = [outcome for outcome in outcomes if not outcome.passed]
        shown = failed or outcomes  # a failure names only what failed
        return Outcome(
            not failed,
            " and ".join(_part(outcome) for outcome in shown),
            unknown=any(outcome.unknown for outcome in failed),
            compound=len(shown) > 1,
        )

    @property
    def placeholders(self) -> set[str]:
        return set().union(*(child.placeholders for child in self.children))


@dataclass
class Either(Node):
    children: list[Node]

    def check(self, resolver: Resolver) -> Outcome:
        outcomes = [child.check(resolver) for child in self.children]
        passing = [outcome for outcome in outcomes if outcome.passed]
        if passing:  # a pass names the branch that passed
            return Outcome(True, passing[0].explanation, compound=passing[0].compound)
        return Outcome(
            False,
            " or ".join(_part(outcome) for outcome in outcomes),
            unknown=any(outcome.unknown for outcome in outcomes),
            compound=True,
        )

    @property
    def placeholders(self) -> set[str]:
        return set().union(*(child.placeholders for child in self.children))


@dataclass
class Negation(Node):
    child: Node

    def check(self, resolver: Resolver) -> Outcome:
        inner = self.child.check(resolver)
        if isinstance(self.child, Truth):
            explanation = f"not {inner.explanation}"
        else:  # "not [STATUS] (200) == 200" would read as if "not" applied to [STATUS]
            explanation = f"not ({inner.explanation})"
        if inner.unknown:
            return Outcome(False, explanation, unknown=True)
        return Outcome(not inner.passed, explanation)

    @property
    def placeholders(self) -> set[str]:
        return self.child.placeholders
