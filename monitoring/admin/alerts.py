"""Admin for the service catalog and alerts.

Who sees what (``tocsin.admin_mixins.TeamScopedAdmin``): superusers everything; managers the
services and integrations of the teams they manage, and the alerts of the teams they can view.
Writes go through ``monitoring.services`` so the event log records them. Ingest keys are shown
once, in a message, when an integration is created or its key rotated; integrations are revoked,
never deleted (their alerts keep pointing at them). Alerts are read-only: the pipeline owns them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from monitoring import services
from monitoring.models import Alert, Integration, Service, Suppression
from monitoring.suppression import silence_alert
from tocsin.admin_mixins import Operation, ReadOnlyAdmin, TeamListFilter, TeamScopedAdmin, adopt
from tocsin.permissions import Action, can, scope
from tocsin.services import ServiceError

SILENCE_FOR = timedelta(hours=1)


# -- services --------------------------------------------------------------------------------------
class TagsField(forms.CharField):
    """Tags typed as "payments, tier-1"; stored as a list."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        if isinstance(value, str) and value.startswith("["):  # the form's initial JSON text
            try:
                return ", ".join(json.loads(value))
            except ValueError:
                return value
        return value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value)
        return [tag.strip().lower() for tag in text.split(",") if tag.strip()]


class ServiceForm(forms.ModelForm):
    tags = TagsField(required=False, help_text="Comma-separated, e.g. “payments, tier-1”.")
    runbook_url = forms.URLField(required=False, label="Runbook URL", assume_scheme="https")

    class Meta:
        model = Service
        fields = ("team", "name", "slug", "description", "runbook_url", "tags")


@admin.register(Service)
class ServiceAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = ServiceForm
    list_display = ("name", "team", "firing_alerts", "integration_links", "tag_list")
    list_filter = (TeamListFilter,)
    list_select_related = ("team",)
    search_fields = ("name", "slug", "description", "tags")
    search_help_text = "Search by name, slug, description or tag."
    readonly_fields = ("created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                firing_count=services.firing_count(),
                integration_count=services.integration_count(),
            )
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ServiceForm.Meta.fields
        return (*ServiceForm.Meta.fields, "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        # Moving a service between teams would move its alerts' history: not offered.
        return ("team", "slug", "created_at")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "slug" in form.base_fields:
            form.base_fields["slug"].required = False
            form.base_fields["slug"].help_text = "Leave empty to derive it from the name."
        return form

    def clean_admin_form(self, request: HttpRequest, form: BaseForm, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        team = form.cleaned_data.get("team") if "team" in form.fields else None
        if obj is None and team is not None and services.is_system_team(team):
            form.add_error("team", "The “Tocsin (system)” team is built in: pick your own team.")

    @admin.display(description="firing", ordering="firing_count")
    def firing_alerts(self, service: Service) -> str:
        if not service.firing_count:
            return "0"
        url = reverse("admin:monitoring_alert_changelist")
        return format_html(
            '<a href="{}?service={}&amp;status__exact=firing"><strong>{}</strong></a>',
            url,
            service.pk,
            service.firing_count,
        )

    @admin.display(description="integrations", ordering="integration_count")
    def integration_links(self, service: Service) -> str:
        url = reverse("admin:monitoring_integration_changelist")
        return format_html(
            '<a href="{}?service={}">{}</a>', url, service.pk, service.integration_count
        )

    @admin.display(description="tags")
    def tag_list(self, service: Service) -> str:
        return ", ".join(service.tags)

    def save_model(self, request: HttpRequest, obj: Service, form: BaseForm, change: bool) -> None:
        self.ensure_manages(request, obj)
        data = form.cleaned_data
        if not change:
            service = services.create_service(
                data["team"],
                data["name"],
                actor=request.user,
                slug=data.get("slug") or "",
                description=data.get("description", ""),
                runbook_url=data.get("runbook_url", ""),
                tags=data.get("tags"),
            )
            adopt(obj, service)
            return
        changes = {
            name: data[name] for name in form.changed_data if name in services.SERVICE_FIELDS
        }
        for name in changes:  # the form applied them; the service records before/after
            setattr(obj, name, form.initial.get(name))
        services.update_service(obj, actor=request.user, **changes)

    def delete_model(self, request: HttpRequest, obj: Service) -> None:
        self.ensure_manages(request, obj)
        services.delete_service(obj, actor=request.user)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, ...]:
        """Services with alerts cannot go: say so up front instead of listing every alert."""
        services_ = list(objs)
        protected = [
            f"{service}: it has alerts (they keep its history); rename it instead"
            for service in services_
            if service.alerts.exists()
        ]
        if protected:
            return [], {}, set(), protected
        return super().get_deleted_objects(services_, request)


class ServiceListFilter(admin.SimpleListFilter):
    """Filter by service, offering only the services of teams this user may see here (Django's
    related-field filter would name every team's services)."""

    title = "service"
    parameter_name = "service"

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        self.action = getattr(model_admin, "view_action", Action.MANAGE)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        visible = scope(Service.objects.select_related("team"), request.user, self.action)
        return [(str(s.pk), f"{s.team.name} / {s.name}") for s in visible]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdecimal():
            return queryset.filter(service=int(value))
        return queryset


# -- integrations ----------------------------------------------------------------------------------
class IntegrationStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class IntegrationForm(forms.ModelForm):
    class Meta:
        model = Integration
        fields = ("service", "kind", "name", "rate_limit_per_minute")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].choices = [(k.value, k.label) for k in services.USER_KINDS]
        if "name" in self.fields:
            self.fields["name"].required = False
            self.fields["name"].help_text = "Leave empty to name it after its kind."


