"""The metrics API: write samples, read series and their points, manage threshold rules.

- ``POST /metrics/samples/``: one sample object, a list of them, or ``{"team", "samples"}``;
  responders and managers (people or their API tokens) write into their team. The team may be
  left out when the caller can write to exactly one. All samples are stored, or none.
- ``GET /metrics/series/`` and ``/metrics/series/{id}/samples/?since=&until=&resolution=``.
- ``/alert-rules/``: read by the team, changed by managers through ``monitoring.rules``;
  ``POST /alert-rules/{id}/test/`` and ``POST /alert-rules/preview/`` evaluate without effect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from monitoring import metrics, rules
from monitoring.matchers import MatcherError, format_matchers, from_stored, to_matchers
from monitoring.models import (
    Aggregation,
    AlertRule,
    Comparison,
    MetricKind,
    MetricSeries,
    Resolution,
    Service,
    Severity,
)
from monitoring.models.metrics import label_errors, metric_name_error
from tocsin.api.filters import StrictFilterSet, TeamRefField, TeamRefFilter
from tocsin.api.lookups import INT_LOOKUP, not_found, visible_teams
from tocsin.api.permissions import TeamRole, minimum_role
from tocsin.api.serializers import NoInputSerializer, StrictInputMixin, TeamRefSerializer
from tocsin.api.views import ApiMixin
from tocsin.models import Team
from tocsin.permissions import Action, scope, team_ids_for

router = SimpleRouter()

# resolution=auto: raw points up to this span, then 1-minute buckets up to the next.
AUTO_RAW_SPAN = timedelta(hours=2)
AUTO_MINUTE_SPAN = timedelta(days=7)


def _team_ref(value: Any, request: Any) -> Team:
    try:
        return TeamRefField(queryset=visible_teams(request)).clean(value)
    except ValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None


# --- Fields -------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.DATETIME)
class TimeField(serializers.DateTimeField):
    """ISO 8601, or seconds since the Unix epoch (what most metric scripts have at hand)."""

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return datetime.fromtimestamp(value, tz=UTC)
            except (OverflowError, OSError, ValueError):
                raise serializers.ValidationError("not a valid Unix time") from None
        return super().to_internal_value(value)


@extend_schema_field(OpenApiTypes.NUMBER)
class FiniteNumberField(serializers.Field):
    """A JSON number that is finite; strings and booleans are refused, not coerced."""

    def to_internal_value(self, value: Any) -> float:
        error = metrics.value_error(value)
        if error:
            raise serializers.ValidationError(error)
        return float(value)

    def to_representation(self, value: Any) -> float:
        return value


# A pattern rather than an enum in the schema: drf-spectacular names enums after the field, and
# a second "kind" enum (integrations have one) fails the warning-free schema check.
@extend_schema_field({"type": "string", "pattern": f"^({'|'.join(MetricKind.values)})$"})
class MetricKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=MetricKind.choices, **kwargs)


# --- Samples ------------------------------------------------------------------------------------


class SampleSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(help_text="Metric name, e.g. `queue_depth`.")
    value = FiniteNumberField()
    labels = serializers.JSONField(required=False, help_text='e.g. {"host": "web-1"}')
    time = TimeField(
        required=False,
        help_text="ISO 8601 or Unix seconds; now when left out. At most 50 minutes old.",
    )
    kind = MetricKindField(required=False, help_text="For a new series; gauge when left out.")

    def validate_name(self, value: str) -> str:
        error = metric_name_error(value)
        if error:
            raise serializers.ValidationError(error)
        return value

    def validate_labels(self, value: Any) -> dict[str, str]:
        error = label_errors(value)
        if error:
            raise serializers.ValidationError(error)
        return value or {}

    def validate_time(self, value: datetime) -> datetime:
        error = metrics.time_error(value, self.context["now"])
        if error:
            raise serializers.ValidationError(error)
        return value


class SingleSampleSerializer(SampleSerializer):
    team = serializers.CharField(
        required=False, help_text="Team id or slug; needed when you can write to several."
    )


class SampleBatchSerializer(StrictInputMixin, serializers.Serializer):
    team = serializers.CharField(
        required=False, help_text="Team id or slug; needed when you can write to several."
    )
    samples = serializers.ListField(
        child=SampleSerializer(), allow_empty=False, max_length=metrics.MAX_BATCH
    )


class RecordedSerializer(serializers.Serializer):
    team = serializers.IntegerField()
    samples = serializers.IntegerField(help_text="Samples stored.")
    series = serializers.IntegerField(help_text="Series they belong to.")
    new_series = serializers.IntegerField(help_text="Series created by this request.")


class MetricSampleViewSet(ApiMixin, viewsets.GenericViewSet):
    """Write samples: responders and managers, into their own team."""

    permission_classes = [IsAuthenticated, TeamRole]
    required_actions = {"create": Action.RESPOND}
    serializer_class = SampleBatchSerializer

    @extend_schema(
        request=SampleBatchSerializer,
        responses={201: RecordedSerializer},
        summary="Record metric samples (responders)",
        description=(
            "The body is one sample object, a list of samples, or "
            '`{"team": …, "samples": [...]}`. All samples are stored, or none.'
        ),
    )
    def create(self, request: Request) -> Response:
        context = {**self.get_serializer_context(), "now": timezone.now()}
        body = request.data
        if isinstance(body, list):
            shape, team_ref = "list", None
            serializer = SampleSerializer(data=body, many=True, context=context)
            if not body:
                raise serializers.ValidationError(["send at least one sample"])
            if len(body) > metrics.MAX_BATCH:
                raise serializers.ValidationError(
                    [f"at most {metrics.MAX_BATCH} samples per request"]
                )
        elif isinstance(body, dict) and "samples" in body:
            shape = "batch"
            serializer = SampleBatchSerializer(data=body, context=context)
        elif isinstance(body, dict):
            shape = "single"
            serializer = SingleSampleSerializer(data=body, context=context)
        else:
            raise serializers.ValidationError(
                ['send one sample object, a list of samples, or {"samples": [...]}']
            )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if shape == "list":
            samples = list(data)
        elif shape == "batch":
            team_ref, samples = data.get("team"), data["samples"]
        else:
            team_ref, samples = data.pop("team", None), [data]
        team = self._team(request, team_ref)
        try:
            recorded = metrics.record_samples(
                team, [metrics.SampleInput(**sample) for sample in samples], now=context["now"]
            )
        except metrics.SampleError as exc:
            where = {"list": f"{exc.index}.", "batch": f"samples.{exc.index}.", "single": ""}
            raise serializers.ValidationError(
                {f"{where[shape]}{exc.sample_field}": [exc.message]}
            ) from None
        body = {
            "team": team.pk,
            "samples": recorded.samples,
            "series": recorded.series,
            "new_series": recorded.new_series,
        }
        return Response(RecordedSerializer(body).data, status=status.HTTP_201_CREATED)

    def _team(self, request: Request, ref: str | None) -> Team:
        """The named team (404-like 400 if invisible, 403 without the role), or the only team
        the caller may write to."""
        if ref is not None:
            try:
                team = _team_ref(ref, request)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"team": exc.detail}) from None
            self.check_object_permissions(request, team)
            return team
        writable = team_ids_for(request.user, Action.RESPOND)
        if writable is not None and len(writable) == 1:
            return Team.objects.get(pk=next(iter(writable)))
        if writable is not None and not writable:
            raise PermissionDenied(f"this needs the {minimum_role(Action.RESPOND)} role in a team")
        raise serializers.ValidationError(
            {"team": ["you may write to several teams: name one (id or slug)"]}
        )


# --- Series -------------------------------------------------------------------------------------


class SeriesFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams)
    name = django_filters.CharFilter(help_text="Exact metric name.")
    name_prefix = django_filters.CharFilter(field_name="name", lookup_expr="startswith")
    kind = django_filters.ChoiceFilter(choices=MetricKind.choices)

    class Meta:
        model = MetricSeries
        fields: list[str] = []


class SeriesSerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    kind = MetricKindField(read_only=True)
    display_name = serializers.CharField(read_only=True, help_text='`name{label="value"}`')

    class Meta:
        model = MetricSeries
        fields = [
            "id",
            "team",
            "name",
            "labels",
            "kind",
            "display_name",
            "last_value",
            "last_at",
            "created_at",
        ]
        read_only_fields = fields


class PointsQuerySerializer(StrictInputMixin, serializers.Serializer):
    ignored_keys = frozenset({"format"})

    since = TimeField(required=False, help_text="Default: an hour before `until`.")
    until = TimeField(required=False, help_text="Default: now.")
    resolution = serializers.ChoiceField(
        choices=["auto", "raw", *Resolution.values], default="auto"
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        until = data.get("until") or timezone.now()
        since = data.get("since") or until - timedelta(hours=1)
        if since >= until:
            raise serializers.ValidationError({"until": ["must be later than since"]})
        resolution = data["resolution"]
        if resolution == "auto":
            span = until - since
            resolution = (
                "raw"
                if span <= AUTO_RAW_SPAN
                else Resolution.MINUTE
                if span <= AUTO_MINUTE_SPAN
                else Resolution.HOUR
            )
        return {"since": since, "until": until, "resolution": str(resolution)}


class PointSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    value = serializers.FloatField(required=False, help_text="Raw points only.")
    avg = serializers.FloatField(required=False, help_text="Buckets only, as are the rest.")
    min = serializers.FloatField(required=False)
    max = serializers.FloatField(required=False)
    last = serializers.FloatField(required=False)
    count = serializers.IntegerField(required=False)


class PointsSerializer(serializers.Serializer):
    series = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    resolution = serializers.CharField()
    points = PointSerializer(many=True)


@extend_schema_view(
    list=extend_schema(summary="Metric series you can view"),
    retrieve=extend_schema(summary="One metric series"),
)
class MetricSeriesViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = SeriesSerializer
    filterset_class = SeriesFilter
    lookup_value_regex = INT_LOOKUP

    def get_queryset(self) -> QuerySet[MetricSeries]:
        if getattr(self, "swagger_fake_view", False):
            return MetricSeries.objects.none()
        return (
            scope(MetricSeries.objects.all(), self.request.user, Action.VIEW)
            .select_related("team")
            .order_by("name", "id")
        )

    def get_object(self) -> MetricSeries:
        series = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if series is None:
            raise not_found("series")
        return series

    @extend_schema(
        parameters=[PointsQuerySerializer],
        responses=PointsSerializer,
        summary="A series' points: raw samples or 1m/1h buckets",
        description=(
            "`resolution=auto` picks raw points for up to 2 hours, 1-minute buckets up to 7 "
            "days, hourly buckets beyond. Raw samples are kept for 2 days, 1-minute buckets "
            "for 14 days, hourly buckets for 400 days."
        ),
        operation_id="metrics_series_samples",
    )
    @action(detail=True, methods=["get"], url_path="samples", filterset_class=None)
    def samples(self, request: Request, pk: int) -> Response:
        series = self.get_object()
        query = PointsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        points = metrics.series_points(series, **params)
        body = {"series": series.pk, **params, "points": points}
        return Response(PointsSerializer(body).data)


# --- Alert rules --------------------------------------------------------------------------------


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
        fields = [
            "id",
            "team",
            "service",
            "name",
            "metric",
            "matchers",
            "matchers_text",
            "aggregation",
            "window_seconds",
            "comparison",
            "threshold",
            "for_seconds",
            "severity",
            "labels",
            "summary_template",
            "description_template",
            "enabled",
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

    service = serializers.IntegerField(min_value=1, help_text="The service alerts raise on.")
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
        return _team_ref(value, self.context.get("request"))


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
class AlertRuleViewSet(
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = AlertRuleSerializer
    permission_classes = [IsAuthenticated, TeamRole]
    lookup_value_regex = INT_LOOKUP
    required_actions = {
        "create": Action.MANAGE,
        "partial_update": Action.MANAGE,
        "destroy": Action.MANAGE,
        "test": Action.VIEW,  # a dry run: it changes nothing
        "preview": Action.VIEW,
    }
    conflict_actions = {"create", "partial_update"}  # duplicate names (409)

    class Filter(StrictFilterSet):
        team = TeamRefFilter(queryset=visible_teams)
        service = django_filters.NumberFilter(field_name="service")
        enabled = django_filters.BooleanFilter()
        metric = django_filters.CharFilter()

        class Meta:
            model = AlertRule
            fields: list[str] = []

    filterset_class = Filter

    def get_queryset(self) -> QuerySet[AlertRule]:
        if getattr(self, "swagger_fake_view", False):
            return AlertRule.objects.none()
        return (
            scope(AlertRule.objects.all(), self.request.user, Action.VIEW)
            .select_related("team", "service")
            .annotate(firing_count=Count("states", filter=Q(states__firing=True)))
            .order_by("team__name", "name", "id")
        )

    def get_object(self) -> AlertRule:
        rule = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if rule is None:
            raise not_found("rule")
        self.check_object_permissions(self.request, rule)
        return rule

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


router.register("metrics/samples", MetricSampleViewSet, basename="api-metric-sample")
router.register("metrics/series", MetricSeriesViewSet, basename="api-metric-series")
router.register("alert-rules", AlertRuleViewSet, basename="api-alert-rule")
