"""Audit events for sign-ins: who logged in, out, or failed to, and from where."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from tocsin.events import record
from tocsin.security.addresses import client_address  # forwarding headers only behind a proxy


@receiver(user_logged_in)
def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    with transaction.atomic():
        record(
            "user.logged_in",
            team=None,
            subject=user,
            actor=user,
            payload={"ip": client_address(request)},
        )


@receiver(user_logged_out)
def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    with transaction.atomic():
        record("user.logged_out", team=None, subject=user, actor=user)


@receiver(user_login_failed)
def on_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    payload = {"ip": client_address(request)}
    if credentials.get("method"):  # e.g. a refused API token (tocsin.security.signin)
        payload["method"] = credentials["method"]
    with transaction.atomic():
        record(
            "user.login_failed",
            team=None,
            subject_type="user",
            subject_label=str(credentials.get("username") or "")[:150],
            payload=payload,
        )


# Sign-in protection and new administrators (tocsin.security): their receivers connect here.
from tocsin.security import signin  # noqa: E402, F401
from tocsin.security.admins import connect as _connect_admin_watch  # noqa: E402

_connect_admin_watch()
