"""SLOs: ``/slos/``, read by the team, changed by managers through ``monitoring.slos.services``;
``GET /slos/{id}/budget/`` computes the figures now (burn rates of every alert window, the
burn-down); ``GET /slos/{id}/openslo/`` and ``GET /slos/openslo/`` export OpenSLO YAML;
``POST /slos/import/`` imports it (managers of the team), all documents or none.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api.metrics import team_ref
from monitoring.api.rules import ServiceRefSerializer
from monitoring.models import Service, ServiceLevelObjective
from monitoring.slos import alerts, openslo, registry, services
from monitoring.slos.budget import figures
from monitoring.slos.compute import Counter
from monitoring.slos.windows import SLICE_MINUTES, Budgeting, Window
from tocsin.api.filters import IdFilter, StrictFilterSet, TeamRefFilter
from tocsin.api.lookups import visible_teams
from tocsin.api.serializers import IdField, StrictInputMixin
from tocsin.api.viewsets import MANAGER_WRITES, TeamScopedViewSet
from tocsin.permissions import Action, can, scope


class SLOFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams, field_name="service__team")
    service = IdFilter(field_name="service")

    class Meta:
        model = ServiceLevelObjective
        fields: list[str] = []


class SLOSerializer(serializers.ModelSerializer):
    team = serializers.IntegerField(source="service.team_id", read_only=True)
    service = ServiceRefSerializer(read_only=True)
    status = serializers.SerializerMethodField(
        help_text="ok, at_risk (under 25 % of the budget left), exhausted or no_data."
    )

    class Meta:
        model = ServiceLevelObjective
        fields = [
            "id",
            "team",
            "service",
            *services.FIELDS,
            "status",
            "computed_at",
            "attainment",
            "budget_remaining",
            "burn_rate",
            "exhausted_at",
            "sparkline",
            "alerted",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_status(self, slo: ServiceLevelObjective) -> str:
        from monitoring.slos.budget import status_of

        return status_of(slo.budget_remaining, slo.attainment is not None)


def _choice(choices: Any) -> serializers.ChoiceField:
    values = ", ".join(str(c[0]) for c in choices)
    return serializers.ChoiceField(
        choices=choices, error_messages={"invalid_choice": f'"{{input}}" is not one of: {values}'}
    )


class SLOInputSerializer(StrictInputMixin, serializers.Serializer):
    """Every field optional when changing (PATCH); the SLO's invariants are checked by the
    service and reported per field (``sli_config.threshold_ms``)."""

    service = IdField(help_text="The service's id; you need the manager role in its team.")
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    sli_kind = serializers.CharField(
        max_length=32, help_text=f"One of: {', '.join(registry.BUILTIN)}."
    )
    sli_config = serializers.JSONField(
        required=False,
        help_text='The indicator\'s settings: {"checks": [ids]} for probes, plus '
        '{"threshold_ms": 250} for latency; {"good": "selector", "total": "selector"} for a '
        'metric ratio; {"priorities": ["P1", "P2"]} for incidents.',
    )
    objective = serializers.DecimalField(
        max_digits=7, decimal_places=4, help_text="Percent, e.g. 99.9."
    )
    window = _choice(Window.choices)
    time_zone = serializers.CharField(max_length=64, required=False)
    budgeting = _choice(Budgeting.choices)
    timeslice_target = serializers.DecimalField(
        max_digits=7, decimal_places=4, required=False, allow_null=True
    )
    timeslice_minutes = serializers.ChoiceField(choices=SLICE_MINUTES, required=False)
    alerting = serializers.BooleanField(required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for name in ("window", "budgeting"):
            fields[name].required = False
        return fields

    def validate_service(self, pk: int) -> Service:
        request = self.context["request"]
        visible = scope(Service.objects.select_related("team"), request.user, Action.VIEW)
        service = visible.filter(pk=pk).first()
        if service is None:
            raise serializers.ValidationError("no service with this id that you can view")
        instance = self.context.get("slo")
        if instance is not None and service.pk != instance.service_id:
            raise serializers.ValidationError("cannot be changed; create an SLO there instead")
        return service


class ImportSerializer(StrictInputMixin, serializers.Serializer):
    team = serializers.CharField(help_text="Team id or slug; you need the manager role in it.")
    service = IdField(
        required=False, help_text="Import into this service (else each document's spec.service)."
    )
    yaml = serializers.CharField(
        help_text="One or more OpenSLO v1 SLO documents, at most 256 KB, without anchors "
        "or aliases."
    )

    def validate_yaml(self, text: str) -> str:
        if len(text.encode("utf-8", errors="replace")) > openslo.MAX_BYTES:
            raise serializers.ValidationError(f"at most {openslo.MAX_BYTES // 1024} KB")
        return text


def _yaml(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@extend_schema_view(
    list=extend_schema(summary="SLOs of the teams you can view, with their last figures"),
    retrieve=extend_schema(summary="One SLO"),
    create=extend_schema(
        summary="Create an SLO (managers)",
        request=SLOInputSerializer,
        responses={201: SLOSerializer},
    ),
    partial_update=extend_schema(
        summary="Change an SLO (managers)", request=SLOInputSerializer, responses=SLOSerializer
    ),
    destroy=extend_schema(summary="Delete an SLO, resolving its burn-rate alerts (managers)"),
)
class SLOViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    model = ServiceLevelObjective
    what = "SLO"
    team_field = "service__team"
    serializer_class = SLOSerializer
    filterset_class = SLOFilter
    required_actions = {**MANAGER_WRITES, "budget": Action.VIEW, "export": Action.VIEW}
    conflict_actions = {"create", "partial_update"}

    def shape(self, queryset: QuerySet[ServiceLevelObjective]) -> QuerySet:
        return queryset.select_related("service", "service__team").order_by(
            "service__name", "name", "id"
        )

    def _out(self, slo: ServiceLevelObjective, code: int = status.HTTP_200_OK) -> Response:
        slo = self.get_queryset().get(pk=slo.pk)
        return Response(self.get_serializer(slo).data, status=code)

    def _saved(self, call: Any, *args: Any, **kwargs: Any) -> ServiceLevelObjective:
        try:
            return call(*args, **kwargs)
        except services.SLOInvalid as exc:
            raise serializers.ValidationError({k: [v] for k, v in exc.fields.items()}) from None

    def create(self, request: Request) -> Response:
        serializer = SLOInputSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        service = data.pop("service")
        self.check_object_permissions(request, service)
        slo = self._saved(services.create_slo, service, actor=request.user, **data)
        return self._out(slo, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: int) -> Response:
        slo = self.get_object()
        serializer = SLOInputSerializer(
            data=request.data,
            partial=True,
            context={**self.get_serializer_context(), "slo": slo},
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("service", None)
        self._saved(services.update_slo, slo, actor=request.user, **data)
        return self._out(slo)

    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_slo(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="The SLO's figures now: budget, burn rates of each alert window, burn-down",
        operation_id="slos_budget",
    )
    @action(detail=True, methods=["get"])
    def budget(self, request: Request, pk: int) -> Response:
        slo = self.get_object()
        now = timezone.now()
        try:
            counter = Counter(slo, now)
        except registry.ConfigError as exc:
            raise serializers.ValidationError({"sli_config": [str(exc)]}) from None
        found = figures(slo, now, counter=counter, chart=True)
        return Response(
            {
                "window_start": found.start,
                "window_end": found.end,
                "computed_at": found.now,
                "good": found.tally.good,
                "total": found.tally.total,
                "attainment": found.attainment,
                "budget_remaining": found.budget_remaining,
                "burn_rate": found.burn_rate,
                "exhausted_at": found.exhausted_at,
                "status": found.status,
                "windows": [
                    {
                        "pair": b.pair.name,
                        "action": b.pair.action,
                        "factor": b.factor,
                        "long_burn_rate": b.long_rate,
                        "short_burn_rate": b.short_rate,
                        "firing": b.firing,
                    }
                    for b in alerts.burns(slo, now, counter)
                ],
                "burn_down": [{"time": t, "budget_remaining": v} for t, v in found.burn_down],
            }
        )

    @extend_schema(
        responses={(200, "application/yaml"): OpenApiTypes.ANY},
        summary="The SLO as an OpenSLO v1 document (YAML)",
        operation_id="slos_openslo_one",
    )
    @action(detail=True, methods=["get"], url_path="openslo")
    def export(self, request: Request, pk: int) -> HttpResponse:
        slo = self.get_object()
        return _yaml(openslo.export([slo]), f"{slo.slug}.openslo.yaml")

    @extend_schema(
        responses={(200, "application/yaml"): OpenApiTypes.ANY},
        summary="Every SLO you can view (or those the filters choose), as OpenSLO YAML",
        operation_id="slos_openslo_all",
    )
    @action(detail=False, methods=["get"], url_path="openslo")
    def export_all(self, request: Request) -> HttpResponse:
        slos = list(self.filter_queryset(self.get_queryset()))
        return _yaml(openslo.export(slos), "slos.openslo.yaml")

    @extend_schema(
        request=ImportSerializer,
        responses={200: SLOSerializer(many=True)},
        summary="Import OpenSLO YAML (managers): every document, or none with errors per field",
        operation_id="slos_import",
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_yaml(self, request: Request) -> Response:
        serializer = ImportSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            team = team_ref(data["team"], request)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"team": exc.detail}) from None
        if not can(request.user, Action.MANAGE, team):
            self.permission_denied(request, message="the manager role in this team is needed")
        service = None
        if data.get("service"):
            service = Service.objects.filter(team=team, pk=data["service"]).first()
            if service is None:
                raise serializers.ValidationError({"service": ["no service of this team"]})
        try:
            saved = openslo.import_documents(
                data["yaml"], team, service=service, actor=request.user
            )
        except openslo.ImportFailed as exc:
            raise serializers.ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        except services.SLOInvalid as exc:
            raise serializers.ValidationError({k: [v] for k, v in exc.fields.items()}) from None
        rows = self.get_queryset().filter(pk__in=[s.pk for s in saved])
        return Response(self.get_serializer(rows, many=True).data)
