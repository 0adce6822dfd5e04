"""Admin for response targets: managers edit their teams' targets, superusers everyone's.

Saved through ``incidents.slas.services`` so each change is in the event log; the form offers only
the
teams and services the user manages, and a service of another team is refused.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms import BaseForm
from django.http import HttpRequest

from incidents.models import ResponseTarget
from incidents.slas import services as slas
from monitoring.models import Service
from tocsin.admin_mixins import TeamListFilter, TeamScopedAdmin, adopt
from tocsin.permissions import Action, scope


@admin.register(ResponseTarget)
class ResponseTargetAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ("priority", "team", "service_name", "ack_minutes", "resolve_minutes")
    list_display_links = ("priority",)
    list_filter = (TeamListFilter, "priority")
    list_select_related = ("team", "service")
    fields = ("team", "service", "priority", ("ack_minutes", "resolve_minutes"))

    @admin.display(description="service", ordering="service__name")
    def service_name(self, target: ResponseTarget) -> str:
        return target.service.name if target.service_id else "all services"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("team",) if obj is not None else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "service":
            kwargs["queryset"] = scope(
                Service.objects.select_related("team"), request.user, Action.MANAGE
            ).exclude(slug=slas.SLA_SERVICE_SLUG)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def clean_admin_form(self, request: HttpRequest, form: BaseForm, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        team = form.cleaned_data.get("team") or (obj.team if obj else None)
        service = form.cleaned_data.get("service")
        if team is not None and service is not None and service.team_id != team.pk:
            form.add_error("service", "Choose a service of the target's team.")

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
