"""Ids and numbers typed into URLs and forms are read with ``str.isdecimal``, never
``str.isdigit``: "²" is a digit to Python but not a number ``int()`` reads, and every such
check once let it through to a 500."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("tocsin", "monitoring", "incidents", "probes", "backups")


def test_superscripts_are_digits_but_not_numbers():
    assert "²".isdigit() and not "²".isdecimal()
    assert int("٣") == 3 and "٣".isdecimal()  # what isdecimal admits, int() reads


def test_no_app_checks_input_with_isdigit():
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "isdigit"
    ]
    assert found == []


def test_pages_answer_a_superscript_id_without_a_500(client, crew):
    client.force_login(crew.manager)
    for url in (
        "/silences/?team=²",
        "/silences/new/?alert=²",
        "/maintenance/?service=²",
        "/maintenance/new/?service=²",
        "/services/?team=²",
    ):
        assert client.get(url).status_code < 500, url
