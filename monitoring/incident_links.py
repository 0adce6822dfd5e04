"""Which incident an alert joined, as told by the app that groups alerts into incidents.

Monitoring cannot import ``incidents``; the alert page still says "joined incident #12". The
incidents app registers a finder here from its ``AppConfig.ready()`` (``incidents.apps``), as it
declares what alert retention must keep (``monitoring.retention.keep_alerts_where``). Without a
finder (monitoring alone), an alert has no incident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AlertIncident:
    """What the alert page shows of the incident an alert belongs to."""

    incident_id: int
    title: str
    url: str
    status: str  # the incident's state, as its own page words it ("Triggered", "Resolved", …)
    joined_at: datetime | None
    # Why the alert is in it: "opened it" / "joined it because it has the same fingerprint" …
    why: str = ""


# alert → its incident, or None; at most a query or two.
IncidentFinder = Callable[[Any], AlertIncident | None]
_finder: IncidentFinder | None = None


def register_incident_finder(finder: IncidentFinder) -> None:
    """Declare how to find an alert's incident; registering again replaces the finder."""
    global _finder
    _finder = finder


def incident_of(alert: Any) -> AlertIncident | None:
    return _finder(alert) if _finder is not None else None
