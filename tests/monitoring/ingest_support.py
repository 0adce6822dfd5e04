"""Helpers for the ingest endpoint tests: the wire-format fixtures and what got stored."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from django.test import Client

from monitoring.models import Alert
from tocsin.models import Event

# Inside the repository (tests/fixtures/, see its README), so any clone runs the tests.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@cache
def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture(name: str) -> Any:
    """A fresh copy of a fixture body, free to modify."""
    return copy.deepcopy(_load(name))


def post(url: str, payload: Any = None, *, raw: bytes | str | None = None, **headers: str):
    body = raw if raw is not None else json.dumps(payload)
    return Client().post(url, body, content_type="application/json", headers=headers)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def event_kinds() -> list[str]:
    return list(
        Event.objects.exclude(kind__startswith="incident.")
        .order_by("id")
        .values_list("kind", flat=True)
    )


def assert_nothing_stored() -> None:
    assert not Alert.objects.exists()
    assert not Event.objects.exists()
