"""Threshold rules: ``/alert-rules/``, read by the team, changed by managers through
``monitoring.metrics.rules``; ``POST /alert-rules/{id}/test/`` and ``POST /alert-rules/preview/``
evaluate a rule without effect.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api.filters import AlertRuleFilter
from monitoring.api.metrics import FiniteNumberField, team_ref
from monitoring.matchers import MatcherError, format_matchers, from_stored, to_matchers
from monitoring.metrics import rules
from monitoring.models import Aggregation, AlertRule, Comparison, Service, Severity
from tocsin.api.serializers import IdField, NoInputSerializer, StrictInputMixin, TeamRefSerializer
from tocsin.api.viewsets import MANAGER_WRITES, TeamScopedViewSet
from tocsin.models import Team
from tocsin.permissions import Action, scope


class ServiceRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "name", "slug"]


class AlertRuleSerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    service = ServiceRefSerializer(read_only=True)
    matchers_text = serializers.SerializerMethodField(help_text='`{host="web-1"}`')
    expression = serializers.CharField(read_only=True)
    firing_series = serializers.SerializerMethodField(help_text="Series it is firing for now.")

    class Meta:
        model = AlertRule
        # The editable fields are the service's (monitoring.metrics.rules), not a second list.
        fields = [
            "id",
            "team",
            *rules.RULE_FIELDS,
            "matchers_text",
            "expression",
            "firing_series",
            "created_at",
            "updated_at",
            "last_evaluated_at",
        ]
        read_only_fields = fields

    def get_matchers_text(self, rule: AlertRule) -> str:
        return format_matchers(from_stored(rule.matchers or []))

    def get_firing_series(self, rule: AlertRule) -> int:
        if hasattr(rule, "firing_count"):
            return rule.firing_count
        return rule.states.filter(firing=True).count()


def _choice(choices: Any, **kwargs: Any) -> serializers.ChoiceField:
    values = ", ".join(str(c[0]) for c in choices)
    return serializers.ChoiceField(
        choices=choices,
        error_messages={"invalid_choice": f'"{{input}}" is not one of: {values}'},
        **kwargs,
    )


class AlertRuleUpdateSerializer(StrictInputMixin, serializers.Serializer):
    """Every field optional (PATCH); the rule's invariants are checked on the result."""

    service = IdField(help_text="The service alerts raise on.")
    name = serializers.CharField(max_length=100)
    metric = serializers.CharField(max_length=200)
    matchers = serializers.JSONField(
        help_text='Text (`host="web-1",mount!="/boot"`), a list of texts, or a list of '
        '{"name", "op", "value"} objects; empty for every series of the metric.'
    )
    aggregation = _choice(Aggregation.choices)
    window_seconds = serializers.IntegerField(
        min_value=AlertRule.MIN_WINDOW, max_value=AlertRule.MAX_WINDOW
    )
    comparison = _choice(Comparison.choices)
    threshold = FiniteNumberField()
    for_seconds = serializers.IntegerField(min_value=0, max_value=AlertRule.MAX_FOR)
    severity = _choice(Severity.choices)
    labels = serializers.JSONField(help_text="Added to the alert's labels.")
    summary_template = serializers.CharField(max_length=500, allow_blank=True)
    description_template = serializers.CharField(max_length=5000, allow_blank=True)
    enabled = serializers.BooleanField()

    def validate_service(self, value: int) -> Service:
        service = (
            scope(Service.objects.all(), self.context["request"].user, Action.VIEW)
            .filter(pk=value)
            .first()
        )
        if service is None:
            raise serializers.ValidationError("no service with this id that you can view")
        return service

    def validate_matchers(self, value: Any) -> list[dict[str, str]]:
        try:
            return [m.as_dict() for m in to_matchers(value if value is not None else [])]
        except MatcherError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """The model's invariants (names, placeholders, same team…), reported per field."""
        rule = self.rule_for(data)
        problems = rule.problems()
        if problems:
            raise serializers.ValidationError({k: [v] for k, v in problems.items()})
        return data

    def rule_for(self, data: dict[str, Any]) -> AlertRule:
        """The rule as it would be with this input (unsaved)."""
        base: AlertRule = self.context.get("rule") or AlertRule()
        rule = AlertRule(**{f.attname: getattr(base, f.attname) for f in AlertRule._meta.fields})
        for name, value in data.items():
            if name != "team":
                setattr(rule, name, value)
        if "team" in data:
            rule.team = data["team"]
        return rule


