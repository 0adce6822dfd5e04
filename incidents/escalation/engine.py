"""Durable escalation: the state lives on the incident row, workers only move it forward.

An incident that triggers copies its service's policy into ``policy_snapshot`` and gets a
``next_step_at``. The due-work loop of ``manage.py worker`` (``run_due``, woken when a step is
due; ``advance_escalations`` every minute is the safety net; safe from any number of workers
at once) claims due steps with a conditional UPDATE that also moves the
row to its next state: a second worker's UPDATE matches nothing and skips. The claim, the pages
(delivery outbox rows), the ``incident.escalated`` event and the assignee change share one
transaction, so a worker killed mid-step rolls everything back and the step stays due; every
page also carries a dedup key per (incident, round, step, user), so nobody is paged twice for
the same step even if a page escaped before a crash.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from incidents.models import (
    EscalationPolicy,
    Incident,
    IncidentStatus,
    step_applies,
)
from tocsin.events import record
from tocsin.permissions import Action, members_who_may
from tocsin.scheduling import run_soon

log = logging.getLogger(__name__)

BATCH = 200
# What run_soon is asked for when a step becomes due now: a hint to the due-work loop.
WAKE = "incidents.escalation.engine.advance_escalations"
# Steps one incident may run in one pass (policies with zero delays run straight through).
MAX_STEPS_PER_PASS = 50
ACTOR = "escalation"


def dedup_key(incident_id: int, round_: int, step: int, user_id: int) -> str:
    return f"incident:{incident_id}:round:{round_}:step:{step}:user:{user_id}"


def _steps(incident: Incident) -> list[dict[str, Any]]:
    return list((incident.policy_snapshot or {}).get("steps") or [])


def start(incident: Incident, policy: EscalationPolicy | None, *, now: datetime) -> None:
    """Snapshot ``policy`` into the incident and schedule its first step."""
    if prepare_start(incident, policy, now=now):
        run_soon(WAKE)
    incident.save(
        update_fields=[
            "policy_snapshot",
            "current_step",
            "repeat_round",
            "last_round",
            "next_step_at",
        ]
    )


def prepare_start(incident: Incident, policy: EscalationPolicy | None, *, now: datetime) -> bool:
    """Set an (unsaved) incident's escalation fields; True when its first step is due now.

    For bulk opening: no save and no wake-up here; the caller saves in bulk and calls
    ``run_soon(WAKE)`` once (it coalesces per transaction anyway).
    """
    incident.policy_snapshot = policy.snapshot() if policy is not None else {}
    incident.current_step = 0
    incident.repeat_round = 0
    return _schedule_round(incident, now)


def restart(incident: Incident, *, now: datetime) -> None:
    """From the first step again (reopen, ack timeout), in a new round so pages are new."""
    if not _steps(incident):
        return
    incident.current_step = 0
    incident.repeat_round = incident.repeat_round + 1
    if _schedule_round(incident, now):
        run_soon(WAKE)
    incident.save(update_fields=["current_step", "repeat_round", "last_round", "next_step_at"])


def _schedule_round(incident: Incident, now: datetime) -> bool:
    """Set the round's first step time; True when it is due now (the caller wakes the loop)."""
    steps = _steps(incident)
    repeats = int((incident.policy_snapshot or {}).get("repeat_times") or 0)
    incident.last_round = incident.repeat_round + repeats
    incident.next_step_at = (
        now + timedelta(minutes=int(steps[0]["delay_minutes"] or 0)) if steps else None
    )
    return incident.next_step_at is not None and incident.next_step_at <= now


def _after(incident: Incident, now: datetime) -> tuple[int, int, datetime | None]:
    """(step, round, when) that follows the incident's current step run at ``now``."""
    steps = _steps(incident)
    step, round_ = incident.current_step, incident.repeat_round
    if step + 1 < len(steps):
        return step + 1, round_, now + timedelta(minutes=int(steps[step + 1]["delay_minutes"]))
    if round_ < incident.last_round:
        wait = int((incident.policy_snapshot or {}).get("repeat_after_minutes") or 0)
        wait += int(steps[0]["delay_minutes"] or 0)
        return 0, round_ + 1, now + timedelta(minutes=max(wait, 1))
    return len(steps), round_, None  # finished: nobody left to page


def advance_escalations(now: datetime | None = None) -> int:
    """Run every escalation step that is due; returns how many steps ran (skipped ones count).

    Called by the due-work loop (``run_due``) the moment a step is due, and every minute by
    django-q as the safety net; safe from any number of workers at once.
    """
    now = now or timezone.now()
    expire_acknowledgements(now)
    return _advance_due_steps(now)


