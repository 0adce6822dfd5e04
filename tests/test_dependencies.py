"""What the apps import at run time is declared in ``[project.dependencies]``, not only in the
``dev`` extra: ``make run`` and the Docker image install without it, and an import that only a
test environment satisfies would stop the server at start-up."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("tocsin", "monitoring", "incidents", "probes", "backups")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(spec: str) -> tuple[str, set[str]]:
    """A requirement's distribution name and the extras it asks for."""
    name = re.split(r"[\[<>=!~; (]", spec, maxsplit=1)[0]
    extras = re.search(r"\[([^\]]*)\]", spec.split(";")[0])
    return _normal(name), {e.strip() for e in extras[1].split(",")} if extras else set()


def declared() -> set[str]:
    """The distributions a plain install brings: the declared ones (and the optional apprise
    extra, imported only when configured) and, through their metadata, what they require."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [
        _requirement(spec)
        for spec in project["dependencies"] + project["optional-dependencies"].get("apprise", [])
    ]
    found: set[str] = set()
    while pending:
        name, extras = pending.pop()
        if name in found:
            continue
        found.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for spec in needs:
            marker = spec.split(";", 1)[1] if ";" in spec else ""
            wanted_by = re.findall(r"extra\s*==\s*[\"']([^\"']+)", marker)
            if not wanted_by or set(wanted_by) & extras:
                pending.append(_requirement(spec))
    return found


def third_party_imports() -> dict[str, str]:
    """Top-level module -> a file importing it, over the apps' own code (migrations too)."""
    found: dict[str, str] = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in APPS:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_run_time_import_is_a_declared_dependency() -> None:
    providers = packages_distributions()
    wanted = declared()
    undeclared = [
        f"{module} (imported by {where}; from {providers.get(module, ['?'])})"
        for module, where in sorted(third_party_imports().items())
        if not {_normal(dist) for dist in providers.get(module, [module])} & wanted
    ]
    assert undeclared == []


def test_the_check_sees_the_imports_it_must() -> None:
    imports = third_party_imports()
    assert {"django", "rest_framework", "yaml", "nh3"} <= set(imports)
