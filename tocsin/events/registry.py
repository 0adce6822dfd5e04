"""The event registry: which kinds of event exist, what their payload carries, who listens.

Every kind is declared once (``tocsin.events.kinds``) and every subscriber registers with a visible
call, ``on_event("alert.firing", handler)``, usually in an ``AppConfig.ready``. ``record()`` calls
the subscribers of the kind it writes in the same transaction, handing them the event and the
object the emitter already has in hand (``subject``), so a subscriber never re-reads what the
emitter just wrote and its changes commit or roll back together with the event.

This is the one seam between apps that must not import each other: ``monitoring`` records
``alert.firing``; ``incidents`` subscribes to it and opens an incident.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tocsin.models import Event

Handler = Callable[["Event", Any], None]
# A batch subscriber: every (event, subject) of its kinds that one ``record``/``record_many``
# call wrote, in order, so it can do for a batch of alerts what it does for one in as many
# queries.
BatchHandler = Callable[[list[tuple["Event", Any]]], None]
# Told once after each committed transaction that recorded events: (team ids, last event id).
CommittedCallback = Callable[[set[int | None], int], None]


class UnknownEventKind(LookupError):
    """A kind that was never declared: a typo here would silently break every subscriber."""


class MissingPayloadKeys(ValueError):
    """An emitter left out a payload key that the kind's declaration promises its subscribers."""


@dataclass(frozen=True)
class EventKind:
    name: str
    description: str
    # Keys every event of this kind carries in its payload; subscribers and pages may rely on
    # them. Kinds whose payload is a snapshot of a configuration object declare none.
    payload: tuple[str, ...] = ()

    @property
    def area(self) -> str:
        return self.name.split(".", 1)[0]


_KINDS: dict[str, EventKind] = {}
_SUBSCRIBERS: dict[str, list[Handler]] = {}
_BATCH_SUBSCRIBERS: dict[str, list[BatchHandler]] = {}
_COMMITTED: list[CommittedCallback] = []


def declare(name: str, description: str, payload: Iterable[str] = ()) -> EventKind:
    if name in _KINDS:
        raise ValueError(f"event kind {name!r} is declared twice")
    kind = EventKind(name, description, tuple(payload))
    _KINDS[name] = kind
    return kind


def declare_config(area: str, noun: str, *actions: str) -> None:
    """Configuration changes: ``<area>.created`` / ``.updated`` / ``.deleted`` with a snapshot."""
    for action in actions or ("created", "updated", "deleted"):
        declare(f"{area}.{action}", f"{noun} {action.replace('_', ' ')}")


def get_kind(name: str) -> EventKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownEventKind(
            f"event kind {name!r} is not declared in tocsin.events.kinds"
        ) from None


def all_kinds() -> list[EventKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.name)


def on_event(kinds: str | Iterable[str], handler: Handler) -> Handler:
    """Call ``handler(event, subject)`` inside ``record()`` for every event of these kinds."""
    for name in [kinds] if isinstance(kinds, str) else list(kinds):
        get_kind(name)
        handlers = _SUBSCRIBERS.setdefault(name, [])
        if handler not in handlers:  # ready() may run twice in some test set-ups
            handlers.append(handler)
    return handler


def on_events(kinds: str | Iterable[str], handler: BatchHandler) -> BatchHandler:
    """Call ``handler(pairs)`` once per ``record``/``record_many`` call with every
    ``(event, subject)`` of these kinds it wrote (one pair when ``record`` wrote one event)."""
    for name in [kinds] if isinstance(kinds, str) else list(kinds):
        get_kind(name)
        handlers = _BATCH_SUBSCRIBERS.setdefault(name, [])
        if handler not in handlers:
            handlers.append(handler)
    return handler


def on_committed(callback: CommittedCallback) -> CommittedCallback:
    """Call ``callback(team_ids, last_event_id)`` once after every committed transaction that
    recorded events, in the process that committed it (the live relay's publish hook). A
    callback that raises is logged and does not disturb the others: the events are stored."""
    if callback not in _COMMITTED:
        _COMMITTED.append(callback)
    return callback


def committed_callbacks() -> list[CommittedCallback]:
    return list(_COMMITTED)


def subscribers(name: str) -> list[Handler]:
    return list(_SUBSCRIBERS.get(name, ()))


def check_payload(kind: EventKind, payload: dict[str, Any]) -> None:
    missing = [key for key in kind.payload if key not in payload]
    if missing:
        raise MissingPayloadKeys(f"{kind.name} needs payload keys {', '.join(missing)}")


def dispatch(pairs: list[tuple[Event, Any]]) -> None:
    """Tell the subscribers of the events just written: per-event handlers for each event, then
    each batch handler once with all the pairs of its kinds (in the order they were written)."""
    for event, subject in pairs:
        for handler in _SUBSCRIBERS.get(event.kind, ()):
            handler(event, subject)
    batch_handlers: dict[BatchHandler, list[tuple[Event, Any]]] = {}
    for pair in pairs:
        for handler in _BATCH_SUBSCRIBERS.get(pair[0].kind, ()):
            batch_handlers.setdefault(handler, []).append(pair)
    for handler, its_pairs in batch_handlers.items():
        handler(its_pairs)
