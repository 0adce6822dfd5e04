"""Writing notification channels, contact methods and rules: the one way, from the API, the
settings page and the admin alike, each change recorded as a ``channel.*``,
``contact_method.*`` or ``notification_rule.*`` event in the same transaction.

Configs hold secrets (webhook URLs with tokens, routing keys, HMAC secrets): events name the
config's keys, never its values. Contact methods and rules belong to a person, not a team, so
their events are team-less (the person's own audit trail).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from incidents.notifications.models import ContactMethod, NotificationChannel, NotificationRule
from tocsin.events import record
from tocsin.services import ServiceError

_AREA = {
    NotificationChannel: "channel",
    ContactMethod: "contact_method",
    NotificationRule: "notification_rule",
}
Writable = NotificationChannel | ContactMethod | NotificationRule


def snapshot(obj: Writable) -> dict[str, Any]:
    """What an event says about the object: its settings, with config keys but no values."""
    if isinstance(obj, NotificationChannel):
        return {
            "name": obj.name,
            "kind": obj.kind,
            "enabled": obj.enabled,
            "rate_limit_per_minute": obj.rate_limit_per_minute,
            "config_keys": sorted(obj.config or {}),
        }
    if isinstance(obj, ContactMethod):
        return {"kind": obj.kind, "label": obj.label, "config_keys": sorted(obj.config or {})}
    return {
        "contact_method_id": obj.contact_method_id,
        "delay_minutes": obj.delay_minutes,
        "urgency": obj.urgency,
        "notify_on_resolve": obj.notify_on_resolve,
    }


def _team_id(obj: Writable) -> int | None:
    return obj.team_id if isinstance(obj, NotificationChannel) else None


def save(obj: Writable, *, actor: Any, **changes: Any) -> Writable:
    """Create (a new instance) or update (with ``changes``) one channel, method or rule."""
    for name, value in changes.items():
        setattr(obj, name, value)
    created = obj._state.adding
    with transaction.atomic():
        try:
            with transaction.atomic():
                obj.save()
        except IntegrityError:
            raise ServiceError(
                "the team already has a channel with this name", "name", "duplicate"
            ) from None
        record(
            f"{_AREA[type(obj)]}.{'created' if created else 'updated'}",
            team=_team_id(obj),
            subject=obj,
            actor=actor,
            payload=snapshot(obj),
        )
    return obj


def delete(obj: Writable, *, actor: Any) -> None:
    with transaction.atomic():
        pk, label, payload = obj.pk, str(obj), snapshot(obj)
        team_id = _team_id(obj)
        obj.delete()  # a contact method's rules go with it (CASCADE)
        record(
            f"{_AREA[type(obj)]}.deleted",
            team=team_id,
            subject_type=obj._meta.model_name,
            subject_id=pk,
            subject_label=label,
            actor=actor,
            payload=payload,
        )
