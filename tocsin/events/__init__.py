"""The event log and its registry: ``record`` an event, ``on_event`` to hear of one.

- ``tocsin.events.kinds`` declares every kind and its payload, in one place.
- ``record(kind, ...)`` appends one event inside the caller's transaction and calls the kind's
  subscribers there, with the object the emitter has in hand.
- ``on_event(kind, handler)`` subscribes; apps call it in ``AppConfig.ready``.
"""

from tocsin.events import kinds as _kinds  # noqa: F401  (declares every kind on import)
from tocsin.events.log import EventOutsideTransaction, record
from tocsin.events.registry import (
    EventKind,
    MissingPayloadKeys,
    UnknownEventKind,
    all_kinds,
    get_kind,
    on_event,
)

__all__ = [
    "EventKind",
    "EventOutsideTransaction",
    "MissingPayloadKeys",
    "UnknownEventKind",
    "all_kinds",
    "get_kind",
    "on_event",
    "record",
]
