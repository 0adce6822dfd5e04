"""REST endpoints for maintenance windows: managers change them, the team reads them.

While a window is open, its service's alerts are stored but do not page
(``monitoring.suppression``).
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring import suppression as services
from monitoring.api.filters import MaintenanceWindowFilter
from monitoring.api.suppression import (
    DurationTextField,
    ScopedInput,
    visible_service_field,
)
from monitoring.models import MaintenanceWindow, Service
from monitoring.services import service_team_in_body
from monitoring.suppression import maintenance
from tocsin.api.viewsets import ManagedViewSet
from tocsin.models import Team


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    team = serializers.IntegerField(source="service.team_id", read_only=True)
    duration = serializers.SerializerMethodField(help_text="Seconds; null for a one-off window.")
    active = serializers.SerializerMethodField()

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "team", "service", *maintenance.WINDOW_FIELDS, "active", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_duration(self, window: MaintenanceWindow) -> int | None:
        return None if window.duration is None else int(window.duration.total_seconds())

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_active(self, window: MaintenanceWindow) -> bool:
        return window.is_active()


class MaintenanceWindowInputSerializer(ScopedInput):
    service = visible_service_field()
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False
    )
    start_time = serializers.TimeField(required=False, allow_null=True)
    duration = DurationTextField(required=False, allow_null=True)
    time_zone = serializers.CharField(required=False, max_length=64)

    def validate_service(self, service: Service) -> Service:
        if self.instance is not None and service.pk != self.instance.service_id:
            raise serializers.ValidationError("cannot be changed; create a window there instead")
        return service


@extend_schema_view(
    list=extend_schema(summary="Maintenance windows of the teams you can view"),
    retrieve=extend_schema(summary="One maintenance window"),
)
class MaintenanceWindowViewSet(ManagedViewSet):
    """While a window is open, its service's alerts are stored but do not page."""

    model = MaintenanceWindow
    what = "maintenance window"
    team_field = "service__team"
    serializer_class = MaintenanceWindowSerializer
    filterset_class = MaintenanceWindowFilter

    def shape(self, queryset: QuerySet[MaintenanceWindow]) -> QuerySet[MaintenanceWindow]:
        return queryset.select_related("service").order_by("service__name", "title", "id")

    def permission_team(self) -> Team | None:
        return service_team_in_body(self.request) if self.action == "create" else None

    @extend_schema(
        summary="Create a maintenance window (managers)",
        request=MaintenanceWindowInputSerializer,
        responses={201: MaintenanceWindowSerializer},
    )
    def create(self, request: Request) -> Response:
        data = self.valid_input(MaintenanceWindowInputSerializer)
        self.check_object_permissions(request, data["service"].team)
        window = services.create_maintenance_window(actor=request.user, **data)
        return Response(MaintenanceWindowSerializer(window).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a maintenance window (managers)",
        request=MaintenanceWindowInputSerializer,
        responses=MaintenanceWindowSerializer,
    )
    def partial_update(self, request: Request, pk: int) -> Response:
        window = self.get_object()
        data = self.valid_input(MaintenanceWindowInputSerializer, window)
        data.pop("service", None)
        window = services.update_maintenance_window(window, actor=request.user, **data)
        return Response(MaintenanceWindowSerializer(window).data)

    @extend_schema(summary="Delete a maintenance window (managers)")
    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_maintenance_window(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
