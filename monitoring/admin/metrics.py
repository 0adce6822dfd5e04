"""Admin for threshold rules and metric series.

Rules are changed through ``monitoring.metrics.rules`` (validated, recorded, firing alerts
resolved when a rule goes away); "Test now" shows what each selected rule sees without changing
anything.
Series are read-only: samples arrive through the API and the host collector.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.forms import BaseForm
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from monitoring.matchers import MatcherError, format_matchers, from_stored, to_matchers
from monitoring.metrics import rules
from monitoring.models import AlertRule, MetricSeries
from monitoring.models.metrics import format_number
from tocsin.admin_mixins import ReadOnlyAdmin, TeamListFilter, TeamScopedAdmin, adopt
from tocsin.permissions import Action

# What the form edits: the rule's team (fixed once created) and what the service lets change.
RULE_FIELDS = ("team", *rules.RULE_FIELDS)


class MatchersField(forms.CharField):
    """Matchers typed as ``host="web-1", mount!="/boot"``; stored as monitoring.matchers dicts."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return format_matchers(from_stored(value)) if value else ""
        if isinstance(value, str) and value.startswith("["):  # the form's initial JSON text
            import json

            try:
                return format_matchers(from_stored(json.loads(value)))
            except (ValueError, KeyError, TypeError, MatcherError):
                return value
        return value

    def to_python(self, value: Any) -> list[dict[str, str]]:
        text = (super().to_python(value) or "").strip()
        if not text or text == "{}":
            return []
        try:
            return [m.as_dict() for m in to_matchers(text)]
        except MatcherError as exc:
            raise forms.ValidationError(str(exc)) from None


class AlertRuleForm(forms.ModelForm):
    matchers = MatchersField(
        required=False,
        help_text='Which series of the metric, e.g. host="web-1", mount!="/boot"; '
        "empty for all of them.",
    )

    class Meta:
        model = AlertRule
        fields = RULE_FIELDS
        help_texts = {
            "window_seconds": "The aggregation's window, 60 to 86400 seconds.",
            "for_seconds": "How long the condition must hold before the alert fires.",
            "summary_template": "Placeholders: {{ value }}, {{ threshold }}, {{ rule }}, "
            "{{ metric }}, {{ labels.host }}. Empty for a default summary.",
            "labels": 'Extra labels for the alert, e.g. {"team": "payments"}.',
        }


@admin.register(AlertRule)
class AlertRuleAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = AlertRuleForm
    list_display = (
        "name",
        "team",
        "service",
        "expression_display",
        "severity",
        "enabled",
        "firing_series",
        "last_evaluated_at",
    )
    list_filter = (TeamListFilter, "enabled", "severity", "aggregation")
    list_select_related = ("team", "service")
    search_fields = ("name", "metric")
    search_help_text = "Search by rule name or metric."
    actions = ("test_now",)
    team_scoped_fields = {"service": "team"}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(firing_count=Count("states", filter=Q(states__firing=True)))
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return RULE_FIELDS
        return (*RULE_FIELDS, "states_display", "last_evaluated_at", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("team", "states_display", "last_evaluated_at", "created_at", "updated_at")

    @admin.display(description="expression")
    def expression_display(self, rule: AlertRule) -> str:
        return format_html("<code>{}</code>", rule.expression)

    @admin.display(description="firing", ordering="firing_count")
    def firing_series(self, rule: AlertRule) -> str:
        count = getattr(rule, "firing_count", 0)
        return format_html("<strong>{}</strong>", count) if count else "0"

    @admin.display(description="series now")
    def states_display(self, rule: AlertRule) -> str:
        states = list(rule.states.order_by("-firing", "key")[:50])
        if not states:
            return "No matching series with data at the last evaluation."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><strong>{}</strong> {} = {}</li>",
                (
                    (
                        state.state,
                        _labels(state.labels),
                        format_number(state.last_value) if state.last_value is not None else "",
                    )
                    for state in states
                ),
            ),
        )

    def save_model(self, request: HttpRequest, obj: AlertRule, form: BaseForm, change: bool):
        self.ensure_manages(request, obj)
        data = {name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data}
        if not change:
            team = data.pop("team")
            adopt(obj, rules.create_rule(team, actor=request.user, **data))
            return
        changes = {name: data[name] for name in form.changed_data if name in data}
        changes.pop("team", None)
        # The form changed ``obj`` in memory; the service needs the stored rule to compare with.
        fresh = AlertRule.objects.select_related("service").get(pk=obj.pk)
        rules.update_rule(fresh, actor=request.user, **changes)
        adopt(obj, fresh)

    def delete_model(self, request: HttpRequest, obj: AlertRule) -> None:
        self.ensure_manages(request, obj)
        rules.delete_rule(obj, actor=request.user)

    @admin.action(description="Test now (changes nothing)")
    def test_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        for rule in queryset.select_related("service"):
            evaluation = rules.preview_rule(rule)
            if not evaluation.series:
                self.message_user(
                    request,
                    format_html(
                        "{} (<code>{}</code>): no matching series with data in the window.",
                        rule.name,
                        rule.expression,
                    ),
                    messages.WARNING,
                )
                continue
            lines = format_html_join(
                "; ",
                "{} = {}{}",
                (
                    (
                        _labels(s.labels) or rule.metric,
                        format_number(s.value),
                        f" ({s.state}{', would ' + s.change if s.change else ''})",
                    )
                    for s in evaluation.series[:20]
                ),
            )
            breaching = sum(1 for s in evaluation.series if s.breaching)
            self.message_user(
                request,
                format_html(
                    "{} (<code>{}</code>): {} series, {} breaching — {}",
                    rule.name,
                    rule.expression,
                    len(evaluation.series),
                    breaching,
                    lines,
                ),
                messages.WARNING if breaching else messages.SUCCESS,
            )


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


@admin.register(MetricSeries)
class MetricSeriesAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    """Read-only: what is being recorded, and its latest value."""

    list_display = ("series_display", "team", "kind", "last_value_display", "last_at")
    list_filter = (TeamListFilter, "kind")
    list_select_related = ("team",)
    search_fields = ("name",)
    search_help_text = "Search by metric name."
    fields = ("team", "name", "labels", "kind", "last_value", "last_at", "created_at")
    readonly_fields = fields
    view_action = Action.VIEW

    @admin.display(description="series", ordering="name")
    def series_display(self, series: MetricSeries) -> str:
        return format_html("<code>{}</code>", series.display_name)

    @admin.display(description="last value", ordering="last_value")
    def last_value_display(self, series: MetricSeries) -> str:
        return format_number(series.last_value) if series.last_value is not None else "—"
