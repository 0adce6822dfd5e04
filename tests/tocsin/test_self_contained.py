"""A clone of the repository runs on its own: no code, test or build file reads outside it.

The wire-format fixtures once came from a sibling folder of reference material that only the
development machines had; a user's clone failed. They live in ``tests/fixtures/`` now, and this
test keeps every path pointing inside the repository.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"

# Paths that only exist on the machines the project was first built on.
# (Spelled from parts so that this file itself names no outside path.)
SIBLING = "sha" + "red"
OUTSIDE = re.compile(rf"\.\./{SIBLING}|/work/|{SIBLING}/fixtures|[\"']{SIBLING}[\"']")

# Not ours, generated, or local state: nothing here ships or runs from the repository's files.
SKIPPED_DIRS = {
    ".git",
    ".venv",
    "var",
    ".ruff_cache",
    ".pytest_cache",
    "__pycache__",
    "node_modules",
    "static",
}
BUILD_FILES = {"Makefile", "Dockerfile", "docker-compose.yml", "pyproject.toml"}
BUILD_DIRS = {".ci", "scripts", "deploy"}


def scanned_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if not path.is_file() or SKIPPED_DIRS.intersection(relative.parts):
            continue
        if any(part.endswith(".egg-info") for part in relative.parts):
            continue
        if (
            path.suffix in {".py", ".sh"}
            or path.name in BUILD_FILES
            or relative.parts[0] in BUILD_DIRS
        ):
            found.append(path)
    return found


def test_nothing_reads_a_path_outside_the_repository() -> None:
    this_file = Path(__file__).resolve()
    files = scanned_files()
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        if path != this_file
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]

    assert offenders == []
    # The scan itself covers what it claims to (a broken walk would find nothing and pass).
    names = {str(path.relative_to(ROOT)) for path in files}
    assert {"Makefile", ".ci/run", "tests/monitoring/ingest_support.py"} <= names


def test_every_fixture_a_test_names_is_in_the_repository() -> None:
    used = set()
    for path in (ROOT / "tests").rglob("*.py"):
        # A quoted file name, not a URL's last part (``base + "summary.json"``).
        used |= set(re.findall(r"(?<!\+ )[\"']([\w.-]+\.json)[\"']", path.read_text()))

    assert used, "the tests name no fixture files: the pattern above went stale"
    missing = sorted(name for name in used if not (FIXTURES / name).is_file())
    assert missing == []


def test_each_fixture_parses_and_is_described_in_the_readme() -> None:
    readme = (FIXTURES / "README.md").read_text()
    fixtures = sorted(FIXTURES.glob("*.json"))

    assert fixtures
    for path in fixtures:
        json.loads(path.read_text())
        assert f"`{path.name}`" in readme, f"{path.name} has no entry in tests/fixtures/README.md"
