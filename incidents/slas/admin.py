"""Admin for response targets: managers edit their teams' targets, superusers everyone's.

Saved through ``incidents.slas.services`` so each change is in the event log; the form offers only
the
teams and services the user manages, and a service of another team is refused.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import HttpRequest

from incidents.models import ResponseTarget
from incidents.slas import services as slas
from tocsin.admin_mixins import TeamListFilter, TeamScopedAdmin, adopt


@admin.register(ResponseTarget)
class ResponseTargetAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ("priority", "team", "service_name", "ack_minutes", "resolve_minutes")
    list_display_links = ("priority",)
    list_filter = (TeamListFilter, "priority")
    list_select_related = ("team", "service")
    fields = ("team", "service", "priority", ("ack_minutes", "resolve_minutes"))
    team_scoped_fields = {"service": "team"}

    @admin.display(description="service", ordering="service__name")
    def service_name(self, target: ResponseTarget) -> str:
        return target.service.name if target.service_id else "all services"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("team",) if obj is not None else ()

    def team_scoped_choices(self, db_field: Any, request: HttpRequest) -> QuerySet:
        # The internal service that carries SLA-breach alerts has no targets of its own.
        return super().team_scoped_choices(db_field, request).exclude(slug=slas.SLA_SERVICE_SLUG)

    def save_model(self, request: HttpRequest, obj: Any, form: BaseForm, change: bool) -> None:
        self.ensure_manages(request, obj)
        fields = {name: getattr(obj, name) for name in slas.TARGET_FIELDS}
        if change:
            slas.update_target(obj, actor=request.user, **fields)
        else:
            adopt(obj, slas.create_target(obj.team, actor=request.user, **fields))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.ensure_manages(request, obj)
        slas.delete_target(obj, actor=request.user)
