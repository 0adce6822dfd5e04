"""Writing to the event log.

``record`` is the only way events are written. It insists on running inside a transaction so the
change and the event describing it commit (or roll back) together: the live relay, timelines and
audit trail then never show a change that did not happen, nor miss one that did. It then calls
the kind's subscribers (``on_event``) in that same transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from tocsin.events.registry import check_payload, dispatch, get_kind
from tocsin.models import Event, Team


class EventOutsideTransaction(RuntimeError):
    pass


def record(
    kind: str,
    *,
    team: Team | int | None,
    subject: Any = None,
    subject_type: str = "",
    subject_id: str | int = "",
    subject_label: str = "",
    actor: Any = None,
    actor_label: str = "",
    payload: dict[str, Any] | None = None,
) -> Event:
    """Append one event and tell its subscribers. Call it inside ``transaction.atomic()``.

    ``subject`` may be a model instance; its type (model name), id and str() are taken from it
    unless given explicitly, and subscribers receive it as it is (no re-read).
    """
    if not connection.in_atomic_block:
        raise EventOutsideTransaction(
            f"record({kind!r}) must run inside transaction.atomic() with the change it describes"
        )
    declared = get_kind(kind)
    payload = payload or {}
    check_payload(declared, payload)
    if subject is not None and hasattr(subject, "_meta"):
        subject_type = subject_type or subject._meta.model_name
        subject_id = subject_id or subject.pk
        subject_label = subject_label or str(subject)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if actor is not None and not actor_label:
        actor_label = actor.get_username()
    team_id = team.pk if isinstance(team, Team) else team
    event = Event.objects.create(
        kind=kind,
        team_id=team_id,
        subject_type=subject_type,
        subject_id=str(subject_id) if subject_id != "" else "",
        subject_label=subject_label[:200],
        actor=actor,
        actor_label=actor_label[:150],
        payload=payload,
    )
    dispatch(event, subject)
    return event
