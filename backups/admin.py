"""Admin for backups: storages, targets and plans are configured here; runs are read here.

Secrets are write-only: the form has a field to set a DSN or an S3 secret key, never one that
shows it back (the page shows where a target is, without its password). A plan's page shows
its state, its recent runs and a dry-run of its retention (which backups the policy would keep
and why); list actions start a backup, a verify or a restore drill now, through the same
``runs.request_run`` as the API and the schedule. A restore is an action on a run, for
managers, behind a page that asks to type the plan's name.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from backups import runs, services, work
from backups.models import (
    HOST_ONLY_MESSAGE,
    HOST_TARGET_KINDS,
    OWN_DATABASE_MESSAGE,
    BackupPlan,
    BackupRun,
    BackupStorage,
    BackupTarget,
    RunKind,
    RunStatus,
    StorageKind,
    TargetKind,
)
from backups.presentation import human_bytes, human_duration
from tocsin import cron
from tocsin.admin_mixins import ReadOnlyAdmin, TeamScopedAdmin
from tocsin.permissions import Action, can, is_admin
from tocsin.secret_forms import KEEP_STORED, WriteOnlyDSNForm
from tocsin.services import ServiceError


class ConfiguredAdmin(TeamScopedAdmin, admin.ModelAdmin):
    """Saving and deleting go through ``backups.services`` (the event log says who did what)."""

    def clean_admin_form(self, request: HttpRequest, form: Any, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        kind = form.cleaned_data.get("kind")
        on_host = kind in HOST_TARGET_KINDS or kind == StorageKind.LOCAL
        message = HOST_ONLY_MESSAGE
        if kind == StorageKind.S3:  # without keys, boto3 uses the workers' own credentials
            keys = form.instance.credentials or {}
            on_host = not (keys.get("access_key") and keys.get("secret_key"))
            message = "Give an access key and a secret key: without them Tocsin would use its "
            message += "own cloud credentials, which only an administrator may."
        if on_host and "kind" in form.fields and not is_admin(request.user):
            form.add_error("kind", message)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.ensure_manages(request, obj)
        with transaction.atomic():
            obj.save()
            services.configured(obj, created=not change, actor=request.user)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.ensure_manages(request, obj)
        services.delete(obj, actor=request.user)


class StorageForm(forms.ModelForm):
    endpoint_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text=BackupStorage._meta.get_field("endpoint_url").help_text,
    )
    access_key = forms.CharField(required=False, label="Access key")
    secret_key = forms.CharField(
        required=False,
        label="Secret key",
        widget=forms.PasswordInput(render_value=False),
        help_text=KEEP_STORED,
    )

    class Meta:
        model = BackupStorage
        fields = (
            "team",
            "name",
            "kind",
            "encrypted",
            "path",
            "bucket",
            "prefix",
            "endpoint_url",
            "region",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["access_key"].initial = (self.instance.credentials or {}).get("access_key", "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        stored = self.instance.credentials or {}
        self.instance.credentials = {
            "access_key": data.get("access_key", ""),
            "secret_key": data.get("secret_key") or stored.get("secret_key", ""),
        }
        return data


@admin.register(BackupStorage)
class BackupStorageAdmin(ConfiguredAdmin):
    form = StorageForm
    list_display = ("name", "team", "kind", "where", "encrypted", "space")
    list_filter = ("kind",)
    search_fields = ("name", "path", "bucket")
    readonly_fields = ("where", "space")
    fieldsets = (
        (None, {"fields": ("team", "name", "kind", "encrypted", "where", "space")}),
        ("Local folder", {"fields": ("path",)}),
        (
            "S3-compatible storage",
            {"fields": ("bucket", "prefix", "endpoint_url", "region", "access_key", "secret_key")},
        ),
    )

    def clean_admin_form(self, request: HttpRequest, form: Any, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        # A storage that receives backups of Tocsin's own database: moving it (another bucket,
        # other keys) would move every team's data, so it is the administrator's, like the plan.
        if (
            obj is not None
            and obj.pk is not None
            and form.has_changed()
            and not is_admin(request.user)
            and obj.plans.filter(target__kind=TargetKind.TOCSIN).exists()
        ):
            form.add_error(None, OWN_DATABASE_MESSAGE)

    @admin.display(description="where")
    def where(self, obj: BackupStorage) -> str:
        return obj.describe() if obj.pk else "—"

    @admin.display(description="free space")
    def space(self, obj: BackupStorage) -> str:
        if obj.pk is None or obj.kind != StorageKind.LOCAL:
            return "—"
        free, total = obj.engine().usage()
        if free is None or not total:
            return "—"
        return f"{human_bytes(free)} free of {human_bytes(total)} ({100 * free / total:.0f} %)"


class TargetForm(WriteOnlyDSNForm):
    class Meta:
        model = BackupTarget
        fields = ("team", "name", "kind", "path")

    def dsn_problem(self, kind: str, dsn: str) -> str | None:
        return BackupTarget.dsn_problem(kind, dsn)


@admin.register(BackupTarget)
class BackupTargetAdmin(ConfiguredAdmin):
    form = TargetForm
    list_display = ("name", "team", "kind", "where")
    list_filter = ("kind",)
    search_fields = ("name", "path")
    readonly_fields = ("where",)
    fields = ("team", "name", "kind", "path", "dsn", "where")

    @admin.display(description="where (no password)")
    def where(self, obj: BackupTarget) -> str:
        return obj.describe() if obj.pk else "—"


class RunFigures:
    """A run's figures worded for people, for the run list and the plan's inline alike."""

    @admin.display(description="took")
    def took(self, run: BackupRun) -> str:
        return human_duration(run.duration)

    @admin.display(description="size")
    def size(self, run: BackupRun) -> str:
        return human_bytes(run.size_bytes)

    @admin.display(description="new")
    def new(self, run: BackupRun) -> str:
        return human_bytes(run.new_bytes)

    @admin.display(description="stored")
    def stored(self, run: BackupRun) -> str:
        return human_bytes(run.stored_bytes)


class RunInline(RunFigures, admin.TabularInline):
    model = BackupRun
    fields = ("created_at", "kind", "status", "took", "size", "stored", "error")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).order_by("-created_at", "-id")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or can(request.user, Action.MANAGE, obj)


@admin.register(BackupPlan)
class BackupPlanAdmin(ConfiguredAdmin):
    team_field = "service__team"
    team_scoped_fields = {"service": "team", "target": "team", "storage": "team"}
    list_display = ("name", "service", "target", "storage", "schedule_text", "last", "next_run_at")
    list_select_related = ("service", "target", "storage")
    list_filter = ("enabled",)
    search_fields = ("name", "service__name", "target__name")
    actions = ("back_up_now", "verify_now", "drill_now")
    readonly_fields = ("next_run_at", "next_drill_at", "last_success_at", "retention_preview")
    inlines = (RunInline,)
    fieldsets = (
        (None, {"fields": ("service", "name", "target", "storage", "mode", "enabled")}),
        (
            "Schedule",
            {
                "fields": (
                    "schedule",
                    "timezone",
                    "next_run_at",
                    "last_success_at",
                    "drill_schedule",
                    "next_drill_at",
                )
            },
        ),
        (
            "Retention (as restic's forget --keep-*; -1 keeps every bucket)",
            {
                "fields": (
                    ("keep_last", "keep_within"),
                    ("keep_hourly", "keep_daily", "keep_weekly"),
                    ("keep_monthly", "keep_yearly"),
                    "retention_preview",
                )
            },
        ),
        ("Checks", {"fields": ("verify_slices", "max_age_hours")}),
    )

    def clean_admin_form(self, request: HttpRequest, form: Any, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        if is_admin(request.user):
            return
        target = form.cleaned_data.get("target")
        chosen = target is not None and target.kind == TargetKind.TOCSIN
        # ``obj`` still holds the stored plan here (the form copies into it after cleaning).
        stored = obj is not None and obj.pk is not None and obj.target.kind == TargetKind.TOCSIN
        moved = obj is None or {"target", "storage"} & set(form.changed_data)
        if (chosen or stored) and moved:
            form.add_error("target" if "target" in form.fields else None, OWN_DATABASE_MESSAGE)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if "timezone" in form.base_fields:
            form.base_fields["timezone"] = forms.ChoiceField(
                choices=[(z, z) for z in cron.common_timezones()], initial="UTC"
            )
        return form

    @admin.display(description="schedule")
    def schedule_text(self, plan: BackupPlan) -> str:
        return f"{plan.schedule} ({plan.timezone})"

    @admin.display(description="last result")
    def last(self, plan: BackupPlan) -> Any:
        run = plan.runs.filter(kind=RunKind.BACKUP).first()
        if run is None:
            return "—"
        return format_html(
            '<span class="status status-{}">{}</span> {}',
            run.status,
            run.get_status_display(),
            f"{run.created_at:%Y-%m-%d %H:%M}",
        )

    @admin.display(description="what the policy keeps now")
    def retention_preview(self, plan: BackupPlan) -> Any:
        if plan.pk is None:
            return "Save the plan first."
        decisions = work.retention_decisions(plan)
        if not decisions:
            if plan.policy().is_empty():
                return "The policy is empty: every backup is kept."
            return "No backups yet."
        zone = cron.zone(plan.timezone)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{work.taken_at(d.snapshot).astimezone(zone):%Y-%m-%d %H:%M}",
                    "keep" if d.keep else "forget after the next run",
                    ", ".join(d.reasons),
                )
                for d in decisions
            ),
        )
        return format_html(
            "<table><tr><th>backup</th><th>outcome</th><th>why</th></tr>{}</table>", rows
        )

    def _start(self, request: HttpRequest, queryset: QuerySet, kind: str) -> None:
        for plan in queryset:
            self.ensure_manages(request, plan)
            try:
                runs.request_run(plan, kind, actor=request.user)
            except runs.PlanBusy as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{RunKind(kind).label} of “{plan}” queued.")

    @admin.action(description="Back up now", permissions=["change"])
    def back_up_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._start(request, queryset, RunKind.BACKUP)

    @admin.action(description="Verify now", permissions=["change"])
    def verify_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._start(request, queryset, RunKind.VERIFY)

    @admin.action(description="Run a restore drill now", permissions=["change"])
    def drill_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._start(request, queryset, RunKind.DRILL)


class RestoreForm(forms.Form):
    destination = forms.ModelChoiceField(queryset=BackupTarget.objects.none(), required=True)
    confirm = forms.CharField(label="Type the plan's name to confirm")

    def __init__(self, run: BackupRun, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run = run
        self.fields["destination"].queryset = BackupTarget.objects.filter(
            team_id=run.plan.service.team_id
        ).exclude(kind=TargetKind.TOCSIN)
        self.fields["destination"].initial = run.plan.target_id

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"].strip()
        if typed != self.run.plan.name:
            raise forms.ValidationError(f"Type “{self.run.plan.name}” exactly.")
        return typed


@admin.register(BackupRun)
class BackupRunAdmin(RunFigures, ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    team_field = "plan__service__team"
    list_display = ("__str__", "kind", "status", "created_at", "took", "size", "new", "stored")
    list_filter = ("kind", "status")
    list_select_related = ("plan__service",)
    search_fields = ("plan__name", "snapshot_id")
    actions = ("restore",)

    @admin.action(description="Restore the selected backup…")
    def restore(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one backup to restore.", messages.ERROR)
            return None
        run = queryset.select_related("plan__service").get()
        self.ensure_manages(request, run.plan)
        if run.kind != RunKind.BACKUP or run.status != RunStatus.SUCCEEDED or run.forgotten_at:
            self.message_user(request, "Only a good, kept backup can be restored.", messages.ERROR)
            return None
        form = RestoreForm(run, request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            destination = form.cleaned_data["destination"]
            try:
                runs.request_run(
                    run.plan,
                    RunKind.RESTORE,
                    actor=request.user,
                    source=run,
                    restore_into=destination,
                )
            except ServiceError as exc:  # busy, or a backup of Tocsin's own database
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"Restore of {run} into “{destination}” queued.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Restore {run}",
            "run": run,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/backups/restore_confirm.html", context)

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return True  # per run: ensure_manages (managers of the plan's team)
