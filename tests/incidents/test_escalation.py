"""Durable escalation: stop on ack, repeats, round robin, time conditions, no double page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidents.escalation import engine as escalation
from incidents.escalation.engine import advance_escalations
from incidents.lifecycle import services
from incidents.models import Delivery, Incident, IncidentStatus
from tests.incidents.core_support import (
    NOON,
    clear,
    fire,
    kinds,
    policy,
    settings_for,
)
from tocsin.models import Event

M = timedelta(minutes=1)


def paged() -> list[tuple[str, int]]:
    """(dedup key without channel suffix, user id) of every page enqueued, in order."""
    return [
        (key.rsplit(":", 1)[0], uid)
        for key, uid in Delivery.objects.order_by("id").values_list("dedup_key", "recipient_id")
    ]


@pytest.fixture
def two_steps(crew, service):
    p = policy(
        crew.team,
        {"delay_minutes": 0, "user_ids": [crew.responder.pk]},
        {"delay_minutes": 5, "user_ids": [crew.manager.pk]},
    )
    settings_for(service, escalation_policy=p)
    return p


def test_steps_page_in_time(crew, service, two_steps):
    fire(service, NOON)
    incident = Incident.objects.get()
    assert incident.next_step_at == NOON
    assert advance_escalations(NOON - M) == 0
    assert advance_escalations(NOON) == 1
    assert [u for _, u in paged()] == [crew.responder.pk]
    assert paged()[0][0] == f"incident:{incident.pk}:round:0:step:0:user:{crew.responder.pk}"
    assert advance_escalations(NOON + 4 * M) == 0
    assert advance_escalations(NOON + 5 * M) == 1
    assert [u for _, u in paged()] == [crew.responder.pk, crew.manager.pk]
    incident.refresh_from_db()
    assert incident.next_step_at is None  # no repeats: done
    assert kinds(incident).count("incident.escalated") == 2


def test_acknowledging_stops_escalation(crew, service, two_steps):
    fire(service, NOON)
    advance_escalations(NOON)
    incident = Incident.objects.get()
    services.acknowledge(incident, actor=crew.responder, now=NOON + M)
    assert advance_escalations(NOON + 10 * M) == 0
    assert len(paged()) == 1


def test_resolving_stops_escalation(crew, service, two_steps):
    fire(service, NOON)
    clear(service, NOON + M)  # auto-resolve
    assert advance_escalations(NOON + 10 * M) == 0
    assert paged() == []


def test_running_twice_for_the_same_moment_pages_once(crew, service, two_steps):
    fire(service, NOON)
    assert advance_escalations(NOON) == 1
    assert advance_escalations(NOON) == 0
    assert len(paged()) == 1


def test_a_worker_killed_mid_step_loses_nothing_and_pages_once(
    crew, service, two_steps, monkeypatch
):
    fire(service, NOON)
    real_record = escalation.record

    def crash(kind, **kwargs):
        if kind == "incident.escalated":
            raise SystemExit("worker killed")  # after the pages were enqueued
        return real_record(kind, **kwargs)

    monkeypatch.setattr(escalation, "record", crash)
    with pytest.raises(SystemExit):
        advance_escalations(NOON)
    assert paged() == []  # rolled back with the claim: the step is still due
    monkeypatch.setattr(escalation, "record", real_record)
    assert advance_escalations(NOON + M) == 1
    assert advance_escalations(NOON + M) == 0
    assert len(paged()) == 1


def test_a_page_that_escaped_before_a_crash_is_not_sent_again(crew, service, two_steps):
    """Even if a page for the step already exists (enqueued by an earlier, half-done run),
    running the step enqueues nothing new: the dedup key is per incident, round, step, user."""
    from incidents.notifications.outbox import page_user

    fire(service, NOON)
    incident = Incident.objects.get()
    page_user(
        crew.responder,
        incident,
        dedup_key=escalation.dedup_key(incident.pk, 0, 0, crew.responder.pk),
        reason="earlier run",
    )
    assert advance_escalations(NOON) == 1
    assert len(paged()) == 1


def test_a_competing_worker_that_read_the_same_state_skips(crew, service, two_steps):
    fire(service, NOON)
    incident = Incident.objects.get()
    # Another worker ran the step after we read the row: our conditional UPDATE matches nothing.
    Incident.objects.filter(pk=incident.pk).update(current_step=1, next_step_at=NOON + 5 * M)
    assert escalation._run_one_step(incident.pk, NOON) is False
    assert paged() == []


def test_the_policy_repeats(crew, service):
    p = policy(
        crew.team,
        {"delay_minutes": 0, "user_ids": [crew.responder.pk]},
        repeat_times=2,
        repeat_after_minutes=10,
    )
    settings_for(service, escalation_policy=p)
    fire(service, NOON)
    incident = Incident.objects.get()
    assert advance_escalations(NOON) == 1
    assert advance_escalations(NOON + 10 * M) == 1
    assert advance_escalations(NOON + 20 * M) == 1
    assert advance_escalations(NOON + 60 * M) == 0
    keys = [k for k, _ in paged()]
    assert keys == [
        f"incident:{incident.pk}:round:{r}:step:0:user:{crew.responder.pk}" for r in range(3)
    ]


def test_round_robin_pages_one_user_each_round(crew, service):
    users = [crew.viewer, crew.responder, crew.manager]
    p = policy(
        crew.team,
        {"delay_minutes": 0, "user_ids": [u.pk for u in users], "round_robin": True},
        repeat_times=2,
        repeat_after_minutes=1,
    )
    settings_for(service, escalation_policy=p)
    fire(service, NOON)
    incident = Incident.objects.get()
    for minute in (0, 1, 2):
        advance_escalations(NOON + minute * M)
    expected = [users[(incident.pk + r) % 3].pk for r in range(3)]
    assert [u for _, u in paged()] == expected
    assert len(set(expected)) == 3


def test_team_and_reassign_targets(crew, service):
    p = policy(crew.team, {"delay_minutes": 0, "notify_team": True, "reassign": True})
    settings_for(service, escalation_policy=p)
    fire(service, NOON)
    advance_escalations(NOON)
    # Responders and managers, by username; viewers cannot act, so they are not paged.
    assert [u for _, u in paged()] == [crew.manager.pk, crew.responder.pk]
    incident = Incident.objects.get()
    assert incident.assignee == crew.manager
    assert "incident.reassigned" in kinds(incident)


def test_schedule_targets_whoever_is_on_call(crew, service, monkeypatch):
    from incidents.models import Schedule
    from incidents.oncall import rotations as oncall

    schedule = Schedule.objects.create(team=crew.team, name="Primary")
    monkeypatch.setattr(oncall, "on_call_users", lambda s, at: [crew.responder])
    p = policy(crew.team, {"delay_minutes": 0, "schedule": schedule})
    settings_for(service, escalation_policy=p)
    fire(service, NOON)
    advance_escalations(NOON)
    assert [u for _, u in paged()] == [crew.responder.pk]


OFFICE = [{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}]


def out_of_hours_policy(crew):
    return policy(
        crew.team,
        {"delay_minutes": 0, "user_ids": [crew.responder.pk]},
        {
            "delay_minutes": 0,
            "user_ids": [crew.manager.pk],
            "hours_condition": "outside",
            "windows": OFFICE,
            "time_zone": "Europe/Paris",
            "min_priority": "P3",
        },
    )


def test_out_of_hours_step_is_skipped_in_office_hours(crew, service):
    settings_for(service, escalation_policy=out_of_hours_policy(crew))
    fire(service, NOON)  # Wednesday 13:00 in Paris
    assert advance_escalations(NOON) == 2
    assert [u for _, u in paged()] == [crew.responder.pk]
    skipped = Event.objects.filter(kind="incident.escalated").order_by("id").last()
    assert skipped.payload["skipped"] is True and "outside" in skipped.payload["why"]


def test_out_of_hours_step_runs_at_night(crew, service):
    settings_for(service, escalation_policy=out_of_hours_policy(crew))
    night = NOON + timedelta(hours=10)  # 23:00 in Paris
    fire(service, night)
    advance_escalations(night)
    assert [u for _, u in paged()] == [crew.responder.pk, crew.manager.pk]


def test_out_of_hours_step_is_only_for_urgent_priorities(crew, service):
    settings_for(service, escalation_policy=out_of_hours_policy(crew))
    night = NOON + timedelta(hours=10)
    fire(service, night, alertname="Low", _severity="info")  # P4
    advance_escalations(night)
    assert [u for _, u in paged()] == [crew.responder.pk]


def test_ack_timeout_triggers_again_and_restarts_escalation(crew, service):
    p = policy(
        crew.team, {"delay_minutes": 0, "user_ids": [crew.responder.pk]}, ack_timeout_minutes=30
    )
    settings_for(service, escalation_policy=p)
    fire(service, NOON)
    advance_escalations(NOON)
    incident = Incident.objects.get()
    services.acknowledge(incident, actor=crew.responder, now=NOON + M)
    assert incident.ack_timeout_at == NOON + 31 * M
    advance_escalations(NOON + 30 * M)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACKNOWLEDGED
    advance_escalations(NOON + 31 * M)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.TRIGGERED
    assert "incident.unacknowledged" in kinds(incident)
    # Paged again, under a new round, so the dedup key does not swallow the page.
    assert [k for k, _ in paged()] == [
        f"incident:{incident.pk}:round:0:step:0:user:{crew.responder.pk}",
        f"incident:{incident.pk}:round:1:step:0:user:{crew.responder.pk}",
    ]


def test_the_snapshot_is_unaffected_by_later_policy_edits(crew, service, two_steps):
    fire(service, NOON)
    incident = Incident.objects.get()
    assert incident.policy_snapshot["name"] == "Default"
    assert [s["user_ids"] for s in incident.policy_snapshot["steps"]] == [
        [crew.responder.pk],
        [crew.manager.pk],
    ]
    two_steps.steps.filter(position=1).update(user_ids=[crew.viewer.pk], delay_minutes=1)
    two_steps.steps.filter(position=0).delete()
    advance_escalations(NOON)
    advance_escalations(NOON + 5 * M)
    assert [u for _, u in paged()] == [crew.responder.pk, crew.manager.pk]


def test_pages_carry_signed_action_links(crew, service, two_steps):
    fire(service, NOON)
    advance_escalations(NOON)
    delivery = Delivery.objects.get()
    assert set(delivery.payload["links"]) == {"acknowledge", "resolve"}
    links = delivery.sealed_links  # kept encrypted, out of body and payload (#14)
    assert set(links) == {"acknowledge", "resolve"}
    assert "/incidents/act/" in links["acknowledge"]
