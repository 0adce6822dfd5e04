"""Creating, changing and deleting SLOs: one function per operation, called by the pages, the
API, the admin and the OpenSLO import alike. Every change is recorded in the event log with
the SLO's configuration as it now is.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.models import Service, ServiceLevelObjective
from monitoring.slos import alerts
from monitoring.slos.compute import forget_days
from tocsin.events import record
from tocsin.services import ServiceError

FIELDS = (
    "name",
    "slug",
    "description",
    "sli_kind",
    "sli_config",
    "objective",
    "window",
    "time_zone",
    "budgeting",
    "timeslice_target",
    "timeslice_minutes",
    "alerting",
)
# Changing these changes what was counted: remembered days are forgotten.
COUNTING_FIELDS = {"sli_kind", "sli_config", "budgeting", "timeslice_target", "timeslice_minutes"}
_SLUG_TAKEN = "this service already has an SLO with this name (or slug)"


class SLOInvalid(ServiceError):
    """The SLO does not hold; ``fields`` has every problem, by field."""

    def __init__(self, fields: dict[str, str]) -> None:
        name, message = next(iter(fields.items()))
        super().__init__(message, name.split(".")[0])
        self.fields = fields


def snapshot(slo: ServiceLevelObjective) -> dict[str, Any]:
    return {
        "slo_id": slo.pk,
        "service_id": slo.service_id,
        **{name: _plain(getattr(slo, name)) for name in FIELDS},
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def _normalise(slo: ServiceLevelObjective) -> None:
    problems = slo.problems()
    if problems:
        raise SLOInvalid(problems)
    # The config as the kind writes it (typed and back), so equal configs compare equal.
    slo.sli_config = slo.indicator.dump(slo.config())
    slo.objective = Decimal(slo.objective)


def create_slo(service: Service, *, actor: Any = None, **fields: Any) -> ServiceLevelObjective:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ServiceError(f"unknown field {sorted(unknown)[0]}", sorted(unknown)[0])
    slo = ServiceLevelObjective(service=service, **fields)
    _normalise(slo)
    try:
        with transaction.atomic():
            slo.save()
            record(
                "slo.created", team=service.team_id, subject=slo, actor=actor, payload=snapshot(slo)
            )
    except IntegrityError:
        raise ServiceError(_SLUG_TAKEN, "name", "duplicate") from None
    return slo


def update_slo(
    slo: ServiceLevelObjective, *, actor: Any = None, **changes: Any
) -> ServiceLevelObjective:
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ServiceError(f"unknown field {sorted(unknown)[0]}", sorted(unknown)[0])
    before = {name: getattr(slo, name) for name in FIELDS}
    for name, value in changes.items():
        setattr(slo, name, value)
    try:
        _normalise(slo)
    except ServiceError:
        for name, value in before.items():
            setattr(slo, name, value)
        raise
    changed = [name for name in FIELDS if getattr(slo, name) != before[name]]
    if not changed:
        return slo
    slo.updated_at = timezone.now()
    try:
        with transaction.atomic():
            # Only what this change owns: the evaluation task writes the figures and the
            # firing pairs (``alerted``) meanwhile, and a stale copy must not undo them.
            slo.save(update_fields=[*FIELDS, "updated_at"])
            if COUNTING_FIELDS & set(changed):
                forget_days(slo)
            if "alerting" in changed and not slo.alerting:
                slo.alerted = alerts.sync(slo, None)
                ServiceLevelObjective.objects.filter(pk=slo.pk).update(alerted=slo.alerted)
            record(
                "slo.updated",
                team=slo.team_id,
                subject=slo,
                actor=actor,
                payload={
                    **snapshot(slo),
                    "changes": {
                        name: [_plain(before[name]), _plain(getattr(slo, name))] for name in changed
                    },
                },
            )
    except IntegrityError:
        for name, value in before.items():
            setattr(slo, name, value)
        raise ServiceError(_SLUG_TAKEN, "name", "duplicate") from None
    # Lists show the new figures from the next evaluation on.
    ServiceLevelObjective.objects.filter(pk=slo.pk).update(computed_at=None)
    slo.computed_at = None
    return slo


def delete_slo(slo: ServiceLevelObjective, *, actor: Any = None) -> None:
    """Delete an SLO after resolving its burn-rate alerts (nothing else would)."""
    with transaction.atomic():
        alerts.sync(slo, None)
        record("slo.deleted", team=slo.team_id, subject=slo, actor=actor, payload=snapshot(slo))
        slo.delete()


def recompute(slo: ServiceLevelObjective, now: datetime | None = None) -> ServiceLevelObjective:
    """Forget remembered days and evaluate now (after history was rebuilt, say)."""
    from monitoring.slos.evaluation import evaluate

    with transaction.atomic():
        forget_days(slo)
    evaluate(slo, now or timezone.now())
    return slo
