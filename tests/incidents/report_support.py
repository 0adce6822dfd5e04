"""A known data set for the report tests: exact figures, two weeks, two teams."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from incidents.models import Incident
from incidents.slas import services as slas
from monitoring.models import Service

M = timedelta(minutes=1)
WEEK1 = date(2025, 1, 13)  # a Monday
WEEK2 = date(2025, 1, 20)
WEEK2_NOON = datetime(2025, 1, 22, 12, 0, tzinfo=UTC)
SINCE, UNTIL = "2025-01-13", "2025-01-26"
RANGE = {"since": SINCE, "until": UNTIL}


@dataclass
class Data:
    checkout: Service
    ledger: Service
    search: Service  # the other team's


def _incident(service: Service, created: datetime, ack=None, resolved=None, **extra) -> Incident:
    return Incident.objects.create(
        team=service.team,
        service=service,
        title=f"{service.name} at {created:%a %H:%M}",
        created_at=created,
        acknowledged_at=created + ack * M if ack is not None else None,
        resolved_at=created + resolved * M if resolved is not None else None,
        status="resolved" if resolved is not None else ("acknowledged" if ack else "triggered"),
        **extra,
    )


def build(crew) -> Data:
    """Payments (crew.team), in range:

    - week 1: checkout ack 4 min, resolved 30; checkout ack 10, resolved 90, both targets
      missed; ledger still open;
    - week 2: ledger ack 2, resolved 20.

    Not counted for Payments: a checkout incident merged into another, an SLA-alert incident,
    one before the range, and the Search team's incident (week 1, ack 1, resolved 5).
    """
    checkout = Service.objects.create(team=crew.team, name="Checkout API")
    ledger = Service.objects.create(team=crew.team, name="Ledger")
    search = Service.objects.create(team=crew.other_team, name="Search API")
    sla_service = Service.objects.create(
        team=crew.team, name=slas.SLA_SERVICE_NAME, slug=slas.SLA_SERVICE_SLUG
    )
    wed = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    first = _incident(checkout, wed, ack=4, resolved=30)
    _incident(
        checkout,
        wed + timedelta(days=1),
        ack=10,
        resolved=90,
        ack_breached_at=wed + timedelta(days=1, minutes=5),
        resolve_breached_at=wed + timedelta(days=1, minutes=60),
    )
    _incident(ledger, wed + timedelta(days=2))
    _incident(ledger, datetime(2025, 1, 20, 9, 0, tzinfo=UTC), ack=2, resolved=20)
    _incident(checkout, wed, ack=1, resolved=2, merged_into=first, group_key="merged")
    _incident(sla_service, wed, ack=50, resolved=60)
    _incident(checkout, datetime(2025, 1, 12, 23, 59, tzinfo=UTC), ack=1, resolved=1)
    _incident(search, wed, ack=1, resolved=5)
    return Data(checkout=checkout, ledger=ledger, search=search)
