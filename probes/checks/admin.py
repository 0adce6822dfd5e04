"""Admin for checks (team-scoped, like heartbeats) and, read-only, their results and rollups.

The config is edited as JSON; the kind validates it on save and each wrong field is reported on
the config field ("url: give an http(s) URL"), conditions with the character they fail at.
Saving goes through ``services.saved`` (slots follow the locations, a changed configuration
starts over); pause, resume and run now are list actions calling the same services as the UI.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from probes.checks import services
from probes.checks.models import Check, RecentMinute, Result, Rollup
from tocsin.admin_mixins import ReadOnlyAdmin, TeamScopedAdmin, scoped_rows

STATE_SHOWN = (
    "state",
    "state_changed_at",
    "last_run_at",
    "last_error",
    "last_explanation",
    "alerted",
    "last_alerted_at",
)


@admin.register(Check)
class CheckAdmin(TeamScopedAdmin, admin.ModelAdmin):
    team_field = "service__team"
    team_scoped_fields = {"service": "team"}
    owned_records = (Result, Rollup, RecentMinute)  # deleted with the check
    list_display = ("name", "service", "kind", "state_text", "interval", "last_run_at")
    list_filter = ("state", "kind", "paused")
    list_select_related = ("service",)
    search_fields = ("name", "service__name")
    actions = ("pause_selected", "resume_selected", "run_selected_now")
    readonly_fields = STATE_SHOWN
    filter_horizontal = ("parents",)
    fieldsets = (
        (None, {"fields": ("service", "name", "kind", "config", "paused")}),
        ("Conditions", {"fields": ("conditions", "degraded_conditions")}),
        (
            "Schedule and thresholds",
            {
                "fields": (
                    "interval",
                    "timeout",
                    "failure_threshold",
                    "recovery_threshold",
                    "window_failures",
                    "window_size",
                    "quick_retry",
                    "reminder_interval",
                )
            },
        ),
        ("Locations and dependencies", {"fields": ("locations", "down_when_failing", "parents")}),
        ("State", {"fields": STATE_SHOWN}),
    )

    @admin.display(description="state")
    def state_text(self, obj: Check) -> str:
        return obj.display_state()

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "parents":
            kwargs["queryset"] = scoped_rows(Check, request.user, "service__team")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Check, form: Any, change: bool) -> None:
        self.ensure_manages(request, obj)
        before: dict[str, Any] = {}
        if change:
            old = Check.objects.filter(pk=obj.pk).values(*services.JUDGED_BY).first() or {}
            before = dict(old)
        obj.save()
        request._check_settings_before = before  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before = getattr(request, "_check_settings_before", {})
        services.configured(
            form.instance, before, timezone.now(), created=not change, actor=request.user
        )

    def delete_model(self, request: HttpRequest, obj: Check) -> None:
        self.ensure_manages(request, obj)
        services.delete(obj, actor=request.user)  # its open alert resolves; the log says who

    @admin.action(description="Pause selected checks", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for check in queryset:
            self.ensure_manages(request, check)
            services.pause(check, actor=request.user)
        self.message_user(request, f"Paused {len(queryset)} check(s).", messages.SUCCESS)

    @admin.action(description="Resume selected checks", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for check in queryset:
            self.ensure_manages(request, check)
            services.resume(check, actor=request.user)
        self.message_user(request, f"Resumed {len(queryset)} check(s).", messages.SUCCESS)

    @admin.action(description="Run selected checks now", permissions=["change"])
    def run_selected_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        for check in queryset.select_related("service")[:20]:
            self.ensure_manages(request, check)
            result = services.run_now(check)
            self.message_user(
                request,
                f"{check.name}: {result.status}" + (f" ({result.error})" if result.error else ""),
                messages.SUCCESS if result.status != "down" else messages.WARNING,
            )


@admin.register(Result)
class ResultAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    team_field = "probe__service__team"
    list_display = ("started_at", "probe", "location", "status", "latency_ms", "error")
    list_filter = ("status",)
    list_select_related = ("probe",)
    search_fields = ("probe__name",)


@admin.register(Rollup)
class RollupAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    team_field = "probe__service__team"
    list_display = ("day", "probe", "up", "degraded", "down", "unknown", "p50", "p95", "p99")
    date_hierarchy = "day"
    list_select_related = ("probe",)
    search_fields = ("probe__name",)
    # The packed hours and minutes are read through the check's page and API, not as bytes.
    exclude = ("histogram", "hours", "minutes")
    readonly_fields = ("histogram_text",)

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).defer("hours", "minutes")

    @admin.display(description="latency histogram")
    def histogram_text(self, obj: Rollup) -> Any:
        return format_html("<code>{}</code>", obj.counts())
