"""The event log and its registry: ``record`` an event, ``on_event`` to hear of one.

- ``tocsin.events.kinds`` declares every kind and its payload, in one place.
- ``record(kind, ...)`` appends one event inside the caller's transaction and calls the kind's
  subscribers there, with the object the emitter has in hand.
- ``record_many([NewEvent(...), ...])`` appends a batch with one INSERT.
- ``on_event(kind, handler)`` subscribes per event, ``on_events(kind, batch_handler)`` per batch;
  apps call them in ``AppConfig.ready``. ``on_committed(callback)`` hears of each commit.
"""

from tocsin.events import kinds as _kinds  # noqa: F401  (declares every kind on import)
from tocsin.events.log import EventOutsideTransaction, NewEvent, record, record_many
from tocsin.events.registry import (
    EventKind,
    MissingPayloadKeys,
    UnknownEventKind,
    all_kinds,
    get_kind,
    on_committed,
    on_event,
    on_events,
)

__all__ = [
    "EventKind",
    "EventOutsideTransaction",
    "MissingPayloadKeys",
    "NewEvent",
    "UnknownEventKind",
    "all_kinds",
    "get_kind",
    "on_committed",
    "on_event",
    "on_events",
    "record",
    "record_many",
]
