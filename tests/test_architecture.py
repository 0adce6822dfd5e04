"""The house's one-way dependencies, checked by parsing every import (including those inside
functions): ``tocsin`` ← ``monitoring`` ← ``incidents``; ``probes`` and ``backups`` reach
``monitoring`` only through its public pipeline/services/models modules; nothing outside
``incidents`` imports it. Strings naming modules (URL includes, settings) are not imports and
are not counted: they are how the project package wires the apps together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("tocsin", "monitoring", "incidents", "probes", "backups")

# What each app may import from the others.
ALLOWED: dict[str, set[str]] = {
    "tocsin": set(),
    "monitoring": {"tocsin"},
    "incidents": {"tocsin", "monitoring"},
    "probes": {"tocsin", "monitoring"},
    "backups": {"tocsin", "monitoring"},
}
# The public face of monitoring for the apps that feed it.
# ``monitoring.availability`` is the registry through which they offer their history back.
MONITORING_PUBLIC = (
    "monitoring.pipeline",
    "monitoring.services",
    "monitoring.models",
    "monitoring.availability",
)


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from monitoring import pipeline`` imports monitoring.pipeline
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def app_sources(app: str) -> list[Path]:
    return [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]


def violations() -> list[str]:
    problems = []
    for app in APPS:
        for path in app_sources(app):
            for line, module in imports_of(path):
                target = module.split(".", 1)[0]
                if target not in APPS or target == app:
                    continue
                where = f"{path.relative_to(ROOT)}:{line} imports {module}"
                if target not in ALLOWED[app]:
                    problems.append(f"{where} ({app} may not depend on {target})")
                elif (
                    app in ("probes", "backups")
                    and target == "monitoring"
                    and module != "monitoring"
                    and not module.startswith(MONITORING_PUBLIC)
                ):
                    problems.append(f"{where} (only {', '.join(MONITORING_PUBLIC)} are public)")
    return problems


def test_apps_depend_in_one_direction() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("app", "source", "expected"),
    [
        ("monitoring", "from incidents.lifecycle import services\n", "may not depend on incidents"),
        ("tocsin", "def f():\n    from monitoring.models import Alert\n", "may not depend"),
        ("probes", "from monitoring.suppression import evaluate\n", "are public"),
    ],
)
def test_the_check_catches_a_wrong_import(
    app: str, source: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker itself: a planted wrong-way import is reported (so a green run means
    something)."""
    fake = tmp_path / app
    fake.mkdir()
    (fake / "bad.py").write_text(source)
    monkeypatch.setattr(
        "tests.test_architecture.app_sources",
        lambda name: [fake / "bad.py"] if name == app else [],
    )
    monkeypatch.setattr("tests.test_architecture.ROOT", tmp_path)
    assert any(expected in problem for problem in violations())


def test_no_module_outside_migrations_is_over_500_lines() -> None:
    limit = 520  # "about 500": a file this long is two things; split it along its sections
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for app in APPS
        for path in app_sources(app)
        if (n := len(path.read_text().splitlines())) > limit
    ]
    assert long == []
