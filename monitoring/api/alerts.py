"""The alerts API: /alerts/ under /api/v1/, read-only.

Alerts change through ingest and the pipeline; here they are only listed and read, among the
teams the caller may view (404 otherwise).
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers

from monitoring.api.catalog import ServiceSummarySerializer
from monitoring.api.filters import AlertFilter
from monitoring.models import Alert
from tocsin.api.pagination import KeysetPagination
from tocsin.api.viewsets import TeamScopedViewSet


class AlertPagination(KeysetPagination):
    """Most recently changed first: a million alerts page as cheaply as a hundred."""

    at_field = "last_change_at"


class AlertTeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()


class AlertSerializer(serializers.ModelSerializer):
    team = AlertTeamSerializer(read_only=True)
    service = ServiceSummarySerializer(read_only=True)
    flapping = serializers.BooleanField(source="is_flapping", read_only=True)
    suppressed_by = serializers.JSONField(
        read_only=True, help_text='What suppresses it: {"kind", "id", "label"}; {} when nothing.'
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "team",
            "service",
            "integration",
            "source",
            "fingerprint",
            "status",
            "severity",
            "summary",
            "description",
            "labels",
            "annotations",
            "details",
            "links",
            "generator_url",
            "starts_at",
            "ends_at",
            "first_seen_at",
            "last_seen_at",
            "last_change_at",
            "occurrences",
            "fired_count",
            "acknowledged_at",
            "flapping",
            "suppression",
            "suppressed_by",
        ]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(
        summary="Alerts you can see, most recently changed first",
        parameters=[
            OpenApiParameter("team", str, description="Team id or slug (a team you can view)."),
            OpenApiParameter("service", int, description="The service's id."),
            OpenApiParameter(
                "label",
                str,
                many=True,
                explode=True,
                description="`name=value`; repeat to require several labels.",
            ),
            OpenApiParameter(
                "suppressed", bool, description="Silenced, inhibited or in maintenance."
            ),
            OpenApiParameter("flapping", bool),
        ],
    ),
    retrieve=extend_schema(summary="One alert"),
)
class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Alerts, read-only: they change through ingest and the pipeline, not through edits here."""

    model = Alert
    what = "alert"
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    pagination_class = AlertPagination

    def shape(self, queryset: QuerySet[Alert]) -> QuerySet[Alert]:
        return queryset.select_related("service", "team").order_by("-last_change_at", "-id")
