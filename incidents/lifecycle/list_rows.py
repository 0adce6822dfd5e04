"""The rows of the Incidents table, written as HTML here rather than by the template engine
(why: ``monitoring.views.alert_rows``). The markup is the one
``incidents/_incidents_table.html`` used to loop over; every value is escaped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from incidents.models import Incident
from monitoring.views import since_text
from monitoring.views.common import time_cell

NOBODY = '<span class="subtle">nobody</span>'


def incident_row(
    incident: Incident, *, now: datetime, can_bulk: bool, show_team: bool, url: str
) -> str:
    pk = incident.pk
    tick = ""
    if can_bulk:
        box = (
            f'<input type="checkbox" name="ids" value="{pk}" aria-label="Select incident #{pk}">'
            if incident.can_respond and incident.is_open
            else ""
        )
        tick = f"<td>{box}</td>"
    low = ' <span class="subtle">low urgency</span>' if incident.urgency == "low" else ""
    team = f'<div class="subtle">{escape(incident.team.name)}</div>' if show_team else ""
    assignee = escape(incident.assignee.get_username()) if incident.assignee else NOBODY
    return (
        f'<tr id="incident-{pk}" data-incident-id="{pk}" data-status="{escape(incident.status)}"'
        f' data-priority="{escape(incident.priority)}">{tick}'
        f'<td><span class="badge {incident.priority_class}" '
        f'title="{escape(incident.get_priority_display())}">{escape(incident.priority)}</span></td>'
        f'<td><span class="badge {incident.status_class}">'
        f"{escape(incident.get_status_display().lower())}</span></td>"
        f'<td><a href="{escape(url)}"><strong>#{pk} {escape(incident.title)}</strong></a>{low}</td>'
        f"<td>{escape(incident.service.name)}{team}</td>"
        + time_cell(incident.created_at, since_text(incident.created_at, now))
        + f'<td class="hide-narrow">{assignee}</td>'
        f'<td class="num">{incident.alert_count}</td></tr>'
    )


def incident_rows(
    incidents: Iterable[Incident], *, now: datetime, can_bulk: bool, show_team: bool
) -> SafeString:
    # One reverse for the page: the rows' links differ only in the id.
    prefix = reverse("incident", args=[0]).removesuffix("0/")
    return mark_safe(  # every value above went through escape()
        "\n".join(
            incident_row(i, now=now, can_bulk=can_bulk, show_team=show_team, url=f"{prefix}{i.pk}/")
            for i in incidents
        )
    )
