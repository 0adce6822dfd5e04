"""The scheduled audit check (monitoring.audit_check): a broken chain raises one security alert
on the built-in system team, through the alert pipeline, and only once per break."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from monitoring.audit_check import SECURITY_SERVICE_SLUG, check_audit_chains
from monitoring.metrics.host import SYSTEM_TEAM_SLUG
from monitoring.models import Alert
from tests.conftest import team_test_event
from tocsin.audit import chain
from tocsin.models import AuditAnchor
from tocsin.scheduling import registered


@pytest.fixture(autouse=True)
def _no_margin(settings):
    settings.TOCSIN_AUDIT_SEAL_MARGIN = 0


class Clock:
    """Sealing runs every minute; anchors every TOCSIN_AUDIT_ANCHOR_MINUTES: step past them."""

    def __init__(self) -> None:
        self.now = timezone.now() + timedelta(minutes=1)

    def step(self) -> timezone.datetime:
        self.now += timedelta(minutes=11)
        return self.now


def write(team, n=2):
    with transaction.atomic():
        return [team_test_event(team) for _ in range(n)]


def security_alerts():
    return Alert.objects.filter(
        service__slug=SECURITY_SERVICE_SLUG, service__team__slug=SYSTEM_TEAM_SLUG
    )


def test_the_sealer_and_the_check_are_scheduled():
    names = {task.name: task.func for task in registered()}
    assert names["tocsin.audit_seal"] == "tocsin.audit.tasks.seal_events"
    assert names["monitoring.check_audit_chains"] == "monitoring.audit_check.check_audit_chains"


def test_an_intact_log_raises_nothing_and_is_checked_once(crew):
    clock = Clock()
    write(crew.team)
    chain.seal(clock.now)
    report = check_audit_chains(clock.now)
    assert report is not None and report.ok and report.checked == 2
    assert AuditAnchor.objects.get().verified_at is not None
    assert check_audit_chains(clock.now) is None  # nothing anchored since
    write(crew.team)
    chain.seal(clock.step())
    report = check_audit_chains(clock.now)
    assert report.ok and report.checked == 2  # only what came after the verified anchor
    assert not security_alerts().exists()


def test_a_broken_chain_raises_one_security_alert_per_break(crew):
    clock = Clock()
    events = write(crew.team, 3)
    chain.seal(clock.now)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tocsin_event SET actor_label = 'nobody' WHERE id = %s", [events[1].pk]
        )
    report = check_audit_chains(clock.now)
    assert not report.ok
    alert = security_alerts().get()
    assert alert.is_firing and alert.severity == "critical"
    assert "modified" in alert.summary and str(events[1].pk) in alert.description
    # The next runs do not raise it again, with or without new events.
    assert check_audit_chains(clock.now) is None
    write(crew.team)
    chain.seal(clock.step())
    assert check_audit_chains(clock.now).ok
    assert security_alerts().count() == 1
    # A new break is a new alert.
    later = write(crew.team)
    chain.seal(clock.step())
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tocsin_event WHERE id = %s", [later[0].pk])
    assert check_audit_chains(clock.now).by_kind() == {"deleted": 1}
    assert security_alerts().count() == 2


def test_verify_can_start_from_the_last_verified_anchor(crew):
    import json
    from io import StringIO

    from django.core.management import call_command

    clock = Clock()
    write(crew.team, 3)
    chain.seal(clock.now)
    check_audit_chains(clock.now)
    write(crew.team, 2)
    chain.seal(clock.now)  # sealed, not anchored yet
    out = StringIO()
    call_command("audit", "verify", "--incremental", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] and report["checked"] == 2
    assert report["since_anchor"] == AuditAnchor.objects.get().pk
