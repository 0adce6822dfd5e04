"""Response targets and the incident report under /api/v1/.

Viewers read targets and reports of their teams; managers create, change and delete targets
(through ``incidents.slas.services``, which records each change in the event log). The report takes
the
same filters as the Reports page and answers the same figures.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from incidents.models import MAX_TARGET_MINUTES, Priority, ResponseTarget
from incidents.reports import queries as reports
from incidents.slas import services as slas
from monitoring.models import Service
from tocsin.api.filters import IdFilter, StrictFilterSet, TeamRefField, TeamRefFilter
from tocsin.api.lookups import visible_teams
from tocsin.api.serializers import IdField, StrictInputMixin, TeamRefSerializer
from tocsin.api.viewsets import MANAGER_WRITES, ApiMixin, TeamScopedViewSet
from tocsin.permissions import Action, scope

router = SimpleRouter()


# --- Response targets ---------------------------------------------------------------------------


class ResponseTargetFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams)
    service = IdFilter(field_name="service")
    priority = django_filters.MultipleChoiceFilter(choices=Priority.choices)

    class Meta:
        model = ResponseTarget
        fields: list[str] = []


class ResponseTargetSerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    service = serializers.SerializerMethodField()

    class Meta:
        model = ResponseTarget
        fields = [
            "id",
            "team",
            "service",
            "priority",
            "ack_minutes",
            "resolve_minutes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_service(self, target: ResponseTarget) -> dict[str, Any] | None:
        if target.service_id is None:
            return None
        return {"id": target.service_id, "name": target.service.name}


_MINUTES = {"min_value": 1, "max_value": MAX_TARGET_MINUTES, "allow_null": True}


class ResponseTargetWriteSerializer(StrictInputMixin, serializers.Serializer):
    ack_minutes = serializers.IntegerField(
        required=False,
        help_text="Acknowledge within this many minutes; null = no target.",
        **_MINUTES,
    )
    resolve_minutes = serializers.IntegerField(
        required=False, help_text="Resolve within this many minutes; null = no target.", **_MINUTES
    )


class ResponseTargetCreateSerializer(ResponseTargetWriteSerializer):
    team = serializers.CharField(help_text="Team id or slug; you need the manager role in it.")
    priority = serializers.ChoiceField(choices=Priority.choices)
    service = IdField(
        required=False,
        allow_null=True,
        help_text="A service of the team, to override the team's target for it; null = all.",
    )

    def validate_team(self, value: str) -> Any:
        from django.core.exceptions import ValidationError

        field = TeamRefField(queryset=visible_teams(self.context.get("request")))
        try:
            return field.clean(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def validate_service(self, value: int | None) -> Service | None:
        if value is None:
            return None
        request = self.context.get("request")
        service = scope(Service.objects.all(), request.user, Action.VIEW).filter(pk=value).first()
        if service is None:
            raise serializers.ValidationError("no service with this id that you can view")
        return service


class ResponseTargetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Response targets per team and priority (optionally per service)."""

    model = ResponseTarget
    what = "response target"
    serializer_class = ResponseTargetSerializer
    filterset_class = ResponseTargetFilter
    required_actions = MANAGER_WRITES
    conflict_actions = {"create"}

    def shape(self, queryset: QuerySet[ResponseTarget]) -> QuerySet[ResponseTarget]:
        return queryset.select_related("team", "service").order_by(
            "team__name", "service__name", "priority", "id"
        )

    @extend_schema(
        request=ResponseTargetCreateSerializer, responses={201: ResponseTargetSerializer}
    )
    def create(self, request: Request) -> Response:
        serializer = ResponseTargetCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        team = data.pop("team")
        self.check_object_permissions(request, team)
        target = slas.create_target(team, actor=request.user, **data)
        return Response(ResponseTargetSerializer(target).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ResponseTargetWriteSerializer, responses=ResponseTargetSerializer)
    def partial_update(self, request: Request, pk: int) -> Response:
        target = self.get_object()
        serializer = ResponseTargetWriteSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        slas.update_target(target, actor=request.user, **serializer.validated_data)
        return Response(ResponseTargetSerializer(target).data)

    def destroy(self, request: Request, pk: int) -> Response:
        slas.delete_target(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Report -------------------------------------------------------------------------------------


class FiguresSerializer(serializers.Serializer):
    incidents = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    mtta_seconds = serializers.FloatField(
        allow_null=True, help_text="Mean created → acknowledged; null when none was."
    )
    resolved = serializers.IntegerField()
    mttr_seconds = serializers.FloatField(
        allow_null=True, help_text="Mean created → resolved; null when none was."
    )
    ack_breaches = serializers.IntegerField()
    resolve_breaches = serializers.IntegerField()


class WeekFiguresSerializer(FiguresSerializer):
    week = serializers.DateField(help_text="The Monday the ISO week starts on (UTC).")


class ReportTeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class ReportServiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    team = serializers.CharField(help_text="The team's name.")


class TeamFiguresSerializer(serializers.Serializer):
    team = ReportTeamSerializer()
    total = FiguresSerializer()
    weeks = WeekFiguresSerializer(many=True)


class ServiceFiguresSerializer(serializers.Serializer):
    service = ReportServiceSerializer()
    total = FiguresSerializer()
    weeks = WeekFiguresSerializer(many=True)


class IncidentReportSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    weeks = serializers.ListField(child=serializers.DateField())
    total = FiguresSerializer()
    by_week = WeekFiguresSerializer(many=True)
    by_team = TeamFiguresSerializer(many=True)
    by_service = ServiceFiguresSerializer(many=True)


REPORT_PARAMS = [
    OpenApiParameter("team", OpenApiTypes.STR, description="Team id or slug (one you can view)."),
    OpenApiParameter("service", OpenApiTypes.INT, description="Service id (one you can view)."),
    OpenApiParameter(
        "since", OpenApiTypes.DATE, description="First day; default: Monday 11 weeks ago."
    ),
    OpenApiParameter("until", OpenApiTypes.DATE, description="Last day, included; default: today."),
]


class IncidentReportView(ApiMixin, APIView):
    """Incident counts, MTTA, MTTR and missed targets per ISO week, team and service."""

    @extend_schema(
        parameters=REPORT_PARAMS,
        responses=IncidentReportSerializer,
        operation_id="reports_incidents",
        summary="Incident report (the Reports page's figures)",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params) - set(reports.ReportFilterForm.base_fields) - {"format"})
        form = reports.ReportFilterForm(params, user=request.user)
        errors = dict(form.errors) if not form.is_valid() else {}
        known = ", ".join(sorted(reports.ReportFilterForm.base_fields))
        for name in unknown:
            errors[name] = [f"unknown filter; use one of: {known}"]
        if errors:
            raise serializers.ValidationError({k: list(v) for k, v in errors.items()})
        report = reports.build_from(form, request.user)
        return Response(IncidentReportSerializer(report.as_dict()).data)


router.register("response-targets", ResponseTargetViewSet, basename="api-response-target")
