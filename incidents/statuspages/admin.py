"""Status pages in the admin, scoped to the teams a manager manages (``TeamScopedAdmin``).

Pages, groups and components are saved through ``incidents.statuspages.services`` (validation,
event log); public incidents and their updates are posted through ``publishing`` and shown
read-only here (an update once published is history); subscribers may be removed, deliveries
are the system's own rows (read-only: a failed one stays visible with its error).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import URLField
from django.http import HttpRequest

from incidents.statuspages import services, subscribers
from incidents.statuspages.models import (
    Component,
    ComponentGroup,
    MaintenanceNotice,
    PublicIncident,
    PublicUpdate,
    StatusDelivery,
    StatusPage,
    StatusSubscriber,
)
from tocsin.admin_mixins import (
    Operation,
    ReadOnlyAdmin,
    TeamListFilter,
    TeamScopedAdmin,
    adopt,
)


@admin.register(StatusPage)
class StatusPageAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ("title", "team", "slug", "published", "custom_domain")
    list_filter = (TeamListFilter, "published")
    list_select_related = ("team",)
    search_fields = ("title", "slug", "custom_domain")
    fields = (
        "team",
        "title",
        "slug",
        "description",
        "published",
        "services",
        *services.PAGE_FIELDS[4:],
    )
    filter_horizontal = ("services",)
    team_scoped_fields: dict[str, str] = {}
    formfield_overrides = {URLField: {"assume_scheme": "https"}}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("team",) if obj is not None else ()

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "services":
            from tocsin.admin_mixins import scoped_rows

            kwargs["queryset"] = scoped_rows(db_field.related_model, request.user, "team")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: StatusPage, form: Any, change: bool) -> None:
        self.ensure_manages(request, obj)
        fields = {
            name: form.cleaned_data[name]
            for name in services.PAGE_FIELDS
            if name in form.cleaned_data
        }
        chosen = list(form.cleaned_data.get("services") or [])
        target = StatusPage.objects.get(pk=obj.pk) if change else StatusPage(team=obj.team)
        adopt(obj, services.save_page(target, actor=request.user, services=chosen, **fields))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The service saved the services already (and checked their team)."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: StatusPage) -> None:
        self.ensure_manages(request, obj)
        services.delete_page(obj, actor=request.user)


@admin.register(ComponentGroup)
class ComponentGroupAdmin(TeamScopedAdmin, admin.ModelAdmin):
    team_field = "page__team"
    team_scoped_fields = {"page": "team"}
    list_display = ("name", "page", "position")
    list_select_related = ("page",)
    fields = ("page", "name", "description", "position")

    def save_model(
        self, request: HttpRequest, obj: ComponentGroup, form: Any, change: bool
    ) -> None:
        self.ensure_manages(request, obj.page)
        target = ComponentGroup.objects.get(pk=obj.pk) if change else ComponentGroup(page=obj.page)
        data = {f: getattr(obj, f) for f in services.GROUP_FIELDS}
        adopt(obj, services.save_group(target, actor=request.user, **data))

    def delete_model(self, request: HttpRequest, obj: ComponentGroup) -> None:
        self.ensure_manages(request, obj.page)
        services.delete_group(obj, actor=request.user)


class ComponentAdminForm(forms.ModelForm):
    """The manual status's end in UTC and at most ten years ahead (year 9999 west of UTC
    overflowed: a 500 on SQLite, an unreadable row on PostgreSQL)."""

    class Meta:
        model = Component
        fields = ("manual_status", "manual_until")  # ComponentAdmin.fields lists the rest

    def clean_manual_until(self) -> Any:
        from incidents.statuspages.forms import clean_until

        return clean_until(self.cleaned_data.get("manual_until"))


@admin.register(Component)
class ComponentAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = ComponentAdminForm
    team_field = "page__team"
    team_scoped_fields = {"page": "team", "service": "team"}
    list_display = ("name", "page", "group", "service", "manual_status")
    list_select_related = ("page", "group", "service")
    list_filter = ("manual_status",)
    search_fields = ("name",)
    fields = (
        "page",
        "group",
        "name",
        "description",
        "position",
        "service",
        ("source_kind", "target_id"),
        "show_uptime",
        ("manual_status", "manual_until"),
    )

    def save_model(self, request: HttpRequest, obj: Component, form: Any, change: bool) -> None:
        self.ensure_manages(request, obj.page)
        target = Component.objects.get(pk=obj.pk) if change else Component(page=obj.page)
        data = {f: getattr(obj, f) for f in services.COMPONENT_FIELDS}
        saved = services.save_component(target, actor=request.user, **data)
        if obj.manual_status and (obj.manual_status, obj.manual_until) != (
            saved.manual_status,
            saved.manual_until,
        ):
            services.set_manual_status(
                saved, obj.manual_status, until=obj.manual_until, actor=request.user
            )
        elif not obj.manual_status and saved.manual_status:
            services.clear_manual_status(saved, actor=request.user)
        adopt(obj, saved)

    def delete_model(self, request: HttpRequest, obj: Component) -> None:
        self.ensure_manages(request, obj.page)
        services.delete_component(obj, actor=request.user)


class PublicUpdateInline(admin.TabularInline):
    model = PublicUpdate
    extra = 0
    fields = ("created_at", "status", "body", "created_by")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(PublicIncident)
class PublicIncidentAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    """Posted from the incident page or the API (``publishing.post_update``)."""

    team_field = "page__team"
    list_display = ("title", "page", "status", "impact", "started_at", "resolved_at")
    list_select_related = ("page",)
    list_filter = ("status", "impact")
    inlines = (PublicUpdateInline,)


@admin.register(PublicUpdate)
class PublicUpdateAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    """What was said to the public, when and by whom: history, never edited."""

    team_field = "public_incident__page__team"
    list_display = ("public_incident", "status", "created_at", "created_by")
    list_select_related = ("public_incident", "created_by")
    list_filter = ("status",)


@admin.register(MaintenanceNotice)
class MaintenanceNoticeAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    """Written in the editor or the API (``publishing.save_maintenance_notice``)."""

    team_field = "page__team"
    list_display = ("title", "page", "window", "hidden", "updated_at")
    list_select_related = ("page", "window")


@admin.register(StatusSubscriber)
class StatusSubscriberAdmin(TeamScopedAdmin, admin.ModelAdmin):
    team_field = "page__team"
    refused_operations = (Operation.ADD, Operation.CHANGE)  # people subscribe themselves
    owned_records = (StatusDelivery,)  # its pending notifications go with it
    list_display = ("__str__", "page", "kind", "confirmed_at", "created_at")
    list_select_related = ("page",)
    list_filter = ("kind",)
    fields = ("page", "kind", "email", "confirmed_at", "created_at")
    readonly_fields = fields

    def delete_model(self, request: HttpRequest, obj: StatusSubscriber) -> None:
        self.ensure_manages(request, obj.page)
        subscribers.remove(obj, actor=request.user)


@admin.register(StatusDelivery)
class StatusDeliveryAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    team_field = "page__team"
    list_display = ("topic", "subscriber", "state", "attempts", "next_attempt_at", "sent_at")
    list_select_related = ("subscriber",)
    list_filter = ("state", "topic")
    exclude = ("payload",)
