"""A new administrator is a security event: someone became a superuser or staff.

Seen on the user model's saves (the admin's user form, ``createsuperuser``, ``bootstrap``, the
API, a shell): the flags a user was loaded with are remembered (``post_init``, no query) and
compared after each save. The first administrator of an installation (no other active one
exists) is the one ``bootstrap`` makes; nobody else could be warned, so it records nothing.
A change made with SQL or ``QuerySet.update()`` passes no signal and is not seen here.

``security.admin_granted`` is turned into an alert on the built-in system team by
``monitoring.security``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_init, post_save

from tocsin.events import record

log = logging.getLogger("tocsin.security")
FLAGS = ("is_superuser", "is_staff")


def _flags(user: Any) -> tuple[bool, bool]:
    return tuple(bool(user.__dict__.get(flag, False)) for flag in FLAGS)  # type: ignore[return-value]


def _remember(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance._tocsin_admin_flags = _flags(instance) if instance.pk else (False, False)
    instance._tocsin_was_active = bool(instance.pk) and bool(instance.__dict__.get("is_active"))


def _saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    fields = kwargs.get("update_fields")
    if fields is not None and not set(fields) & {*FLAGS, "is_active"}:
        return  # e.g. last_login on every sign-in
    before = (False, False) if created else getattr(instance, "_tocsin_admin_flags", (False, False))
    after = _flags(instance)
    was_active = not created and getattr(instance, "_tocsin_was_active", True)
    instance._tocsin_admin_flags, instance._tocsin_was_active = after, instance.is_active
    gained = [flag for flag, was, now in zip(FLAGS, before, after, strict=True) if now and not was]
    if instance.is_active and not was_active and not created:
        # An inactive account made an administrator earlier becomes one in effect now.
        gained = [flag for flag, now in zip(FLAGS, after, strict=True) if now]
    if not gained or not instance.is_active:
        return
    others = (
        get_user_model()
        ._default_manager.filter(Q(is_superuser=True) | Q(is_staff=True), is_active=True)
        .exclude(pk=instance.pk)
    )
    if not others.exists():
        return  # the installation's first administrator
    with transaction.atomic():
        record(
            "security.admin_granted",
            team=None,
            subject=instance,
            payload={
                "user_id": instance.pk,
                "username": instance.get_username(),
                "granted": gained,
            },
        )


def connect() -> None:
    user_model = get_user_model()
    post_init.connect(_remember, sender=user_model, dispatch_uid="tocsin.security.admins")
    post_save.connect(_saved, sender=user_model, dispatch_uid="tocsin.security.admins")
