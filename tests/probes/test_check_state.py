"""A check's state through real runs against a real target: thresholds, "X of the last Y",
degraded, quick retry, first verdicts, validation."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from probes.checks import services
from probes.checks.models import Check, CheckState, Result, ResultStatus, Slot
from tests.probes import test_check_target as support
from tests.probes.test_check_target import make_check, step

service, target = support.service, support.target  # fixtures


def states(check: Check, target, answers: list[int]) -> list[str]:
    seen = []
    for status in answers:
        step(check, status, target=target)
        seen.append(check.state)
    return seen


def test_it_goes_down_after_three_failures_and_up_after_two_successes(service, target):
    check = make_check(service, target)

    seen = states(check, target, [200, 503, 503, 503, 200, 200])

    assert seen == ["up", "up", "up", "down", "down", "up"]
    assert Result.objects.filter(probe=check).count() == 6


def test_a_success_between_failures_starts_the_count_again(service, target):
    check = make_check(service, target)

    seen = states(check, target, [200, 503, 503, 200, 503, 503])

    assert seen == ["up"] * 6


def test_custom_thresholds(service, target):
    check = make_check(service, target, failure_threshold=1, recovery_threshold=3)

    seen = states(check, target, [503, 200, 200, 200])

    assert seen == ["down", "down", "down", "up"]


def test_x_of_the_last_y_runs(service, target):
    check = make_check(service, target, window_failures=3, window_size=5)

    seen = states(check, target, [200, 503, 200, 503, 200, 503])

    assert seen == ["up", "up", "up", "up", "up", "down"]
    slot = Slot.objects.get(probe=check)
    assert slot.recent == ""  # the window restarts at the change of state


def test_x_of_y_forgets_failures_older_than_the_window(service, target):
    check = make_check(service, target, window_failures=2, window_size=3)

    seen = states(check, target, [503, 200, 200, 503, 200, 200])

    assert seen == ["unknown", "up", "up", "up", "up", "up"]


def test_a_softer_condition_makes_it_degraded_without_counting_as_a_failure(service, target):
    check = make_check(service, target, degraded_conditions=["[BODY] != slow"])

    step(check, 200, "slow", target=target)
    assert check.state == CheckState.DEGRADED
    result = Result.objects.get(probe=check)
    assert result.status == ResultStatus.DEGRADED
    assert result.error == 'degraded: [BODY] ("slow") != slow'

    step(check, 200, "fine", target=target)
    assert check.state == CheckState.UP


def test_a_down_check_recovers_into_degraded_when_the_runs_are_degraded(service, target):
    check = make_check(service, target, failure_threshold=1, degraded_conditions=["[BODY] != slow"])
    step(check, 503, target=target)
    step(check, 200, "slow", target=target)
    step(check, 200, "slow", target=target)

    assert check.state == CheckState.DEGRADED


def test_failures_below_the_threshold_leave_a_new_check_unknown(service, target):
    check = make_check(service, target)

    assert states(check, target, [503, 503]) == ["unknown", "unknown"]
    assert check.last_error == "failed: [STATUS] (503) in 200..299"


def test_a_quick_retry_that_passes_does_not_count_the_failure(service, target):
    check = make_check(service, target, failure_threshold=1, quick_retry=True)
    target.queued.extend([(503, "busy"), (200, "ok")])

    step(check)

    assert check.state == CheckState.UP
    result = Result.objects.get(probe=check)
    assert result.status == ResultStatus.UP
    assert result.details["quick_retry"] == {"first_error": "failed: [STATUS] (503) in 200..299"}
    assert target.requests == 2


def test_a_quick_retry_that_fails_again_counts_once(service, target):
    check = make_check(service, target, failure_threshold=2, quick_retry=True)
    target.set(503)

    step(check)
    assert check.state == CheckState.UNKNOWN
    assert Slot.objects.get(probe=check).consecutive_failures == 1
    assert target.requests == 2


def test_the_failure_reason_and_excerpt_are_kept(service, target):
    check = make_check(service, target)
    step(check, 500, "database is on fire", target=target)

    result = Result.objects.get(probe=check)
    assert result.error == "failed: [STATUS] (500) in 200..299"
    assert result.explanation == "[STATUS] (500) in 200..299"
    assert result.excerpt == "database is on fire"
    assert result.latency_ms is not None
    assert check.last_excerpt == "database is on fire"


def test_a_paused_check_does_not_run(service, target):
    check = make_check(service, target)
    services.pause(check)

    check.refresh_from_db()
    assert check.state == CheckState.PAUSED
    assert Slot.objects.get(probe=check).next_run_at is None


# -- validation ---
def test_a_wrong_condition_names_its_position(service, target):
    with pytest.raises(ValidationError) as caught:
        make_check(service, target, conditions=["[STATUS] == 200", "[STATUS] ==> 200"])

    [message] = caught.value.message_dict["conditions"]
    assert message.startswith("Condition 2: ")
    assert "at position 11: [STATUS] ==> 200" in message


def test_a_wrong_config_names_each_field(service, target):
    with pytest.raises(ValidationError) as caught:
        make_check(service, target, config={"url": "ftp://nowhere"})

    [message] = caught.value.message_dict["config"]
    assert message.startswith("url: ")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"interval": 5}, "interval"),
        ({"window_failures": 3}, "window_size"),
        ({"window_failures": 4, "window_size": 3}, "window_failures"),
        ({"locations": ["eu"], "down_when_failing": 2}, "down_when_failing"),
        ({"locations": ["*"]}, "locations"),
        ({"timeout": 30, "interval": 10}, "timeout"),
    ],
)
def test_settings_are_validated(service, target, fields, field):
    with pytest.raises(ValidationError) as caught:
        make_check(service, target, **fields)

    assert field in caught.value.message_dict
