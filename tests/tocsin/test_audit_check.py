"""The scheduled audit check (monitoring.audit_check): a broken chain raises one security alert
on the built-in system team, through the alert pipeline, and only once per break."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from monitoring.audit_check import (
    SECURITY_SERVICE_SLUG,
    check_audit_chains,
    check_audit_chains_fully,
)
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


def test_the_daily_full_check_is_scheduled():
    names = {task.name: (task.func, task.minutes) for task in registered()}
    assert names["monitoring.check_audit_chains_fully"] == (
        "monitoring.audit_check.check_audit_chains_fully",
        24 * 60,
    )


def test_a_row_changed_after_its_quick_check_is_found_by_the_full_check(crew):
    clock = Clock()
    events = write(crew.team, 3)
    chain.seal(clock.now)
    assert check_audit_chains(clock.now).ok  # verified: the quick check trusts it from now on
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tocsin_event SET actor_label = 'nobody' WHERE id = %s", [events[0].pk]
        )
    write(crew.team)
    chain.seal(clock.step())
    assert check_audit_chains(clock.now).ok  # the quick check does not look back
    assert not security_alerts().exists()
    report = check_audit_chains_fully(clock.now)
    assert report.by_kind() == {"modified": 1}
    alert = security_alerts().get()
    assert alert.is_firing and str(events[0].pk) in alert.description
    # Found once: the next full checks raise nothing new for the same break.
    check_audit_chains_fully(clock.step())
    assert security_alerts().count() == 1


def test_the_full_check_does_not_raise_again_what_the_quick_check_raised(crew):
    clock = Clock()
    events = write(crew.team, 3)
    chain.seal(clock.now)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tocsin_event SET actor_label = 'nobody' WHERE id = %s", [events[2].pk]
        )
    assert not check_audit_chains(clock.now).ok
    assert security_alerts().count() == 1
    assert check_audit_chains_fully(clock.now).by_kind() == {"modified": 1}
    assert security_alerts().count() == 1
    # A second break, later and older than the verified anchor: one new alert, for it alone.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tocsin_event WHERE id = %s", [events[1].pk])
    report = check_audit_chains_fully(clock.step())
    assert len(report.problems) >= 2
    assert security_alerts().count() == 2
    newest = security_alerts().order_by("-id").first()
    assert "deleted" in newest.summary and "modified" not in newest.summary


def test_the_full_check_of_an_intact_log_raises_nothing(crew):
    clock = Clock()
    assert check_audit_chains_fully(clock.now) is None  # nothing anchored yet
    write(crew.team, 4)
    chain.seal(clock.now)
    report = check_audit_chains_fully(clock.now)
    assert report.ok and report.checked == 4
    assert not security_alerts().exists()
