"""Admin for escalation policies: steps inline, saved through incidents.escalation.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import HttpRequest

from incidents.escalation import services
from incidents.models import EscalationPolicy, EscalationStep
from tocsin.admin_mixins import TeamListFilter, TeamScopedAdmin, TeamScopedInline, adopt

STEP_FIELDS = (
    "delay_minutes",
    "schedule",
    "notify_team",
    "round_robin",
    "reassign",
    "hours_condition",
    "time_zone",
    "windows",
    "min_priority",
)


# -- escalation policies -----------------------------------------------------------------------
class StepForm(forms.ModelForm):
    usernames = forms.CharField(
        label="Users",
        required=False,
        help_text="Usernames to page, in order, separated by commas.",
        widget=forms.TextInput(attrs={"size": 24}),
    )

    class Meta:
        model = EscalationStep
        fields = STEP_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = list(self.instance.user_ids or []) if self.instance.pk else []
        if ids:
            User = get_user_model()
            names = dict(User.objects.filter(pk__in=ids).values_list("pk", User.USERNAME_FIELD))
            self.initial["usernames"] = ", ".join(names.get(i, str(i)) for i in ids)

    def clean_usernames(self) -> list[int]:
        names = [n.strip() for n in self.cleaned_data["usernames"].split(",") if n.strip()]
        User = get_user_model()
        found = dict(
            User.objects.filter(**{f"{User.USERNAME_FIELD}__in": names}).values_list(
                User.USERNAME_FIELD, "pk"
            )
        )
        missing = [n for n in names if n not in found]
        if missing:
            raise forms.ValidationError(f"No user named {', '.join(missing)}.")
        return [found[n] for n in names]


class StepInline(TeamScopedInline, admin.StackedInline):
    model = EscalationStep
    form = StepForm
    fields = [
        ("delay_minutes", "min_priority"),
        "usernames",
        ("schedule", "notify_team", "round_robin", "reassign"),
        ("hours_condition", "time_zone"),
        "windows",
    ]
    extra = 0
    verbose_name = "step"
    team_scoped_fields = {"schedule": "team"}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).order_by("position", "id")


def _steps_from(formsets: list[Any]) -> list[dict[str, Any]]:
    """The inline's rows, in the order shown, as ``services`` takes them."""
    steps = []
    for formset in formsets:
        if formset.model is not EscalationStep:
            continue
        for form in formset.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or (not form.has_changed() and not form.instance.pk):
                continue
            step = {name: data.get(name) for name in STEP_FIELDS}
            step["user_ids"] = data.get("usernames") or []
            step["windows"] = step["windows"] or []
            step["min_priority"] = step["min_priority"] or ""
            step["time_zone"] = step["time_zone"] or "UTC"
            steps.append(step)
        # The service wrote the rows; the admin's change message reads these.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    return steps


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ("name", "team", "step_count", "repeat_times", "ack_timeout_minutes")
    list_filter = (TeamListFilter,)
    list_select_related = ("team",)
    search_fields = ("name", "description")
    inlines = [StepInline]
    fields = (
        "team",
        "name",
        "description",
        ("repeat_times", "repeat_after_minutes"),
        "ack_timeout_minutes",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("team",) if obj is not None else ()

    @admin.display(description="steps")
    def step_count(self, policy: EscalationPolicy) -> int:
        return policy.steps.count()

    def save_model(self, request: HttpRequest, obj: Any, form: BaseForm, change: bool) -> None:
        # Written in save_related, with its steps, by one service call.
        self.ensure_manages(request, obj)

    def save_related(
        self, request: HttpRequest, form: BaseForm, formsets: Any, change: bool
    ) -> None:
        obj = form.instance
        steps = _steps_from(formsets)
        fields = {name: form.cleaned_data.get(name) for name in services.POLICY_FIELDS}
        fields["description"] = fields.get("description") or ""
        if not change:
            name = fields.pop("name")
            policy = services.create_policy(
                obj.team, actor=request.user, name=name, steps=steps, **fields
            )
            adopt(obj, policy)
        else:
            services.update_policy(obj, actor=request.user, steps=steps, **fields)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.ensure_manages(request, obj)
        services.delete_policy(obj, actor=request.user)
