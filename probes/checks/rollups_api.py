"""The rollups' API: a check's days as rows (``/check-rollups/``) and a check's minutes, hours
or days unpacked (``/checks/{id}/rollups/``, an action of ``probes.checks.api.CheckViewSet``)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers

from probes.checks.choices import Period
from probes.checks.models import Check, Rollup
from probes.checks.results import HISTOGRAM_EDGES
from probes.checks.rollups import points as rollup_points
from tocsin.api.filters import IdFilter, StrictFilterSet
from tocsin.api.pagination import KeysetPagination
from tocsin.api.serializers import StrictInputMixin
from tocsin.api.viewsets import TeamScopedViewSet

POINTS_WINDOW = {
    Period.MINUTE: timedelta(days=1),
    Period.HOUR: timedelta(days=90),
    Period.DAY: timedelta(days=731),
}
_UPTIME_HELP = "Share of known runs that were up or degraded (unknown gaps are left out)."
_HISTOGRAM_HELP = (
    "Runs per latency bin; the bins' upper edges in ms are "
    f"{', '.join(map(str, HISTOGRAM_EDGES))}, and the last bin holds the slower ones."
)


class RollupSerializer(serializers.ModelSerializer):
    """A check's day: what uptime bars and SLOs over days read."""

    team = serializers.IntegerField(source="probe.service.team_id", read_only=True)
    check = serializers.IntegerField(source="probe_id", read_only=True)
    uptime = serializers.FloatField(read_only=True, allow_null=True, help_text=_UPTIME_HELP)
    histogram = serializers.SerializerMethodField(help_text=_HISTOGRAM_HELP)

    class Meta:
        model = Rollup
        fields = [
            "id",
            "team",
            "check",
            "day",
            "up",
            "degraded",
            "down",
            "unknown",
            "uptime",
            "p50",
            "p95",
            "p99",
            "histogram",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_histogram(self, rollup: Rollup) -> list[int]:
        return rollup.counts()


class CheckPointSerializer(serializers.Serializer):
    """One minute, hour or day of a check (buckets in which nothing ran are left out)."""

    bucket_start = serializers.DateTimeField()
    up = serializers.IntegerField()
    degraded = serializers.IntegerField()
    down = serializers.IntegerField()
    unknown = serializers.IntegerField()
    uptime = serializers.FloatField(allow_null=True, help_text=_UPTIME_HELP)
    p50 = serializers.IntegerField(allow_null=True, help_text="ms")
    p95 = serializers.IntegerField(allow_null=True, help_text="ms")
    p99 = serializers.IntegerField(allow_null=True, help_text="ms")
    histogram = serializers.ListField(
        child=serializers.IntegerField(),
        allow_null=True,
        help_text=f"{_HISTOGRAM_HELP} Null for minutes (their percentiles are exact).",
    )


class CheckPointsQuerySerializer(StrictInputMixin, serializers.Serializer):
    period = serializers.ChoiceField(choices=Period.choices, default=Period.HOUR)
    since = serializers.DateTimeField(
        required=False, help_text="Buckets starting at or after (default: one window back)."
    )
    until = serializers.DateTimeField(
        required=False, help_text="Buckets starting before (default: now)."
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        window = POINTS_WINDOW[data["period"]]
        until = data.get("until") or timezone.now()
        since = data.get("since") or until - window
        if since >= until:
            raise serializers.ValidationError({"since": ["must be before until"]})
        if until - since > window:
            raise serializers.ValidationError(
                {
                    "since": [
                        f"at most {window.days} days of {Period(data['period']).label.lower()}s "
                        "at a time; page with since and until"
                    ]
                }
            )
        return {**data, "since": since, "until": until}


class CheckPointsSerializer(serializers.Serializer):
    check = serializers.IntegerField()
    period = serializers.CharField(help_text="m (minute), h (hour) or d (day).")
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    points = CheckPointSerializer(many=True)


def _point_data(at: Any, point: Any, period: str) -> dict[str, Any]:
    return {
        "bucket_start": at,
        **point.counts(),
        "uptime": point.uptime,
        **point.percentiles(),
        "histogram": None if period == Period.MINUTE else point.histogram,
    }


def points_answer(check: Check, params: QueryDict) -> dict[str, Any]:
    """What ``GET /checks/{id}/rollups/`` answers: the check's points in the asked window."""
    query = CheckPointsQuerySerializer(data=params)
    query.is_valid(raise_exception=True)
    period, since, until = (query.validated_data[name] for name in ("period", "since", "until"))
    found = rollup_points(check.pk, period, since, until)
    return {
        "check": check.pk,
        "period": period,
        "since": serializers.DateTimeField().to_representation(since),
        "until": serializers.DateTimeField().to_representation(until),
        "points": CheckPointSerializer(
            [_point_data(at, point, period) for at, point in found], many=True
        ).data,
    }


# --- Filters and views


class RollupFilter(StrictFilterSet):
    check = IdFilter(field_name="probe", method="of_check")
    since = django_filters.IsoDateTimeFilter(
        field_name="day", method="since_day", help_text="Days from this one."
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="day", method="until_day", help_text="Days before this one."
    )

    class Meta:
        model = Rollup
        fields: list[str] = []

    def of_check(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        return queryset.filter(Rollup.days_of(value))  # a range of the key, not a scan

    def since_day(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(day__gte=value.astimezone(UTC).date())

    def until_day(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(day__lt=value.astimezone(UTC).date())


class RollupPagination(KeysetPagination):
    at_field = "day"


@extend_schema_view(
    list=extend_schema(summary="Days (rollups) of the checks you can view, newest first"),
    retrieve=extend_schema(summary="One check's day"),
)
class RollupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """A check's day: counts per status, latency percentiles and histogram (what uptime bars
    and SLOs over days read), kept 2 years by default. A check's hours (90 days) and minutes
    (14 days) are read from ``/checks/{id}/rollups/``."""

    model = Rollup
    what = "check rollup"
    team_field = "probe__service__team"
    serializer_class = RollupSerializer
    filterset_class = RollupFilter
    pagination_class = RollupPagination

    def shape(self, queryset: QuerySet[Rollup]) -> QuerySet[Rollup]:
        return (
            queryset.select_related("probe__service")
            .defer("hours", "minutes")
            .order_by("-day", "-id")
        )
