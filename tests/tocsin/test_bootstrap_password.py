"""`manage.py bootstrap` applies the password validators to TOCSIN_ADMIN_PASSWORD."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.mark.parametrize("weak", ["1", "password", "12345678901", "admin@example.org"])
def test_bootstrap_refuses_a_weak_admin_password(db, monkeypatch, weak):
    monkeypatch.setenv("TOCSIN_ADMIN_EMAIL", "admin@example.org")
    monkeypatch.setenv("TOCSIN_ADMIN_PASSWORD", weak)
    with pytest.raises(CommandError, match="TOCSIN_ADMIN_PASSWORD is too weak"):
        call_command("bootstrap", "--no-static")
    assert not get_user_model().objects.filter(is_superuser=True).exists()


def test_bootstrap_accepts_a_strong_password_and_generates_one_when_unset(db, monkeypatch):
    monkeypatch.setenv("TOCSIN_ADMIN_EMAIL", "admin@example.org")
    monkeypatch.setenv("TOCSIN_ADMIN_PASSWORD", "sturdy-lantern-4711")
    call_command("bootstrap", "--no-static")
    admin = get_user_model().objects.get(is_superuser=True)
    assert admin.check_password("sturdy-lantern-4711")
