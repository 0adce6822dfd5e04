"""Fixtures of the core app's tests (crew, api and fresh_throttles: tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def schema(db: None, api: Any) -> dict[str, Any]:
    """The OpenAPI schema as served to anonymous callers, parsed."""
    response = api().get("/api/v1/schema/?format=json")
    assert response.status_code == 200, response.content
    return response.json()
