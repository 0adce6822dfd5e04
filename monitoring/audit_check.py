"""The scheduled audit check: verify the event chains (tocsin.audit) and raise a security alert
on the built-in system team when they are broken.

Each run checks what was anchored since the last verified anchor, up to the newest anchor, and
then marks that anchor verified whatever it found: every event is checked once by the schedule,
so one break makes one alert (its fingerprint names the anchor), and ``manage.py audit verify``
(from the start) keeps showing it until someone has looked.

That quick check trusts what it verified before, so a row changed *after* its check would go
unseen by it (and ``verified_at`` is a column like any other). Once a day the whole log is
verified from the start (``check_audit_chains_fully``); what it finds that no earlier alert
named (each alert keeps the problems it reported) raises a new alert.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from django.utils import timezone

from monitoring.metrics.host import system_team
from monitoring.models import Alert, Service, Severity
from monitoring.pipeline import AlertInput, raise_alert
from monitoring.services import ensure_internal_service
from tocsin.audit.verify import Problem, Report, last_verified_anchor, verify
from tocsin.models import AuditAnchor

log = logging.getLogger(__name__)

SECURITY_SERVICE_SLUG = "tocsin-security"
SECURITY_SERVICE_NAME = "Tocsin security"
SOURCE = "audit"
SHOWN = 10  # problems named in the alert's description
FINGERPRINT_PREFIX = "audit-chain-broken-"
# Problems an alert remembers (to tell the daily full check what was reported already).
REMEMBERED = 5000


def security_service() -> Service:
    return ensure_internal_service(
        system_team().pk,
        slug=SECURITY_SERVICE_SLUG,
        name=SECURITY_SERVICE_NAME,
        integration_name="Security",
        description="Alerts Tocsin raises about its own security (audit chain, sign-ins).",
    )


def check_audit_chains(now: datetime | None = None) -> Report | None:
    """Verify the anchors not verified yet; None when there is nothing new to check."""
    now = now or timezone.now()
    since = last_verified_anchor()
    latest = AuditAnchor.objects.order_by("-sealed_through", "-id").first()
    if latest is None or (since is not None and latest.sealed_through <= since.sealed_through):
        return None
    report = verify(since=since, until=latest.sealed_through)
    AuditAnchor.objects.filter(pk=latest.pk).update(verified_at=now)
    if not report.ok:
        _raise(report.problems, latest, f"{FINGERPRINT_PREFIX}{latest.pk}")
    return report


def check_audit_chains_fully(now: datetime | None = None) -> Report | None:
    """The daily task: verify every chain from its start up to the newest anchor, and raise an
    alert for what no earlier alert reported; None when nothing is anchored yet."""
    latest = AuditAnchor.objects.order_by("-sealed_through", "-id").first()
    if latest is None:
        return None
    report = verify(since=None, until=latest.sealed_through)
    reported = _reported()
    new = [p for p in report.problems if _key(p) not in reported]
    if new:
        digest = hashlib.sha256("\n".join(sorted(_key(p) for p in new)).encode()).hexdigest()
        _raise(new, latest, f"{FINGERPRINT_PREFIX}full-{digest[:16]}")
    return report


def _key(problem: Problem) -> str:
    """A problem as the same break reads in any pass (the quick one, the full one)."""
    detail = problem.detail if problem.event_id is None else ""
    return f"{problem.kind}:{problem.chain}:{problem.event_id}:{detail}"


def _reported() -> set[str]:
    """The problems the audit alerts raised so far named, firing or not."""
    reported: set[str] = set()
    alerts = Alert.objects.filter(
        service__team=system_team(),
        service__slug=SECURITY_SERVICE_SLUG,
        fingerprint__startswith=FINGERPRINT_PREFIX,
    )
    for details in alerts.values_list("details", flat=True):
        reported.update((details or {}).get("reported", []))
    return reported


def _raise(problems: list[Problem], anchor: AuditAnchor, fingerprint: str) -> None:
    counts: dict[str, int] = {}
    for problem in problems:
        counts[problem.kind] = counts.get(problem.kind, 0) + 1
    said = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    log.error("audit chain broken up to anchor %s: %s", anchor.pk, said)
    lines = [str(p) for p in problems[:SHOWN]]
    if len(problems) > SHOWN:
        lines.append(f"… and {len(problems) - SHOWN} more: run `manage.py audit verify`.")
    raise_alert(
        security_service(),
        AlertInput(
            labels={"alertname": "AuditChainBroken", "anchor": str(anchor.pk)},
            fingerprint=fingerprint,
            severity=Severity.CRITICAL,
            summary=f"The event log was tampered with ({said})",
            description="\n".join(lines),
            details={
                "anchor": anchor.pk,
                "problems": counts,
                "reported": [_key(p) for p in problems[:REMEMBERED]],
            },
        ),
        source=SOURCE,
    )
