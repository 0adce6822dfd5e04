"""Admin for escalation policies, per-service incident settings and (read-only) incidents.

Who sees what (``tocsin.admin_mixins.TeamScopedAdmin``): superusers everything; managers the
rows of the teams they manage. Policies are saved through ``incidents.lifecycle.services`` (steps
and
all, in one call, so the event log records the policy as saved); incidents are never edited
here, only acknowledged or resolved through the same services the pages and the API use.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import HttpRequest
from django.utils.html import format_html

from incidents.lifecycle import services
from incidents.models import GroupingMode, Incident, ServiceIncidentSettings
from monitoring.admin.alerts import ServiceListFilter
from monitoring.models import Service
from tocsin.admin_mixins import ReadOnlyAdmin, TeamListFilter, TeamScopedAdmin
from tocsin.events import record
from tocsin.permissions import Action, can, scope
from tocsin.services import ServiceError


# -- per-service incident settings -------------------------------------------------------------
class SettingsForm(forms.ModelForm):
    group_labels = forms.CharField(
        required=False,
        help_text="For grouping by labels: label names separated by commas, e.g. "
        "“alertname, cluster”. Alerts with the same values of all of them join one incident.",
    )

    class Meta:
        model = ServiceIncidentSettings
        fields = (
            "service",
            "grouping_mode",
            "group_labels",
            "window_minutes",
            "auto_resolve",
            "reopen_window_minutes",
            "storm_threshold",
            "storm_window_minutes",
            "escalation_policy",
            "priority_map",
            "urgency_map",
        )
        help_texts = {
            "service": "The service these settings apply to (a service without settings uses "
            "the defaults: fingerprint grouping, no escalation policy).",
            "grouping_mode": "How alerts become incidents: by fingerprint (each distinct alert "
            "its own incident), by the values of some labels, or everything within a time "
            "window.",
            "window_minutes": "For grouping by time window: alerts within this many minutes of "
            "an open incident's start join it.",
            "escalation_policy": "Who is paged when an incident of this service opens. Without "
            "one, incidents open but nobody is paged.",
            "priority_map": 'Alert severity → incident priority, e.g. {"critical": "P1", '
            '"error": "P2", "warning": "P3", "info": "P4"}.',
            "urgency_map": "Alert severity → urgency (notification rules choose by it), e.g. "
            '{"critical": "high", "warning": "low"}.',
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = self.instance.group_labels if self.instance.pk else []
        if isinstance(labels, list):
            self.initial["group_labels"] = ", ".join(labels)

    def clean_group_labels(self) -> list[str]:
        raw = (self.cleaned_data.get("group_labels") or "").strip()
        if raw.startswith("["):  # the JSON list earlier versions asked for
            try:
                names = json.loads(raw)
            except ValueError:
                names = None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise forms.ValidationError("Label names separated by commas.")
            return [n.strip() for n in names if n.strip()]
        return [name.strip() for name in raw.split(",") if name.strip()]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("grouping_mode") == GroupingMode.LABELS and not data.get("group_labels"):
            self.add_error("group_labels", "Name at least one label to group by.")
        return data


@admin.register(ServiceIncidentSettings)
class ServiceIncidentSettingsAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = SettingsForm
    team_field = "service__team"
    list_display = ("service", "team_name", "grouping_mode", "auto_resolve", "escalation_policy")
    list_filter = (TeamListFilter, "grouping_mode")
    list_select_related = ("service__team", "escalation_policy")
    # The policy must be one of the service's team (the team comes through the service).
    team_scoped_fields = {"service": "team", "escalation_policy": "team"}

    @admin.display(description="team", ordering="service__team__name")
    def team_name(self, obj: ServiceIncidentSettings) -> str:
        return obj.service.team.name

    change_list_template = "admin/incidents/serviceincidentsettings/change_list.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("service",) if obj is not None else ()

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        """Every service the user manages is listed: those without a row use the defaults,
        which the table alone would hide ("0 service incident settings")."""
        on_defaults = (
            scope(Service.objects.select_related("team"), request.user, Action.MANAGE)
            .filter(incident_settings__isnull=True)
            .order_by("team__name", "name")
        )
        context = {"services_on_defaults": list(on_defaults[:200]), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def save_model(self, request: HttpRequest, obj: Any, form: BaseForm, change: bool) -> None:
        self.ensure_manages(request, obj)
        with transaction.atomic():
            obj.save()
            record(
                "incident_settings.updated" if change else "incident_settings.created",
                team=obj.service.team_id,
                subject=obj,
                actor=request.user,
                payload={
                    "service_id": obj.service_id,
                    "changed": sorted(form.changed_data),
                    # The previous values of what changed, for the audit trail.
                    "before": {
                        name: _plain(form.initial.get(name)) for name in sorted(form.changed_data)
                    }
                    if change
                    else {},
                    "grouping_mode": obj.grouping_mode,
                    "escalation_policy_id": obj.escalation_policy_id,
                },
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.ensure_manages(request, obj)
        with transaction.atomic():
            record(
                "incident_settings.deleted",
                team=obj.service.team_id,
                subject=obj,
                actor=request.user,
                payload={"service_id": obj.service_id},
            )
            obj.delete()


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


# -- incidents (read-only; acknowledge/resolve through the services) ---------------------------
@admin.action(description="Acknowledge selected incidents")
def acknowledge_incidents(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> None:
    _run(modeladmin, request, queryset, services.acknowledge, "acknowledged")


@admin.action(description="Resolve selected incidents")
def resolve_incidents(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> None:
    _run(modeladmin, request, queryset, services.resolve, "resolved")


def _run(modeladmin: Any, request: HttpRequest, queryset: QuerySet, operation: Any, word: str):
    done, refused = 0, []
    for incident in queryset.select_related("team"):
        if not can(request.user, Action.RESPOND, incident):
            refused.append(f"#{incident.pk}: not your team")
            continue
        try:
            done += int(operation(incident, actor=request.user, via="admin"))
        except ServiceError as exc:
            refused.append(f"#{incident.pk}: {exc.message}")
    modeladmin.message_user(request, f"{done} incident(s) {word}.", messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, "Not changed: " + "; ".join(refused), messages.WARNING)


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    """Read-only: the page shows the fields; incidents open from alerts, their history stays."""

    list_display = ("id", "title", "service", "status", "priority", "created_at")
    list_display_links = ("id", "title")
    list_filter = (TeamListFilter, ServiceListFilter, "status", "priority", "urgency")
    list_select_related = ("team", "service")
    search_fields = ("title", "=id")
    date_hierarchy = "created_at"
    actions = [acknowledge_incidents, resolve_incidents]
    changes_through_actions = True
    fields = (
        "page_link",
        "team",
        "service",
        "title",
        "summary",
        ("status", "priority", "urgency"),
        ("assignee", "commander"),
        ("created_at", "acknowledged_at", "resolved_at"),
        "merged_into",
        "group_key",
        ("current_step", "repeat_round", "next_step_at", "ack_timeout_at"),
        "policy_snapshot",
    )
    readonly_fields = tuple(
        name for item in fields for name in (item if isinstance(item, tuple) else (item,))
    )

    @admin.display(description="page")
    def page_link(self, incident: Incident) -> str:
        return format_html('<a href="{}">Open the incident page</a>', incident.get_absolute_url())
