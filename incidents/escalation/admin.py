"""Admin for escalation policies: steps inline, saved through incidents.escalation.services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import HttpRequest

from incidents.escalation import services
from incidents.escalation.admin_forms import PolicyForm, StepForm
from incidents.models import EscalationPolicy, EscalationStep
from tocsin.admin_mixins import TeamListFilter, TeamScopedAdmin, TeamScopedInline, adopt
from tocsin.permissions import Action, is_admin, teams_for

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
def pageable_users(request: HttpRequest, policy: EscalationPolicy | None) -> QuerySet:
    """Whom a step may page: the policy's team members; before the policy exists, the members
    of the teams the user manages (the service refuses anyone outside the chosen team)."""
    User = get_user_model()
    active = User.objects.filter(is_active=True)
    if policy is not None:
        return active.filter(memberships__team_id=policy.team_id).distinct()
    if is_admin(request.user):
        return active.filter(memberships__isnull=False).distinct()
    return active.filter(memberships__team__in=teams_for(request.user, Action.MANAGE)).distinct()


class StepInline(TeamScopedInline, admin.StackedInline):
    model = EscalationStep
    form = StepForm
    fieldsets = [
        (None, {"fields": [("delay_minutes", "min_priority")]}),
        (
            "Who is paged",
            {"fields": ["users", "schedule", ("notify_team", "round_robin", "reassign")]},
        ),
        (
            "When (optional)",
            {
                "fields": [
                    ("hours_condition", "time_zone"),
                    ("window1_days", "window1_start", "window1_end"),
                    ("window2_days", "window2_start", "window2_end"),
                ],
                "description": "Leave “At any time” to run the step whatever the hour.",
            },
        ),
    ]
    extra = 0
    verbose_name = "step"
    verbose_name_plural = "steps (run in order; each after its delay)"
    team_scoped_fields = {"schedule": "team"}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).order_by("position", "id")

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0  # a new policy starts with one empty step to fill in

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = type(
            "TeamStepForm", (formset.form,), {"user_queryset": pageable_users(request, obj)}
        )
        return formset


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
            step["user_ids"] = data.get("users") or []
            step["windows"] = step["windows"] or []
            step["min_priority"] = step["min_priority"] or ""
            step["time_zone"] = step["time_zone"] or "UTC"
            steps.append(step)
        # The service wrote the rows; the admin's change message reads these.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    return steps


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = PolicyForm
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
