"""Decides whether a firing alert is suppressed: silences, inhibition rules, maintenance windows.

The pipeline asks ``find_suppression(alert, now)`` whenever an alert (re)fires; a periodic task
re-evaluates firing alerts when silences or windows start and end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Found:
    kind: str  # a monitoring.models.Suppression value
    object_id: int
    label: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.object_id, "label": self.label}


def find_suppression(alert: Any, now: datetime) -> Found | None:
    """What suppresses ``alert`` at ``now``, or None. Maintenance first, then silences, then
    inhibition (the order Alertmanager reports them in a UI is not significant)."""
    return None
