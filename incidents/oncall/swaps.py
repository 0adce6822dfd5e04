"""Shift swaps: one person asks, the other accepts, and the swap becomes an override.

Both sides hear of it (notifications through the outbox); a swap is claimed with a row lock so
two takers cannot both accept."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from incidents.notifications import outbox as notify
from incidents.oncall.models import (
    Schedule,
    ScheduleLayerMember,
    ShiftSwapRequest,
    SwapStatus,
)

# --- shift swaps --------------------------------------------------------------------------------
from incidents.oncall.rotations import shifts
from incidents.oncall.services import _check_window, _require_responder, _write_override
from tocsin.events import record
from tocsin.permissions import Action, can
from tocsin.services import ServiceError


def _swap_payload(swap: ShiftSwapRequest) -> dict[str, Any]:
    return {
        "swap_id": swap.pk,
        "schedule_id": swap.schedule_id,
        "requester": swap.requester.get_username(),
        "proposed_taker": swap.proposed_taker and swap.proposed_taker.get_username(),
        "taker": swap.taker and swap.taker.get_username(),
        "start": swap.start.isoformat(),
        "end": swap.end.isoformat(),
        "status": swap.status,
    }


def _swap_text(swap: ShiftSwapRequest) -> str:
    tz = swap.schedule.zone
    start, end = swap.start.astimezone(tz), swap.end.astimezone(tz)
    return (
        f"{swap.schedule.name}: {start:%a %d %b %H:%M} to {end:%a %d %b %H:%M} "
        f"({swap.schedule.time_zone})"
    )


def _tell_about_swap(swap: ShiftSwapRequest, recipients: Iterable[Any], what: str) -> None:
    """Let the people a swap concerns know, in the transaction that changed it.

    ``what`` is the event kind (``swap.requested``, ``swap.accepted``…); one message per person
    and event, so a retried transition never tells anyone twice.
    """
    verbs = {
        "swap.requested": f"{swap.requester.get_username()} asks you to take a shift",
        "swap.accepted": f"{swap.taker and swap.taker.get_username()} took your shift",
        "swap.declined": "Your shift swap request was declined",
        "swap.cancelled": f"{swap.requester.get_username()} withdrew a shift swap request",
    }
    subject = f"[Tocsin] {verbs[what]}"
    body = "\n".join(
        line
        for line in (
            f"{verbs[what]}.",
            _swap_text(swap),
            f"Note: {swap.note}" if swap.note else "",
        )
        if line
    )
    link = settings.TOCSIN_BASE_URL + reverse("schedule", args=[swap.schedule_id])
    for user in {u.pk: u for u in recipients if u is not None and u.is_active}.values():
        notify.message_user(
            user,
            team_id=swap.schedule.team_id,
            dedup_key=f"swap-{swap.pk}:{what}:user-{user.pk}",
            event_kind=what,
            subject=subject,
            body=body,
            links={"schedule": link},
        )


def _swap_candidates(swap: ShiftSwapRequest) -> list[Any]:
    """Who is asked: the proposed taker, or else everyone else in the schedule's rotations
    who may take a shift."""
    if swap.proposed_taker_id is not None:
        return [swap.proposed_taker]
    members = ScheduleLayerMember.objects.filter(layer__schedule=swap.schedule_id).select_related(
        "user"
    )
    return [
        m.user
        for m in members
        if m.user_id != swap.requester_id and can(m.user, Action.RESPOND, swap.schedule.team_id)
    ]


def request_swap(
    schedule: Schedule,
    requester: Any,
    start: datetime,
    end: datetime,
    *,
    proposed_taker: Any = None,
    note: str = "",
) -> ShiftSwapRequest:
    """Ask for someone to take [start, end), which the requester must be on call for."""
    if not can(requester, Action.RESPOND, schedule.team_id):
        raise PermissionDenied("only responders and managers of the team may swap shifts")
    _check_window(start, end)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start < timezone.now() - timedelta(minutes=5):
        raise ServiceError("the shift must not have started yet", "start")
    if proposed_taker is not None:
        if proposed_taker.pk == requester.pk:
            raise ServiceError("propose someone other than yourself", "proposed_taker")
        _require_responder(schedule, proposed_taker, "proposed_taker")
    covered = sum(
        (s.duration for s in shifts(schedule, start, end) if s.user.pk == requester.pk),
        timedelta(),
    )
    if covered < end - start:
        raise ServiceError("you are not on call for the whole of this window", "start")
    with transaction.atomic():
        swap = ShiftSwapRequest.objects.create(
            schedule=schedule,
            requester=requester,
            start=start,
            end=end,
            proposed_taker=proposed_taker,
            note=(note or "")[:200],
        )
        record(
            "swap.requested",
            team=schedule.team_id,
            subject=schedule,
            actor=requester,
            payload=_swap_payload(swap),
        )
        _tell_about_swap(swap, _swap_candidates(swap), "swap.requested")
    return swap


def _lock_open(swap: ShiftSwapRequest) -> ShiftSwapRequest:
    """Re-read the swap under a row lock: two people accepting at once must not both win."""
    locked = (
        ShiftSwapRequest.objects.select_for_update(of=("self",))
        .select_related("schedule", "requester", "proposed_taker")
        .get(pk=swap.pk)
    )
    if locked.status != SwapStatus.OPEN:
        raise ServiceError(f"this swap request is already {locked.status}", None, "conflict")
    return locked


def _sync(target: ShiftSwapRequest, source: ShiftSwapRequest) -> ShiftSwapRequest:
    for field in ("status", "taker_id", "override_id", "decided_at", "decided_by_id"):
        setattr(target, field, getattr(source, field))
    for cached in ("taker", "override", "decided_by"):
        target._state.fields_cache.pop(cached, None)
    return target


def accept_swap(swap: ShiftSwapRequest, taker: Any) -> ShiftSwapRequest:
    """``taker`` takes the shift: an override for them is written in the same transaction."""
    schedule = swap.schedule
    if not can(taker, Action.RESPOND, schedule.team_id):
        raise PermissionDenied("only responders and managers of the team may take shifts")
    with transaction.atomic():
        locked = _lock_open(swap)
        if locked.requester_id == taker.pk:
            raise ServiceError("you cannot take your own shift; cancel the request instead")
        if locked.proposed_taker_id is not None and locked.proposed_taker_id != taker.pk:
            raise PermissionDenied("this request was made to someone else")
        _require_responder(schedule, taker, "taker")
        override = _write_override(
            schedule,
            taker,
            locked.start,
            locked.end,
            actor=taker,
            reason=f"shift swap #{locked.pk} from {locked.requester.get_username()}",
        )
        locked.status = SwapStatus.ACCEPTED
        locked.taker = taker
        locked.override = override
        locked.decided_at = timezone.now()
        locked.decided_by = taker
        locked.save(update_fields=["status", "taker", "override", "decided_at", "decided_by"])
        record(
            "swap.accepted",
            team=schedule.team_id,
            subject=schedule,
            actor=taker,
            payload=_swap_payload(locked),
        )
        _tell_about_swap(locked, [locked.requester], "swap.accepted")
    return _sync(swap, locked)


def decline_swap(swap: ShiftSwapRequest, actor: Any) -> ShiftSwapRequest:
    """The proposed taker says no (managers may decline any open request)."""
    schedule = swap.schedule
    asked = swap.proposed_taker_id is not None and swap.proposed_taker_id == actor.pk
    if not (asked or can(actor, Action.MANAGE, schedule.team_id)):
        raise PermissionDenied("only the person asked, or a manager, may decline")
    return _close(swap, actor, SwapStatus.DECLINED, "swap.declined")


def cancel_swap(swap: ShiftSwapRequest, actor: Any) -> ShiftSwapRequest:
    """The requester withdraws the request (managers may too)."""
    if actor.pk != swap.requester_id and not can(actor, Action.MANAGE, swap.schedule.team_id):
        raise PermissionDenied("only the requester, or a manager, may cancel")
    return _close(swap, actor, SwapStatus.CANCELLED, "swap.cancelled")


def _close(swap: ShiftSwapRequest, actor: Any, status: str, kind: str) -> ShiftSwapRequest:
    with transaction.atomic():
        locked = _lock_open(swap)
        locked.status = status
        locked.decided_at = timezone.now()
        locked.decided_by = actor
        locked.save(update_fields=["status", "decided_at", "decided_by"])
        record(
            kind,
            team=locked.schedule.team_id,
            subject=locked.schedule,
            actor=actor,
            payload=_swap_payload(locked),
        )
        # Declined: the requester hears it. Cancelled: whoever was asked by name does.
        told = [locked.requester] if kind == "swap.declined" else [locked.proposed_taker]
        _tell_about_swap(locked, [u for u in told if u is not None and u.pk != actor.pk], kind)
    return _sync(swap, locked)