def _show_key(modeladmin: Any, request: HttpRequest, integration: Integration, key: str, what: str):
    modeladmin.message_user(
        request,
        format_html(
            "{} for “{}” ({}): <code>{}</code> — copy it now, it is shown only this once. "
            "Sender URL: <code>{}</code>",
            what,
            integration,
            integration.get_kind_display(),
            key,
            services.ingest_url(integration.kind, key),
        ),
        messages.WARNING,
    )


@admin.register(Integration)
class IntegrationAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = IntegrationForm
    team_field = "service__team"
    list_display = (
        "name",
        "kind",
        "service",
        "team_name",
        "key_prefix_display",
        "last_received_at",
        "status",
    )
    list_filter = ("kind", TeamListFilter, IntegrationStatusFilter, ServiceListFilter)
    list_select_related = ("service", "service__team")
    search_fields = ("name", "key_prefix", "service__name")
    search_help_text = "Search by name, key prefix or service."
    actions = ("rotate_keys", "revoke_integrations")
    team_scoped_fields = {"service": "team"}
    refused_operations = (Operation.DELETE,)  # revoke instead: alerts keep pointing at it

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return IntegrationForm.Meta.fields
        return (
            *IntegrationForm.Meta.fields,
            "key_prefix_display",
            "ingest_url_display",
            "created_at",
            "key_rotated_at",
            "last_received_at",
            "revoked_at",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        readonly = (
            "service",
            "kind",
            "key_prefix_display",
            "ingest_url_display",
            "created_at",
            "key_rotated_at",
            "last_received_at",
            "revoked_at",
        )
        if obj.revoked_at is not None:
            return (*readonly, "name", "rate_limit_per_minute")
        return readonly

    @admin.display(description="team", ordering="service__team__name")
    def team_name(self, integration: Integration) -> str:
        return integration.service.team.name

    @admin.display(description="key prefix", ordering="key_prefix")
    def key_prefix_display(self, integration: Integration) -> str:
        return format_html("<code>{}…</code>", integration.key_prefix)

    @admin.display(description="sender URL")
    def ingest_url_display(self, integration: Integration) -> str:
        return format_html("<code>{}</code>", services.ingest_url(integration.kind))

    @admin.display(description="status", ordering="revoked_at")
    def status(self, integration: Integration) -> str:
        return "revoked" if integration.revoked_at else "active"

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request)

    def save_model(
        self, request: HttpRequest, obj: Integration, form: BaseForm, change: bool
    ) -> None:
        self.ensure_manages(request, obj)
        data = form.cleaned_data
        if not change:
            integration, key = services.create_integration(
                data["service"],
                data["kind"],
                data.get("name") or "",
                actor=request.user,
                rate_limit_per_minute=data.get("rate_limit_per_minute"),
            )
            adopt(obj, integration)
            _show_key(self, request, integration, key, "The new key")
            return
        changes = {
            name: data[name] for name in form.changed_data if name in services.INTEGRATION_FIELDS
        }
        for name in changes:
            setattr(obj, name, form.initial.get(name))
        services.update_integration(obj, actor=request.user, **changes)

    def _managed(self, request: HttpRequest, queryset: QuerySet) -> list[Integration]:
        rows = list(queryset.select_related("service", "service__team"))
        if any(not can(request.user, Action.MANAGE, row) for row in rows):
            raise PermissionDenied(self.not_your_team_message)
        return rows

    @admin.action(description="Rotate the key of selected integrations", permissions=["rotate"])
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        rotated = 0
        for integration in self._managed(request, queryset):
            if integration.revoked_at is not None:
                self.message_user(
                    request, f"“{integration}” is revoked; its key was not rotated.", messages.ERROR
                )
                continue
            key = services.rotate_key(integration, actor=request.user)
            _show_key(self, request, integration, key, "New key")
            rotated += 1
        if rotated:
            self.message_user(
                request,
                f"Rotated {rotated} key(s); the old keys stop working now.",
                messages.SUCCESS,
            )

    @admin.action(description="Revoke selected integrations", permissions=["rotate"])
    def revoke_integrations(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = 0
        for integration in self._managed(request, queryset):
            if integration.revoked_at is None:
                services.revoke_integration(integration, actor=request.user)
                revoked += 1
        if revoked:
            self.message_user(
                request,
                f"Revoked {revoked} integration(s); their keys are refused from now on.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, "The selected integrations were already revoked.")


# -- alerts ----------------------------------------------------------------------------------------
class SuppressionFilter(admin.SimpleListFilter):
    title = "suppression"
    parameter_name = "suppression"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        none = [("none", "Not suppressed")]
        return none + [(c.value, c.label) for c in Suppression if c.value]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "none":
            return queryset.filter(suppression="")
        if value in Suppression.values:
            return queryset.filter(suppression=value)
        return queryset


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    """Alerts as the pipeline left them, read-only; the team's viewers see the same on /alerts/."""

    view_action = Action.VIEW
    list_display = (
        "summary",
        "service",
        "team",
        "severity",
        "status",
        "suppression_display",
        "is_flapping",
        "occurrences",
        "last_seen_at",
    )
    list_filter = ("status", "severity", ServiceListFilter, SuppressionFilter, TeamListFilter)
    list_select_related = ("service", "team")
    search_fields = ("summary", "labels", "fingerprint")
    search_help_text = "Search in summary, labels or fingerprint."
    show_full_result_count = False
    fields = (
        "summary",
        "team",
        "service",
        "integration",
        "source",
        "status",
        "severity",
        "suppression_display",
        "is_flapping",
        "fingerprint",
        "labels_pretty",
        "annotations_pretty",
        "description",
        "generator_url",
        "starts_at",
        "ends_at",
        "first_seen_at",
        "last_seen_at",
        "last_change_at",
        "occurrences",
        "fired_count",
        "acknowledged_at",
    )
    readonly_fields = fields
    actions = ("silence_for_an_hour",)

    @admin.action(description="Silence selected alerts for 1 h (by their exact labels)")
    def silence_for_an_hour(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        silenced, refused = 0, []
        for alert in queryset.select_related("service", "team"):
            if not can(request.user, Action.RESPOND, alert):
                refused.append(f"{alert.summary}: your role does not allow silencing")
                continue
            try:
                silence_alert(alert, SILENCE_FOR, request.user, "Silenced for 1 h from the admin")
            except ServiceError as error:
                refused.append(f"{alert.summary}: {error.message}")
            else:
                silenced += 1
        if silenced:
            self.message_user(request, f"Silenced {silenced} alert(s) for one hour.")
        for problem in refused:
            self.message_user(request, problem, messages.ERROR)

    @admin.display(description="suppression", ordering="suppression")
    def suppression_display(self, alert: Alert) -> str:
        if not alert.suppression:
            return "—"
        label = alert.suppressed_by.get("label") if alert.suppressed_by else ""
        return f"{alert.get_suppression_display()}{f' ({label})' if label else ''}"

    @admin.display(description="labels")
    def labels_pretty(self, alert: Alert) -> str:
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li><code>{}={}</code></li>", sorted(alert.labels.items())),
        )

    @admin.display(description="annotations")
    def annotations_pretty(self, alert: Alert) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(alert.annotations, indent=2, sort_keys=True, default=str)
        )
