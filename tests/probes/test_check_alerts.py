"""A check's alerts through the monitoring pipeline: one down and one up per transition under
the thresholds, dependencies, maintenance, reminders, what the alert carries."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from monitoring.models import AlertStatus, MaintenanceWindow
from probes.checks import services
from probes.checks.models import CheckState
from tests.probes import test_check_target as support
from tests.probes.test_check_target import down_alert, events, make_check, step

service, target = support.service, support.target  # fixtures


def test_a_flapping_target_raises_one_down_and_one_up_per_transition(service, target):
    check = make_check(service, target)
    # Single failures and pairs never reach the threshold: no alert for them.
    for status in [200, 503, 200, 503, 503, 200, 503, 200]:
        step(check, status, target=target)
    assert down_alert(check) is None

    for transitions in range(1, 4):
        for status in [503, 503, 503, 503, 200, 503, 200, 200, 503]:
            step(check, status, target=target)
        assert events("alert.firing") + events("alert.refired") == transitions
        assert events("alert.resolved") == transitions

    alert = down_alert(check)
    assert alert.status == AlertStatus.RESOLVED
    assert alert.fired_count == 3
    assert check.state == CheckState.UP


def test_the_alert_carries_the_reason_the_explanation_and_the_excerpt(service, target):
    check = make_check(service, target, failure_threshold=1)

    step(check, 503, "maintenance page", target=target)

    alert = down_alert(check)
    assert alert.status == AlertStatus.FIRING
    assert alert.summary == "Shop front is down: failed: [STATUS] (503) in 200..299"
    assert alert.labels == {
        "alertname": "CheckDown",
        "check": "Shop front",
        "kind": "http",
        "service": service.slug,
    }
    assert alert.details["explanation"] == "[STATUS] (503) in 200..299"
    assert alert.details["excerpt"] == "maintenance page"
    assert alert.source == "check"


def test_recovery_resolves_the_alert(service, target):
    check = make_check(service, target, failure_threshold=1, recovery_threshold=2)
    step(check, 503, target=target)

    step(check, 200, target=target)
    assert down_alert(check).status == AlertStatus.FIRING
    step(check, 200, target=target)

    assert down_alert(check).status == AlertStatus.RESOLVED
    check.refresh_from_db()
    assert not check.alerted


def test_a_child_is_held_back_while_its_parent_is_down(service, target):
    parent = make_check(service, target, name="Load balancer", failure_threshold=1)
    child = make_check(service, target, name="Shop front", failure_threshold=1)
    child.parents.add(parent)

    step(parent, 503, target=target)
    step(child, 503, target=target)

    assert child.state == CheckState.DOWN
    assert down_alert(parent).status == AlertStatus.FIRING
    assert down_alert(child) is None

    # The parent recovers; the child, still down, raises at its next run.
    target.set(200)
    step(parent)
    step(parent)
    target.set(503)
    step(child)
    assert down_alert(child).status == AlertStatus.FIRING


def test_a_childs_recovery_is_never_held_back(service, target):
    parent = make_check(service, target, name="Load balancer", failure_threshold=1)
    child = make_check(service, target, name="Shop front", failure_threshold=1)
    child.parents.add(parent)
    step(child, 503, target=target)  # the child went down first: its alert is open
    step(parent, 503, target=target)
    assert down_alert(child).status == AlertStatus.FIRING

    target.set(200)
    step(child)
    step(child)

    assert parent.state == CheckState.DOWN
    assert down_alert(child).status == AlertStatus.RESOLVED


def test_maintenance_mutes_the_alert_in_the_pipeline(service, target):
    # The pipeline decides suppression at the moment it is told (the wall clock).
    MaintenanceWindow.objects.create(
        service=service,
        title="Deploy",
        starts_at=timezone.now() - timedelta(hours=1),
        ends_at=timezone.now() + timedelta(hours=1),
    )
    check = make_check(service, target, failure_threshold=1)

    step(check, 503, target=target)

    alert = down_alert(check)
    assert alert.status == AlertStatus.FIRING
    assert alert.suppression == "maintenance"
    assert alert.suppressed_by["label"] == "Deploy"


def test_reminders_update_the_open_alert_while_down(service, target):
    check = make_check(service, target, failure_threshold=1, reminder_interval=150)
    step(check, 503, target=target)  # raised
    step(check)  # 60 s later: too early
    updates = events("alert.updated")

    step(check)
    step(check)  # 180 s after the raise: a reminder

    check.refresh_from_db()
    assert check.reminders_sent == 1
    assert events("alert.updated") == updates + 1
    alert = down_alert(check)
    assert alert.details["reminder"] == 1
    assert alert.fired_count == 1  # the same alert, not a new one


def test_pausing_resolves_the_alert(service, target):
    check = make_check(service, target, failure_threshold=1)
    step(check, 503, target=target)

    services.pause(check)

    assert down_alert(check).status == AlertStatus.RESOLVED
