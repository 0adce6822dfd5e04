"""A check's state as an alert: the one place that talks to the monitoring pipeline.

One alert per check, fingerprint ``check:<pk>:down`` (a renamed check keeps it): raised when
the check goes down, resolved when it is not down any more (up, degraded, paused, or unknown
after its configuration changed). Its summary is the failure reason; its details carry the
failed conditions with their resolved values and the response excerpt.

- Reminders: while down, every ``reminder_interval`` seconds the alert is sent again with the
  reminder's number and the latest failure in its details. The pipeline sees changed content
  and records an ``alert.updated`` event on the open alert (no new alert, no new incident);
  notification rules that follow updates see it.
- Dependencies: while a parent is down, a child going down raises nothing (``alerted`` stays
  False); if it is still down after its parents recover, its next run raises it. A child whose
  alert was already open resolves as usual: recoveries are never held back.
- Maintenance windows, silences and inhibitions apply in the pipeline itself (the alert is
  stored as suppressed and does not page).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from monitoring.models.choices import Severity
from monitoring.pipeline import AlertInput, raise_alert, resolve_alert
from probes.checks.choices import CheckState
from probes.checks.models import Check

log = logging.getLogger(__name__)

SOURCE = "check"
ALERTNAME = "CheckDown"


def fingerprint(check: Check) -> str:
    return f"check:{check.pk}:down"


def alert_input(check: Check) -> AlertInput:
    link = f"{settings.TOCSIN_BASE_URL}/admin/probes/check/{check.pk}/change/"
    details = {
        "check": check.name,
        "kind": check.kind,
        "reason": check.last_error,
        "explanation": check.last_explanation,
        "excerpt": check.last_excerpt,
        "down_since": check.state_changed_at.isoformat() if check.state_changed_at else None,
        "locations": check.location_names(),
    }
    if check.reminders_sent:
        details["reminder"] = check.reminders_sent
    return AlertInput(
        labels={
            "alertname": ALERTNAME,
            "check": check.name,
            "kind": check.kind,
            "service": check.service.slug,
        },
        severity=Severity.ERROR,
        summary=f"{check.name} is down: {check.last_error or 'failing'}"[:500],
        details=details,
        links=[{"href": link, "text": "Check"}],
        fingerprint=fingerprint(check),
    )


def parent_down(check: Check) -> bool:
    return check.parents.filter(state=CheckState.DOWN).exists()


def sync(check: Check, now: datetime) -> bool:
    """Tell the pipeline what it has not been told: raise, remind or resolve. Updates the
    check's ``alerted``, ``last_alerted_at`` and ``reminders_sent`` (the caller saves); returns
    whether anything was sent. In a savepoint: if the pipeline refuses, the run is still stored
    and the difference stays in the row for the next run to send."""
    down = check.state == CheckState.DOWN
    if down and not check.alerted:
        if parent_down(check):
            return False  # held back while a parent is down
        return _send(check, now, reminder=False)
    if down and check.reminder_interval and check.last_alerted_at is not None:
        if now - check.last_alerted_at >= timedelta(seconds=check.reminder_interval):
            return _send(check, now, reminder=True)
        return False
    if not down and check.alerted:
        try:
            with transaction.atomic():
                resolve_alert(check.service, fingerprint(check), source=SOURCE)
        except Exception:
            log.exception("check %s: resolve not sent; the next run retries", check.pk)
            return False
        check.alerted, check.reminders_sent = False, 0
        return True
    return False


def _send(check: Check, now: datetime, *, reminder: bool) -> bool:
    previous = check.reminders_sent
    check.reminders_sent = previous + 1 if reminder else 0
    try:
        with transaction.atomic():
            raise_alert(check.service, alert_input(check), source=SOURCE)
    except Exception:
        check.reminders_sent = previous
        log.exception("check %s: alert not sent; the next run retries", check.pk)
        return False
    check.alerted, check.last_alerted_at = True, now
    return True
