"""``{% public_update_form incident %}``: the incident page's "post a public update" form, drawn
for responders when one of the team's status pages covers the incident's service."""

from __future__ import annotations

from typing import Any

from django import template

from incidents.statuspages.models import PublicImpact, PublicIncident, PublicIncidentStatus
from incidents.statuspages.publishing import pages_for_incident
from tocsin.permissions import Action, can

register = template.Library()


@register.inclusion_tag("statuspages/_incident_public_update.html", takes_context=True)
def public_update_form(context: Any, incident: Any) -> dict[str, Any]:
    request = context.get("request")
    if request is None or not can(request.user, Action.RESPOND, incident):
        return {"pages": []}
    pages = list(pages_for_incident(incident))
    public = {
        p.page_id: p for p in PublicIncident.objects.filter(incident=incident, page__in=pages)
    }
    return {
        "incident": incident,
        "pages": [{"page": page, "public": public.get(page.pk)} for page in pages],
        "statuses": PublicIncidentStatus.choices,
        "impacts": PublicImpact.choices,
        "csrf_token": context.get("csrf_token"),
    }
