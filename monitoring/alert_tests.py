"""“Send test alert”: an alert sent through the real pipeline as one of a service's integrations,
so a team sees the whole path work (grouping, escalation, the page) before a real problem.

A test alert is marked twice: the label ``tocsin_test="true"`` (silences and grouping rules can
match it) and a summary that says so. Each test carries its own ``test_id``, so it is a new
alert (and, under the default fingerprint grouping, a new incident) every time.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from monitoring.models import Alert, Integration, Severity
from monitoring.pipeline import AlertInput, Outcome, process
from monitoring.service_setup import TEST_LABEL
from tocsin.events import record
from tocsin.services import ServiceError

TEST_ALERTNAME = "TocsinTestAlert"


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


def send_test_alert(integration: Integration, *, actor: Any = None) -> Outcome:
    """Raise a test alert through the pipeline as ``integration``; recorded as an event."""
    if integration.revoked_at is not None:
        raise ServiceError("this integration is revoked: its alerts are refused", "integration")
    service = integration.service
    item = build_test_alert(integration, actor)
    with transaction.atomic():
        outcome = process(
            service, [item], source=integration.kind, integration=integration, now=timezone.now()
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
