"""Admin for monitored databases: the DSN is write-only; list actions read a database now and
install its kind's rule pack on its service in one click."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from monitoring.databases import collection, packs
from monitoring.databases.collectors import dsn_problem, where
from monitoring.models import MonitoredDatabase
from tocsin.admin_mixins import TeamScopedAdmin
from tocsin.secret_forms import WriteOnlyDSNForm


class DatabaseForm(WriteOnlyDSNForm):
    class Meta:
        model = MonitoredDatabase
        fields = ("team", "service", "name", "kind", "interval_seconds", "enabled")

    def dsn_problem(self, kind: str, dsn: str) -> str | None:
        return dsn_problem(kind, dsn)


@admin.register(MonitoredDatabase)
class MonitoredDatabaseAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = DatabaseForm
    team_scoped_fields = {"service": "team"}
    list_display = ("name", "team", "kind", "located", "last_collected_at", "state")
    list_filter = ("kind", "enabled")
    list_select_related = ("team",)
    search_fields = ("name",)
    actions = ("collect_now", "install_rule_pack")
    readonly_fields = ("located", "last_collected_at", "last_error", "slowest")
    fields = (
        "team",
        "service",
        "name",
        "kind",
        "dsn",
        "located",
        "interval_seconds",
        "enabled",
        "last_collected_at",
        "last_error",
        "slowest",
    )

    @admin.display(description="where (no password)")
    def located(self, obj: MonitoredDatabase) -> str:
        return where(obj.kind, obj.dsn) if obj.pk else "—"

    @admin.display(description="state")
    def state(self, obj: MonitoredDatabase) -> Any:
        if obj.last_collected_at is None:
            return "not read yet"
        if obj.last_error:
            return format_html(
                '<span class="status status-firing">unreachable</span> {}', obj.last_error
            )
        return format_html('<span class="status status-ok">{}</span>', "answering")

    @admin.display(description="slowest statements")
    def slowest(self, obj: MonitoredDatabase) -> Any:
        if not obj.slow_queries:
            return "— (PostgreSQL with pg_stat_statements only)"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((q["mean_ms"], q["calls"], q["total_ms"], q["query"][:300]) for q in obj.slow_queries),
        )
        return format_html(
            "<table><tr><th>mean ms</th><th>calls</th><th>total ms</th><th>statement</th></tr>"
            "{}</table>",
            rows,
        )

    @admin.action(description="Read the selected databases now", permissions=["change"])
    def collect_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        for database in queryset.select_related("team"):
            self.ensure_manages(request, database)
            if collection.collect_one(database):
                self.message_user(request, f"{database}: read.")
            else:
                database.refresh_from_db()
                self.message_user(request, f"{database}: {database.last_error}", messages.ERROR)

    @admin.action(description="Install the rule pack of their kind", permissions=["change"])
    def install_rule_pack(self, request: HttpRequest, queryset: QuerySet) -> None:
        for database in queryset.select_related("service__team"):
            self.ensure_manages(request, database)
            created, skipped = packs.install(database.kind, database.service, actor=request.user)
            said = f"{packs.PACKS[database.kind][0]} rule pack on {database.service}: "
            said += f"{len(created)} rules created"
            if skipped:
                said += f", {len(skipped)} already there ({', '.join(skipped)})"
            self.message_user(request, said)
