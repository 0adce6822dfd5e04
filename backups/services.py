"""Configuration changes of backups, recorded in the event log (admin, API and commands alike).

The payload is the configuration as it now is, secrets reduced to whether they are set: the
event log is read by every team member, a DSN's password is not.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.utils import timezone

from backups.engine.repository import RepositoryError
from backups.engine.storage import StorageError
from backups.models import BackupPlan, BackupStorage, BackupTarget
from tocsin.events import record
from tocsin.services import ServiceError

AREAS: dict[type[models.Model], str] = {
    BackupStorage: "backup_storage",
    BackupTarget: "backup_target",
    BackupPlan: "backup_plan",
}
SECRET_FIELDS = {"credentials", "secrets"}
STATE_FIELDS = {
    "next_run_at",
    "next_drill_at",
    "lease_token",
    "lease_expires_at",
    "verify_rotation",
    "last_success_at",
    "alerted",
    "created_at",
}


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The row's configuration for the event log: secrets as set/unset, no state."""
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or field.name in STATE_FIELDS:
            continue
        value = getattr(obj, field.attname)
        if field.name in SECRET_FIELDS:
            value = sorted(key for key, secret in (value or {}).items() if secret)
            data[f"{field.name}_set"] = value
            continue
        data[field.attname] = value if not hasattr(value, "isoformat") else value.isoformat()
    return data


def log(action: str, obj: models.Model, actor: Any = None) -> None:
    area = AREAS[type(obj)]
    record(
        f"{area}.{action}",
        team=obj.team_id,
        subject=obj,
        actor=actor,
        payload={f"{area}_id": obj.pk, **snapshot(obj)},
    )


def configured(obj: models.Model, *, created: bool, actor: Any = None) -> models.Model:
    """After a storage, target or plan was saved: a plan's schedule takes effect at once (its
    next run is recomputed), and the event log says who changed what."""
    with transaction.atomic():
        if isinstance(obj, BackupStorage):
            _open_repository(obj)
        if isinstance(obj, BackupPlan):
            now = timezone.now()
            following = obj.next_run_after(now) if obj.enabled else None
            drill = obj.next_drill_after(now) if obj.enabled else None
            BackupPlan.objects.filter(pk=obj.pk).update(next_run_at=following, next_drill_at=drill)
            obj.next_run_at, obj.next_drill_at = following, drill
        log("created" if created else "updated", obj, actor)
    return obj


def _open_repository(storage: BackupStorage) -> None:
    """Create (or open) the storage's repository as it is saved: a storage that cannot be
    reached, or a key that does not open it, is refused now rather than at 02:30."""
    try:
        storage.repository()
    except (RepositoryError, StorageError) as exc:
        raise ServiceError(f"This storage cannot be used: {exc}") from None


def delete(obj: models.Model, *, actor: Any = None) -> None:
    with transaction.atomic():
        log("deleted", obj, actor)
        obj.delete()