def _advance_due_steps(now: datetime) -> int:
    due = list(
        Incident.objects.filter(status=IncidentStatus.TRIGGERED, next_step_at__lte=now)
        .order_by("next_step_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    ran = 0
    for pk in due:
        for _ in range(MAX_STEPS_PER_PASS):
            if not _run_one_step(pk, now):
                break
            ran += 1
    return ran


def run_due(now: datetime) -> int:
    """The due-work loop's pass: expired acknowledgements and due steps; how many ran."""
    return expire_acknowledgements(now) + _advance_due_steps(now)


def next_due_at() -> datetime | None:
    """The earliest step or acknowledgement timeout still to come (the loop sleeps until it)."""
    step = (
        Incident.objects.filter(status=IncidentStatus.TRIGGERED, next_step_at__isnull=False)
        .order_by("next_step_at")
        .values_list("next_step_at", flat=True)
        .first()
    )
    timeout = (
        Incident.objects.filter(status=IncidentStatus.ACKNOWLEDGED, ack_timeout_at__isnull=False)
        .order_by("ack_timeout_at")
        .values_list("ack_timeout_at", flat=True)
        .first()
    )
    return min((t for t in (step, timeout) if t is not None), default=None)


def _run_one_step(pk: int, now: datetime) -> bool:
    """Claim and run the incident's due step; False when nothing was due or another won."""
    with transaction.atomic():
        incident = (
            Incident.objects.select_related("team")
            .filter(pk=pk, status=IncidentStatus.TRIGGERED, next_step_at__lte=now)
            .first()
        )
        if incident is None:
            return False
        steps = _steps(incident)
        if incident.current_step >= len(steps):
            Incident.objects.filter(pk=pk, next_step_at=incident.next_step_at).update(
                next_step_at=None
            )
            return False
        step_no, round_ = incident.current_step, incident.repeat_round
        next_step, next_round, next_at = _after(incident, now)
        # The claim: only the worker whose UPDATE still sees the state it read goes on.
        claimed = Incident.objects.filter(
            pk=pk,
            status=IncidentStatus.TRIGGERED,
            current_step=step_no,
            repeat_round=round_,
            next_step_at=incident.next_step_at,
        ).update(current_step=next_step, repeat_round=next_round, next_step_at=next_at)
        if not claimed:
            return False
        incident.current_step, incident.repeat_round, incident.next_step_at = (
            next_step,
            next_round,
            next_at,
        )
        _run_step(incident, steps[step_no], step_no, round_, now)
    return True


def _run_step(
    incident: Incident, step: dict[str, Any], step_no: int, round_: int, now: datetime
) -> None:
    applies, why = step_applies(step, incident.priority, now)
    targets = _targets(incident, step, round_, now) if applies else []
    if applies and step.get("reassign") and targets and incident.assignee_id != targets[0].pk:
        from incidents.lifecycle import services

        services.reassign(incident, targets[0], actor=None, actor_label=ACTOR, via="escalation")
    paged = []
    for user in targets:
        _page(incident, user, round_, step_no, now)
        paged.append(user.pk)
    record(
        "incident.escalated",
        team=incident.team_id,
        subject=incident,
        actor_label=ACTOR,
        payload={
            "incident_id": incident.pk,
            "step": step_no,
            "round": round_,
            "user_ids": paged,
            "skipped": not applies,
            "why": why,
            "next_step_at": incident.next_step_at and incident.next_step_at.isoformat(),
        },
    )


def _targets(incident: Incident, step: dict[str, Any], round_: int, now: datetime) -> list[Any]:
    """Who the step pages, in order, without duplicates and without deactivated accounts."""
    User = get_user_model()
    ids: list[int] = list(step.get("user_ids") or [])
    if step.get("schedule_id"):
        ids.extend(u.pk for u in _on_call(step["schedule_id"], now))
    if step.get("notify_team"):
        ids.extend(members_who_may(Action.RESPOND, incident.team_id).values_list("pk", flat=True))
    ordered = list(dict.fromkeys(ids))
    users = User.objects.in_bulk(ordered)
    people = [users[i] for i in ordered if i in users and users[i].is_active]
    if step.get("round_robin") and people:
        # One person per run, the next one each round; successive incidents start further on.
        return [people[(incident.pk + round_) % len(people)]]
    return people


def _on_call(schedule_id: int, now: datetime) -> list[Any]:
    from incidents.models import Schedule
    from incidents.oncall.rotations import on_call_users

    schedule = Schedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        return []
    return list(on_call_users(schedule, now))


def _page(incident: Incident, user: Any, round_: int, step_no: int, now: datetime) -> None:
    from incidents.notifications.links import make_action_link
    from incidents.notifications.outbox import page_user

    links = {
        action: make_action_link(incident, action, user) for action in ("acknowledge", "resolve")
    }
    page_user(
        user,
        incident,
        dedup_key=dedup_key(incident.pk, round_, step_no, user.pk),
        reason=f"escalation step {step_no + 1}" + (f", round {round_ + 1}" if round_ else ""),
        links=links,
        now=now,
    )


def expire_acknowledgements(now: datetime | None = None) -> int:
    """Acknowledged but not resolved within the policy's ack timeout: triggered again."""
    now = now or timezone.now()
    due = list(
        Incident.objects.filter(
            status=IncidentStatus.ACKNOWLEDGED, ack_timeout_at__lte=now
        ).values_list("pk", flat=True)[:BATCH]
    )
    done = 0
    for pk in due:
        with transaction.atomic():
            claimed = Incident.objects.filter(
                pk=pk, status=IncidentStatus.ACKNOWLEDGED, ack_timeout_at__lte=now
            ).update(ack_timeout_at=None)
            if not claimed:
                continue
            from incidents.lifecycle import services

            services.acknowledgement_expired(
                Incident.objects.get(pk=pk), actor_label=ACTOR, now=now
            )
            done += 1
    return done
