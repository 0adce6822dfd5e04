"""Admin for silences, inhibition rules and maintenance windows.

Matchers are typed as text (``alertname="X", env=~"prod.*"``) and checked by the matcher parser,
so a bad regex is a form error next to the field. Every write goes through
``monitoring.suppression`` (validation, events, re-evaluation of firing alerts). Silences are
not edited: like Alertmanager, end one ("expire now") and create another.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import HttpRequest
from django.utils import timezone

from monitoring import suppression as services
from monitoring.matchers import MatcherError, format_matchers, from_stored, parse_matchers
from monitoring.models import InhibitionRule, MaintenanceWindow, Silence
from monitoring.suppression.inhibition import RULE_FIELDS
from monitoring.suppression.maintenance import WINDOW_FIELDS
from tocsin.admin_mixins import Operation, TeamListFilter, TeamScopedAdmin, adopt
from tocsin.permissions import Action, can
from tocsin.services import ServiceError

MATCHERS_HELP = 'Comma-separated, e.g. alertname="HighLatency", env=~"prod.*", severity!="info".'


class MatchersFormField(forms.CharField):
    """Matcher text in, a list of ``{name, op, value}`` dicts out; a parse error is a form error."""

    widget = forms.TextInput(attrs={"size": 80})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return format_matchers(from_stored(value))[1:-1]
        return value

    def to_python(self, value: Any) -> list[dict[str, str]]:
        text = super().to_python(value)
        if isinstance(text, list):
            return text
        try:
            matchers = parse_matchers(text or "")
        except MatcherError as exc:
            raise forms.ValidationError(str(exc)) from None
        if not matchers and self.required:
            raise forms.ValidationError('Give at least one matcher, e.g. alertname="X".')
        return [m.as_dict() for m in matchers]


# --- Silences -----------------------------------------------------------------------------------


class SilenceStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("pending", "Pending"), ("expired", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        value = self.value()
        if value in ("active", "pending", "expired"):
            return getattr(queryset, value)(now)
        return queryset


class SilenceForm(forms.ModelForm):
    matchers = MatchersFormField(help_text=MATCHERS_HELP)
    duration = forms.CharField(required=False, help_text="Instead of ends at: 30m, 2h, 1h30m, 1d.")

    class Meta:
        model = Silence
        fields = ("team", "service", "matchers", "starts_at", "ends_at", "comment")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "starts_at" in self.fields:
            self.fields["starts_at"].required = False
            self.fields["starts_at"].help_text = "Empty: now."
        if "ends_at" in self.fields:
            self.fields["ends_at"].required = False

    def clean_duration(self) -> Any:
        text = (self.cleaned_data.get("duration") or "").strip()
        if not text:
            return None
        try:
            return services.parse_duration(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.action(description="Expire selected silences now", permissions=["change"])
def expire_now(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> None:
    ended, skipped = 0, 0
    now = timezone.now()
    for silence in queryset:
        if not can(request.user, Action.RESPOND, silence) or silence.ends_at <= now:
            skipped += 1
            continue
        services.expire_silence(silence, actor=request.user, now=now)
        ended += 1
    modeladmin.message_user(request, f"Expired {ended} silence(s).", messages.SUCCESS)
    if skipped:
        modeladmin.message_user(
            request, f"{skipped} had already ended and were left as they were.", messages.INFO
        )


@admin.register(Silence)
class SilenceAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = SilenceForm
    team_scoped_fields = {"service": "team"}
    list_display = (
        "matchers_text",
        "team",
        "service",
        "starts_at",
        "ends_at",
        "is_active_now",
        "created_by",
        "comment",
    )
    list_filter = (SilenceStateFilter, TeamListFilter, "created_at")
    list_select_related = ("team", "service", "created_by")
    search_fields = ("comment", "created_by__username")
    search_help_text = "Search by comment or author."
    actions = (expire_now,)
    date_hierarchy = "starts_at"
    # Silences are ended ("expire now"), never deleted: they are history.
    refused_operations = (Operation.DELETE,)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("team", "service", "matchers", "starts_at", "ends_at", "duration", "comment")
        return (
            "team",
            "service",
            "matchers_text",
            "starts_at",
            "ends_at",
            "is_active_now",
            "comment",
            "created_by",
            "created_at",
            "expired_by",
            "expired_at",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return self.get_fields(request, obj)  # silences are not edited: expire and recreate

    @admin.display(description="matchers")
    def matchers_text(self, silence: Silence) -> str:
        return silence.label

    @admin.display(description="active", boolean=True)
    def is_active_now(self, silence: Silence) -> bool:
        return silence.is_active()

    def clean_admin_form(self, request: HttpRequest, form: BaseForm, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        ends_at, duration = form.cleaned_data.get("ends_at"), form.cleaned_data.get("duration")
        if obj is None and bool(ends_at) == bool(duration):
            form.add_error("ends_at", "Give either an end or a duration (exactly one).")

    def save_model(self, request: HttpRequest, obj: Silence, form: BaseForm, change: bool) -> None:
        self.ensure_manages(request, obj)
        if change:
            return  # nothing on an existing silence is editable
        data = form.cleaned_data
        silence = services.create_silence(
            team=data["team"],
            service=data.get("service"),
            matchers=from_stored(data["matchers"]),
            starts_at=data.get("starts_at"),
            ends_at=data.get("ends_at"),
            duration=data.get("duration"),
            comment=data.get("comment", ""),
            actor=request.user,
        )
        adopt(obj, silence)


# --- Inhibition rules ---------------------------------------------------------------------------


class InhibitionRuleForm(forms.ModelForm):
    source_matchers = MatchersFormField(help_text="Alerts that inhibit. " + MATCHERS_HELP)
    target_matchers = MatchersFormField(help_text="Alerts that get inhibited. " + MATCHERS_HELP)
    equal = forms.CharField(
        required=False,
        help_text="Label names that must have the same value on both, comma-separated.",
    )

    class Meta:
        model = InhibitionRule
        fields = (
            "team",
            "service",
            "name",
            "source_matchers",
            "target_matchers",
            "equal",
            "enabled",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and isinstance(self.initial.get("equal"), list):
            self.initial["equal"] = ", ".join(self.initial["equal"])

    def clean_equal(self) -> list[str]:
        text = self.cleaned_data.get("equal") or ""
        names = [part.strip() for part in text.split(",") if part.strip()]
        try:
            return services.clean_equal_labels(names)
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(InhibitionRule)
class InhibitionRuleAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = InhibitionRuleForm
    team_scoped_fields = {"service": "team"}
    list_display = ("name", "team", "service", "sources", "targets", "equal", "enabled")
    list_filter = ("enabled", TeamListFilter)
    list_select_related = ("team", "service")
    search_fields = ("name",)

    @admin.display(description="source matchers")
    def sources(self, rule: InhibitionRule) -> str:
        return format_matchers(rule.source_list)

    @admin.display(description="target matchers")
    def targets(self, rule: InhibitionRule) -> str:
        return format_matchers(rule.target_list)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("team",) if obj is not None else ()

    def save_model(
        self, request: HttpRequest, obj: InhibitionRule, form: BaseForm, change: bool
    ) -> None:
        self.ensure_manages(request, obj)
        data = {name: form.cleaned_data.get(name) for name in RULE_FIELDS}
        if not change:
            rule = services.create_inhibition_rule(
                team=form.cleaned_data["team"], actor=request.user, **data
            )
            adopt(obj, rule)
            return
        original = InhibitionRule.objects.get(pk=obj.pk)
        services.update_inhibition_rule(original, actor=request.user, **data)
        adopt(obj, original)

    def delete_model(self, request: HttpRequest, obj: InhibitionRule) -> None:
        self.ensure_manages(request, obj)
        services.delete_inhibition_rule(obj, actor=request.user)


# --- Maintenance windows ------------------------------------------------------------------------


class MaintenanceWindowForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=[
            (0, "Monday"),
            (1, "Tuesday"),
            (2, "Wednesday"),
            (3, "Thursday"),
            (4, "Friday"),
            (5, "Saturday"),
            (6, "Sunday"),
        ],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="For a recurring window; leave empty for a one-off window.",
    )
    duration = forms.CharField(
        required=False, help_text="Recurring windows: how long each lasts, e.g. 2h or 1h30m."
    )

    class Meta:
        model = MaintenanceWindow
        fields = ("service", *WINDOW_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        duration = self.initial.get("duration")
        if duration:
            seconds = int(duration.total_seconds())
            hours, rest = divmod(seconds, 3600)
            self.initial["duration"] = f"{hours}h{rest // 60}m" if rest else f"{hours}h"

    def clean_duration(self) -> Any:
        text = (self.cleaned_data.get("duration") or "").strip()
        if not text:
            return None
        try:
            return services.parse_duration(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = MaintenanceWindowForm
    team_field = "service__team"
    team_scoped_fields = {"service": "team"}
    list_display = ("title", "service", "when", "is_active_now")
    list_filter = (TeamListFilter,)
    list_select_related = ("service", "service__team")
    search_fields = ("title", "service__name")

    @admin.display(description="when")
    def when(self, window: MaintenanceWindow) -> str:
        if window.is_recurring:
            days = ", ".join(
                ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][d] for d in window.weekdays
            )
            return f"{days} at {window.start_time} {window.time_zone} for {window.duration}"
        return f"{window.starts_at} to {window.ends_at}"

    @admin.display(description="active", boolean=True)
    def is_active_now(self, window: MaintenanceWindow) -> bool:
        return window.is_active()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("service",) if obj is not None else ()

    def save_model(
        self, request: HttpRequest, obj: MaintenanceWindow, form: BaseForm, change: bool
    ) -> None:
        self.ensure_manages(request, obj)
        data = {name: form.cleaned_data.get(name) for name in WINDOW_FIELDS}
        data["weekdays"] = data["weekdays"] or []
        data["time_zone"] = data["time_zone"] or "UTC"
        if not change:
            window = services.create_maintenance_window(
                service=form.cleaned_data["service"], actor=request.user, **data
            )
            adopt(obj, window)
            return
        original = MaintenanceWindow.objects.select_related("service").get(pk=obj.pk)
        services.update_maintenance_window(original, actor=request.user, **data)
        adopt(obj, original)

    def delete_model(self, request: HttpRequest, obj: MaintenanceWindow) -> None:
        self.ensure_manages(request, obj)
        services.delete_maintenance_window(obj, actor=request.user)
