"""The scheduled audit check: verify the event chains (tocsin.audit) and raise a security alert
on the built-in system team when they are broken.

Each run checks what was anchored since the last verified anchor, up to the newest anchor, and
then marks that anchor verified whatever it found: every event is checked once by the schedule,
so one break makes one alert (its fingerprint names the anchor), and ``manage.py audit verify``
(from the start) keeps showing it until someone has looked.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from monitoring.metrics.host import system_team
from monitoring.models import Service, Severity
from monitoring.pipeline import AlertInput, raise_alert
from monitoring.services import ensure_internal_service
from tocsin.audit.verify import Report, last_verified_anchor, verify
from tocsin.models import AuditAnchor

log = logging.getLogger(__name__)

SECURITY_SERVICE_SLUG = "tocsin-security"
SECURITY_SERVICE_NAME = "Tocsin security"
SOURCE = "audit"
SHOWN = 10  # problems named in the alert's description


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
    if report.ok:
        return report
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.by_kind().items()))
    log.error("audit chain broken up to anchor %s: %s", latest.pk, counts)
    lines = [str(p) for p in report.problems[:SHOWN]]
    if len(report.problems) > SHOWN:
        lines.append(f"… and {len(report.problems) - SHOWN} more: run `manage.py audit verify`.")
    raise_alert(
        security_service(),
        AlertInput(
            labels={"alertname": "AuditChainBroken", "anchor": str(latest.pk)},
            fingerprint=f"audit-chain-broken-{latest.pk}",
            severity=Severity.CRITICAL,
            summary=f"The event log was tampered with ({counts})",
            description="\n".join(lines),
            details={"anchor": latest.pk, "problems": report.by_kind()},
        ),
        source=SOURCE,
    )
    return report
