"""“Send test alert”: an alert sent through the real pipeline as one of a service's integrations,
so a team sees the whole path work (grouping, escalation, the page) before a real problem.

A test alert is marked twice: the label ``tocsin_test="true"`` (silences and grouping rules can
match it) and a summary that says so. Each test carries its own ``test_id``, so it is a new
alert (and, under the default fingerprint grouping, a new incident) every time, and pages: so
an integration sends at most one test a minute (``TEST_INTERVAL``), whatever clicks or scripts.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from monitoring.models import Alert, Integration, Severity
from monitoring.pipeline import AlertInput, Outcome, process
from monitoring.service_setup import TEST_LABEL
from tocsin.events import record
from tocsin.services import ServiceError

TEST_ALERTNAME = "TocsinTestAlert"
# One test alert per integration in this time: a double click or a loop must not page on-call
# again and again.
TEST_INTERVAL = timedelta(minutes=1)


def build_test_alert(integration: Integration, actor: Any = None) -> AlertInput:
    who = actor.get_username() if actor is not None else "Tocsin"
    return AlertInput(
        labels={
            "alertname": TEST_ALERTNAME,
            TEST_LABEL: "true",
            "integration": integration.name,
            "test_id": secrets.token_hex(4),
        },
        severity=Severity.ERROR,
        summary=f"Test alert from Tocsin via “{integration.name}” (sent by {who}): not a real "
        "problem; resolve it once the page arrived",
        description="Sent with “Send test alert” on the service page to check paging end to end.",
    )


def send_test_alert(
    integration: Integration, *, actor: Any = None, now: datetime | None = None
) -> Outcome:
    """Raise a test alert through the pipeline as ``integration``; recorded as an event.
    Refused (code ``throttled``) while the integration's last test alert is younger than
    ``TEST_INTERVAL``."""
    if integration.revoked_at is not None:
        raise ServiceError("this integration is revoked: its alerts are refused", "integration")
    service = integration.service
    now = now or timezone.now()
    item = build_test_alert(integration, actor)
    with transaction.atomic():
        # The integration's row lock makes two tests at once take turns: the second sees the
        # first's alert and is refused.
        list(Integration.objects.select_for_update().filter(pk=integration.pk).values_list("pk"))
        recent = Alert.objects.filter(
            integration=integration,
            first_seen_at__gt=now - TEST_INTERVAL,
            **{f"labels__{TEST_LABEL}": "true"},
        )
        if recent.exists():
            raise ServiceError(
                f"A test alert went through “{integration.name}” less than a minute ago: wait "
                "for its page (or a minute) before sending another.",
                "integration",
                "throttled",
            )
        outcome = process(
            service, [item], source=integration.kind, integration=integration, now=now
        )[0]
        record(
            "integration.test_sent",
            team=service.team_id,
            subject=integration,
            actor=actor,
            payload={
                "integration_id": integration.pk,
                "service_id": service.pk,
                "alert_id": outcome.alert.pk if outcome.alert is not None else None,
                "fingerprint": outcome.fingerprint,
            },
        )
    return outcome


def was_tested(service: Any) -> bool:
    """Did a test alert ever reach the service (the checklist's fourth step)?"""
    return Alert.objects.filter(service=service, **{f"labels__{TEST_LABEL}": "true"}).exists()
