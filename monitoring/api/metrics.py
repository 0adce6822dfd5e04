"""The metrics API: write samples, read series and their points (threshold rules: rules.py).

- ``POST /metrics/samples/``: one sample object, a list of them, or ``{"team", "samples"}``;
  responders and managers (people or their API tokens) write into their team. The team may be
  left out when the caller can write to exactly one. All samples are stored, or none.
- ``GET /metrics/series/`` and ``/metrics/series/{id}/samples/?since=&until=&resolution=``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
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

from monitoring import metrics
from monitoring.api.filters import SeriesFilter
from monitoring.models import MetricKind, MetricSeries, Resolution
from monitoring.models.metrics import label_errors, metric_name_error
from tocsin.api.filters import TeamRefField
from tocsin.api.lookups import visible_teams
from tocsin.api.permissions import TeamRole, minimum_role
from tocsin.api.serializers import StrictInputMixin, TeamRefSerializer
from tocsin.api.viewsets import ApiMixin, TeamScopedViewSet
from tocsin.models import Team
from tocsin.permissions import Action, team_ids_for

# resolution=auto: raw points up to this span, then 1-minute buckets up to the next.
AUTO_RAW_SPAN = timedelta(hours=2)
AUTO_MINUTE_SPAN = timedelta(days=7)


def team_ref(value: Any, request: Any) -> Team:
    """A team named by id or slug in a body, among those the caller may view (else a 400)."""
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
                team = team_ref(ref, request)
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
class MetricSeriesViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    model = MetricSeries
    what = "series"
    serializer_class = SeriesSerializer
    filterset_class = SeriesFilter

    def shape(self, queryset: QuerySet[MetricSeries]) -> QuerySet[MetricSeries]:
        return queryset.select_related("team").order_by("name", "id")

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