class AlertRuleCreateSerializer(AlertRuleUpdateSerializer):
    team = serializers.CharField(help_text="Team id or slug; you need the manager role in it.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        optional = {
            "matchers",
            "aggregation",
            "window_seconds",
            "comparison",
            "for_seconds",
            "severity",
            "labels",
            "summary_template",
            "description_template",
            "enabled",
        }
        for name, field in fields.items():
            field.required = name not in optional
        return fields

    def validate_team(self, value: str) -> Team:
        return team_ref(value, self.context.get("request"))


class RuleSeriesSerializer(serializers.Serializer):
    labels = serializers.DictField(child=serializers.CharField())
    value = serializers.FloatField()
    breaching = serializers.BooleanField()
    state = serializers.ChoiceField(choices=["inactive", "pending", "firing"])
    pending_since = serializers.DateTimeField(allow_null=True)
    change = serializers.CharField(help_text="What an evaluation now would do: pending, fired…")


class RuleVanishedSerializer(serializers.Serializer):
    labels = serializers.DictField(child=serializers.CharField())
    change = serializers.CharField()


class RuleTestSerializer(serializers.Serializer):
    rule = serializers.IntegerField(allow_null=True)
    expression = serializers.CharField()
    evaluated_at = serializers.DateTimeField()
    series = RuleSeriesSerializer(many=True)
    vanished = RuleVanishedSerializer(many=True)


def _rule_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "team"}


@extend_schema_view(
    list=extend_schema(summary="Threshold rules of the teams you can view"),
    retrieve=extend_schema(summary="One threshold rule"),
    create=extend_schema(
        summary="Create a threshold rule (managers)",
        request=AlertRuleCreateSerializer,
        responses={201: AlertRuleSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a threshold rule (managers)",
        request=AlertRuleUpdateSerializer,
        responses=AlertRuleSerializer,
    ),
    destroy=extend_schema(summary="Delete a rule, resolving its firing alerts (managers)"),
)
class AlertRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    model = AlertRule
    what = "rule"
    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilter
    required_actions = {
        **MANAGER_WRITES,
        "test": Action.VIEW,  # a dry run: it changes nothing
        "preview": Action.VIEW,
    }
    conflict_actions = {"create", "partial_update"}  # duplicate names (409)

    def shape(self, queryset: QuerySet[AlertRule]) -> QuerySet[AlertRule]:
        return (
            queryset.select_related("team", "service")
            .annotate(firing_count=Count("states", filter=Q(states__firing=True)))
            .order_by("team__name", "name", "id")
        )

    def _out(self, rule: AlertRule, code: int = status.HTTP_200_OK) -> Response:
        rule = self.get_queryset().get(pk=rule.pk)
        return Response(self.get_serializer(rule).data, status=code)

    def create(self, request: Request) -> Response:
        serializer = AlertRuleCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        team = serializer.validated_data["team"]
        self.check_object_permissions(request, team)
        rule = rules.create_rule(
            team, actor=request.user, **_rule_fields(serializer.validated_data)
        )
        return self._out(rule, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: int) -> Response:
        rule = self.get_object()
        serializer = AlertRuleUpdateSerializer(
            data=request.data,
            partial=True,
            context={**self.get_serializer_context(), "rule": rule},
        )
        serializer.is_valid(raise_exception=True)
        rules.update_rule(rule, actor=request.user, **serializer.validated_data)
        return self._out(rule)

    def destroy(self, request: Request, pk: int) -> Response:
        rules.delete_rule(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={200: RuleTestSerializer},
        summary="Evaluate the rule now without effect: values, states, what would change",
        operation_id="alert_rules_test",
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: int) -> Response:
        rule = self.get_object()
        given = {} if request.data is None else request.data
        NoInputSerializer(data=given).is_valid(raise_exception=True)
        return Response(RuleTestSerializer(rules.preview_rule(rule).as_dict()).data)

    @extend_schema(
        request=AlertRuleCreateSerializer,
        responses={200: RuleTestSerializer},
        summary="Try a rule before saving it: what it would see and do now",
        operation_id="alert_rules_preview",
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        serializer = AlertRuleCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        rule = serializer.rule_for(serializer.validated_data)
        return Response(RuleTestSerializer(rules.preview_rule(rule).as_dict()).data)
