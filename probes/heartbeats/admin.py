"""Admin for heartbeats and their pings.

Scoped like every team-owned admin (``TeamScopedAdmin``): managers see and edit the heartbeats
of their teams' services. Each heartbeat page shows the exact ``curl`` and crontab lines to use,
the slug URL with the service's ping key, why it is down, and its latest pings. Saving goes
through ``services.configured`` (a changed schedule or grace takes effect at once, the event log
says who changed what) and deleting through ``services.delete`` (open alerts resolve first);
pause, resume and snooze are list actions calling the same services as the API and ping URLs.
Pings are read-only: the ping endpoints write them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from probes.heartbeats import services, snippets
from probes.heartbeats.models import Heartbeat, Ping
from probes.heartbeats.schedule import humanize
from tocsin.admin_mixins import ReadOnlyAdmin, TeamScopedAdmin

RECENT_PINGS = 20
# The read-only state a heartbeat's page shows (its "State" fieldset).
STATE_SHOWN = (
    "status_text",
    "why_down",
    "last_ping_at",
    "last_success_at",
    "last_start_at",
    "last_duration_text",
    "last_exit_status",
    "expected_at",
    "next_due_at",
    "consecutive_failures",
    "recent_pings",
)


@admin.register(Heartbeat)
class HeartbeatAdmin(TeamScopedAdmin, admin.ModelAdmin):
    team_field = "service__team"
    team_scoped_fields = {"service": "team"}
    owned_records = (Ping,)  # deleted with the heartbeat
    list_display = ("name", "service", "status_text", "schedule_text", "last_ping_at", "deadline")
    list_filter = ("status",)
    list_select_related = ("service",)
    search_fields = ("name", "slug", "service__name")
    actions = ("pause_selected", "resume_selected", "snooze_selected")
    readonly_fields = ("uuid", "usage", *STATE_SHOWN)
    fieldsets = (
        (None, {"fields": ("service", "name", "slug", "description", "uuid")}),
        ("How to ping", {"fields": ("usage",)}),
        ("Schedule", {"fields": ("period", "cron", "timezone", "grace")}),
        (
            "Run limits and failure tolerance",
            {
                "fields": (
                    "min_runtime",
                    "max_runtime",
                    "too_often",
                    "failures_before_alert",
                    "failure_percent",
                    "failure_window",
                )
            },
        ),
        ("Pausing", {"fields": ("manual_resume", "snoozed_until")}),
        ("State", {"fields": STATE_SHOWN}),
    )

    @admin.display(description="status")
    def status_text(self, obj: Heartbeat) -> str:
        return obj.get_status()

    @admin.display(description="last run took")
    def last_duration_text(self, obj: Heartbeat) -> str:
        return humanize(obj.last_duration) if obj.last_duration is not None else "—"

    @admin.display(description="why down")
    def why_down(self, obj: Heartbeat) -> Any:
        if not obj.problems:
            return "—"
        return format_html_join("", "<p>{}</p>", ((why,) for why in obj.problems.values()))

    @admin.display(description="usage")
    def usage(self, obj: Heartbeat) -> Any:
        if obj.pk is None:
            return "Save the heartbeat to get its ping URL."
        key = getattr(obj.service, "heartbeat_ping_key", None)
        slug = snippets.slug_url(obj, key.key) if key else "(saved heartbeats get one)"
        return format_html(
            "<p>Ping URL: <code>{}</code></p>"
            "<p>By slug: <code>{}</code> (add <code>?create=1</code> to auto-provision)</p>"
            "<p>curl:</p><pre>{}</pre><p>crontab:</p><pre>{}</pre>"
            "<p>Append <code>/start</code>, <code>/fail</code>, <code>/log</code> or an exit "
            "status (<code>/0</code> to <code>/255</code>); <code>?rid=&lt;uuid&gt;</code> pairs "
            "a start with its finish.</p>",
            snippets.ping_url(obj),
            slug,
            snippets.curl_line(obj),
            snippets.crontab_line(obj),
        )

    @admin.display(description="recent pings")
    def recent_pings(self, obj: Heartbeat) -> Any:
        if obj.pk is None:
            return "—"
        pings = obj.pings.all()[:RECENT_PINGS]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{p.received_at:%Y-%m-%d %H:%M:%S}",
                    p.get_kind_display(),
                    "" if p.exit_status is None else p.exit_status,
                    humanize(p.duration) if p.duration is not None else "",
                    p.remote_addr,
                    p.body[:200],
                )
                for p in pings
            ),
        )
        return format_html(
            "<table><tr><th>received</th><th>kind</th><th>exit</th><th>took</th>"
            "<th>from</th><th>body</th></tr>{}</table>",
            rows,
        )

    def save_model(self, request: HttpRequest, obj: Heartbeat, form: Any, change: bool) -> None:
        self.ensure_manages(request, obj)
        with transaction.atomic():
            obj.save()
            services.configured(obj, created=not change, actor=request.user)

    def delete_model(self, request: HttpRequest, obj: Heartbeat) -> None:
        self.ensure_manages(request, obj)
        services.delete(obj, actor=request.user)  # its open alerts resolve; the log says who

    @admin.action(description="Pause selected heartbeats", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for heartbeat in queryset:
            self.ensure_manages(request, heartbeat)
            services.pause(heartbeat, actor=request.user)
        self.message_user(request, f"Paused {len(queryset)} heartbeat(s).", messages.SUCCESS)

    @admin.action(description="Resume selected heartbeats", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for heartbeat in queryset:
            self.ensure_manages(request, heartbeat)
            services.resume(heartbeat, actor=request.user)
        self.message_user(request, f"Resumed {len(queryset)} heartbeat(s).", messages.SUCCESS)

    @admin.action(description="Snooze selected heartbeats for an hour", permissions=["change"])
    def snooze_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for heartbeat in queryset:
            self.ensure_manages(request, heartbeat)
            services.snooze(heartbeat, 3600, actor=request.user)
        self.message_user(request, f"Snoozed {len(queryset)} heartbeat(s).", messages.SUCCESS)


@admin.register(Ping)
class PingAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    team_field = "heartbeat__service__team"
    list_display = ("received_at", "heartbeat", "kind", "exit_status", "duration", "remote_addr")
    list_filter = ("kind",)
    list_select_related = ("heartbeat",)
    search_fields = ("heartbeat__name", "heartbeat__slug")
