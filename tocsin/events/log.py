"""Writing to the event log.

``record`` (one event) and ``record_many`` (a batch, one INSERT) are the only ways events are
written. They insist on running inside a transaction so the change and the event describing it
commit (or roll back) together: the live relay, timelines and audit trail then never show a
change that did not happen, nor miss one that did. They then call the kinds' subscribers
(``on_event``, ``on_events``) in that same transaction, and once the transaction commits, the
``on_committed`` callbacks (once per transaction, however many events it wrote).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from tocsin.audit.context import current_address
from tocsin.db import bulk
from tocsin.events.registry import check_payload, committed_callbacks, dispatch, get_kind
from tocsin.models import Event, Team

log = logging.getLogger(__name__)


class EventOutsideTransaction(RuntimeError):
    pass


@dataclass
class NewEvent:
    """One event for ``record_many``; the fields mean what ``record``'s arguments mean."""

    kind: str
    team: Team | int | None
    subject: Any = None
    subject_type: str = ""
    subject_id: str | int = ""
    subject_label: str = ""
    actor: Any = None
    actor_label: str = ""
    payload: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Event:
        declared = get_kind(self.kind)
        check_payload(declared, self.payload)
        subject_type, subject_id, subject_label = (
            self.subject_type,
            self.subject_id,
            self.subject_label,
        )
        if self.subject is not None and hasattr(self.subject, "_meta"):
            subject_type = subject_type or self.subject._meta.model_name
            subject_id = subject_id or self.subject.pk
            subject_label = subject_label or str(self.subject)
        actor = self.actor
        if actor is not None and not getattr(actor, "is_authenticated", False):
            actor = None
        actor_label = self.actor_label
        if actor is not None and not actor_label:
            actor_label = actor.get_username()
        return bulk.instance(
            Event,
            {
                "kind": self.kind,
                "team_id": self.team.pk if isinstance(self.team, Team) else self.team,
                "subject_type": subject_type,
                "subject_id": str(subject_id) if subject_id != "" else "",
                "subject_label": subject_label[:200],
                "actor_id": actor.pk if actor is not None else None,
                "actor_label": actor_label[:150],
                "payload": self.payload,
                "ip": current_address(),  # the request's client, for the audit trail
            },
        )


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
    new = NewEvent(
        kind,
        team,
        subject=subject,
        subject_type=subject_type,
        subject_id=subject_id,
        subject_label=subject_label,
        actor=actor,
        actor_label=actor_label,
        payload=payload or {},
    )
    _require_transaction(kind)
    event = new.build()
    event.save(force_insert=True)
    _after_write([(event, subject)])
    return event


def record_many(items: list[NewEvent]) -> list[Event]:
    """Append several events with one INSERT, then tell their subscribers: per-event handlers
    for each, batch handlers once with all of their kinds' events. Call it inside
    ``transaction.atomic()``; every event is checked before any is written."""
    if not items:
        return []
    _require_transaction(items[0].kind)
    events = [item.build() for item in items]
    bulk.insert(events)
    _after_write([(event, item.subject) for event, item in zip(events, items, strict=True)])
    return events


def _require_transaction(kind: str) -> None:
    if not connection.in_atomic_block:
        raise EventOutsideTransaction(
            f"record({kind!r}) must run inside transaction.atomic() with the change it describes"
        )


def _after_write(pairs: list[tuple[Event, Any]]) -> None:
    _CommitNotice.note(pairs)
    dispatch(pairs)


class _CommitNotice:
    """What one transaction wrote, for the ``on_committed`` callbacks: one notice per commit.

    Kept on the connection (one per thread). A notice registered inside a savepoint that rolled
    back is gone from Django's on-commit list; the next event then starts a new one.
    """

    ATTRIBUTE = "_tocsin_commit_notice"

    def __init__(self) -> None:
        self.team_ids: set[int | None] = set()
        self.last_id = 0

    @classmethod
    def note(cls, pairs: list[tuple[Event, Any]]) -> None:
        if not committed_callbacks():
            return
        wrapper = connections[DEFAULT_DB_ALIAS]
        notice = getattr(wrapper, cls.ATTRIBUTE, None)
        if notice is None or not any(f == notice.send for _, f, _ in wrapper.run_on_commit):
            notice = cls()
            setattr(wrapper, cls.ATTRIBUTE, notice)
            transaction.on_commit(notice.send, robust=True)
        for event, _subject in pairs:
            notice.team_ids.add(event.team_id)
            notice.last_id = max(notice.last_id, event.pk)

    def send(self) -> None:
        wrapper = connections[DEFAULT_DB_ALIAS]
        if getattr(wrapper, self.ATTRIBUTE, None) is self:
            delattr(wrapper, self.ATTRIBUTE)
        for callback in committed_callbacks():
            try:
                callback(set(self.team_ids), self.last_id)
            except Exception:
                log.exception("on_committed callback %r failed", callback)
