"""The public face of a parsed condition: what check kinds, forms and the scheduler hold."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from probes.conditions.nodes import Node, Resolver
from probes.conditions.parser import parse_tree

# Distinct condition texts whose parse is kept (a few per check; 5,000 checks share most).
PARSED_KEPT = 4096


@dataclass(frozen=True)
class Verdict:
    """One condition's result on one run; ``explanation`` shows the resolved values."""

    passed: bool
    explanation: str

    def __bool__(self) -> bool:
        return self.passed


@dataclass(frozen=True)
class Condition:
    """A parsed condition. Parse once when the check is saved (errors point at a character)
    and keep the object; evaluating it is cheap and never raises for the target's data."""

    text: str
    placeholders: frozenset[str]
    tree: Node = field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, Any]) -> Verdict:
        return self._evaluate(Resolver(values))

    def _evaluate(self, resolver: Resolver) -> Verdict:
        outcome = self.tree.check(resolver)
        return Verdict(outcome.passed, outcome.explanation)

    def __str__(self) -> str:
        return self.text


@lru_cache(maxsize=PARSED_KEPT)
def parse(text: str) -> Condition:
    """Parse and validate a condition; raises ``ConditionError`` (with ``.position``).

    Conditions are immutable, so the parse of a text is kept and shared: every run reads its
    check afresh and would otherwise parse the same conditions again (a few per cent of a busy
    worker's time)."""
    tree = parse_tree(text)
    return Condition(text, frozenset(tree.placeholders), tree)


def evaluate_all(conditions: Iterable[Condition], values: Mapping[str, Any]) -> list[Verdict]:
    """Every condition of a check on one run, decoding a JSON body once for all of them."""
    resolver = Resolver(values)
    return [condition._evaluate(resolver) for condition in conditions]
