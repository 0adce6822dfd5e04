"""Lookups the APIs of services' configuration share (silences, maintenance, checks, heartbeats)."""

from __future__ import annotations

from typing import Any

from monitoring.models import Service
from tocsin.api.lookups import id_in_body
from tocsin.models import Team
from tocsin.permissions import Action, scope


def service_team_in_body(request: Any) -> Team | None:
    """The team of the service a write names, as ``tocsin.api.lookups.team_in_body`` does for
    teams: views return it from ``permission_team`` so that a member whose role is too low gets
    403 before the input is read; a service the caller cannot see is left to validation (400)."""
    pk = id_in_body(request, "service")
    if pk is None:
        return None
    visible = scope(Service.objects.select_related("team"), request.user, Action.VIEW)
    service = visible.filter(pk=pk).first()
    return service.team if service else None
