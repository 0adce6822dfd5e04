"""Audit events for sign-ins: who logged in, out, or failed to, and from where."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from tocsin.events import record


def _client_ip(request: Any) -> str:
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR", "")


@receiver(user_logged_in)
def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    with transaction.atomic():
        record(
            "user.logged_in",
            team=None,
            subject=user,
            actor=user,
            payload={"ip": _client_ip(request)},
        )


@receiver(user_logged_out)
def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    with transaction.atomic():
        record("user.logged_out", team=None, subject=user, actor=user)


@receiver(user_login_failed)
def on_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    with transaction.atomic():
        record(
            "user.login_failed",
            team=None,
            subject_type="user",
            subject_label=str(credentials.get("username", ""))[:150],
            payload={"ip": _client_ip(request)},
        )
