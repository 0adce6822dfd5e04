"""Sign-ins are events (user.logged_in, user.login_failed); django-axes' own log lines are kept to
what an operator acts on: failures and lockouts, not every successful sign-in."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import PASSWORD


@pytest.mark.django_db
def test_a_successful_sign_in_logs_nothing_from_axes(client: Any, crew: Any, caplog: Any) -> None:
    with caplog.at_level(logging.INFO):
        response = client.post("/accounts/login/", {"username": "viewer", "password": PASSWORD})
    assert response.status_code == 302
    assert [r for r in caplog.records if r.name.startswith("axes")] == []


@pytest.mark.django_db
def test_a_failed_sign_in_is_still_a_warning(client: Any, crew: Any, caplog: Any) -> None:
    with caplog.at_level(logging.INFO):
        client.post("/accounts/login/", {"username": "viewer", "password": "wrong"})
    axes = [r for r in caplog.records if r.name.startswith("axes")]
    assert axes and all(r.levelno >= logging.WARNING for r in axes)
