"""The periodic task (every minute): each SLO's figures denormalised for the lists, and its
burn-rate alerts raised or resolved.

Workers claim an SLO per minute with a conditional UPDATE of ``computed_at``: with several
workers each SLO is evaluated once per minute, and "nothing updated" means another got it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from monitoring.models import ServiceLevelObjective
from monitoring.slos import alerts
from monitoring.slos.budget import figures, sparkline
from monitoring.slos.compute import MINUTE, Counter, floor_to, reading_together
from monitoring.slos.registry import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Evaluated:
    slo: ServiceLevelObjective
    burns: list[alerts.Burn]
    firing: list[str]


def claim(slo: ServiceLevelObjective, upto: datetime) -> bool:
    claimed = (
        ServiceLevelObjective.objects.filter(pk=slo.pk)
        .filter(Q(computed_at__isnull=True) | Q(computed_at__lt=upto))
        .update(computed_at=upto)
    )
    return bool(claimed)


def evaluate(slo: ServiceLevelObjective, now: datetime | None = None) -> Evaluated | None:
    """Figures and alerts of one SLO at ``now``; None when its config no longer holds (a
    check it counted was deleted, say: the page says so) or its minute was evaluated."""
    now = now or timezone.now()
    upto = floor_to(now, MINUTE)
    try:
        counter = Counter(slo, now)
    except ConfigError as exc:
        log.warning("SLO %s: not evaluated: %s", slo.pk, exc)
        return None
    found = figures(slo, now, counter=counter)
    line = sparkline(slo, now, counter)
    burns = alerts.burns(slo, now, counter) if slo.alerting else []
    with transaction.atomic():
        firing = alerts.sync(slo, burns if slo.alerting else None)
        fields = {
            "computed_at": upto,
            "attainment": found.attainment,
            "budget_remaining": found.budget_remaining,
            "burn_rate": found.burn_rate,
            "exhausted_at": found.exhausted_at,
            "sparkline": line,
            "alerted": firing,
        }
        ServiceLevelObjective.objects.filter(pk=slo.pk).update(**fields)
        for name, value in fields.items():
            setattr(slo, name, value)
    return Evaluated(slo, burns, firing)


def evaluate_all(now: datetime | None = None) -> dict[str, int]:
    """The periodic task: every SLO not evaluated for this minute yet."""
    now = now or timezone.now()
    upto = floor_to(now, MINUTE)
    done = {"evaluated": 0, "firing": 0, "failed": 0}
    due = list(
        ServiceLevelObjective.objects.filter(
            Q(computed_at__isnull=True) | Q(computed_at__lt=upto)
        ).select_related("service", "service__team")
    )
    with reading_together(due, now):
        for slo in due:
            if not claim(slo, upto):
                continue
            try:
                result = evaluate(slo, now)
            except Exception:
                log.exception("SLO %s: evaluation failed; the next minute tries again", slo.pk)
                done["failed"] += 1
                continue
            if result is not None:
                done["evaluated"] += 1
                done["firing"] += len(result.firing)
    return done
