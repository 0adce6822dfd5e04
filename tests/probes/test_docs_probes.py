"""docs/probes.md stays true: every config example validates, every condition example parses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from probes import conditions, kinds

DOC = (Path(__file__).resolve().parents[2] / "docs" / "probes.md").read_text()
CONFIGS = re.findall(r"<!-- kind: (\w+) -->\s*```json\n(.*?)```", DOC, re.S)
CONDITIONS = [
    line.strip()
    for block in re.findall(r"<!-- conditions -->\s*```\n(.*?)```", DOC, re.S)
    for line in block.splitlines()
    if line.strip()
]


def test_every_kind_has_an_example():
    assert sorted(kind for kind, _ in CONFIGS) == sorted(kinds.KINDS)


@pytest.mark.parametrize(("kind", "text"), CONFIGS, ids=[k for k, _ in CONFIGS])
def test_config_example_validates(kind, text):
    kinds.get(kind).validate(json.loads(text))


@pytest.mark.parametrize("text", CONDITIONS)
def test_condition_example_parses(text):
    assert CONDITIONS
    conditions.parse(text)


def test_fixed_default_conditions_are_in_the_table():
    for module in kinds.MODULES:
        if hasattr(module, "default_conditions"):
            continue  # depends on the config (tls, consistency)
        for text in module.DEFAULT_CONDITIONS:
            assert f"`{text}`" in DOC, text
