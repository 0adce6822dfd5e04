"""The catalog and alerts API: /services/, /integrations/ and /alerts/ under /api/v1/.

Same rules as tocsin.api: everything is looked up in querysets already narrowed to what the
caller may view (404 otherwise), writes need the manager role in the object's team (403), and
writes go through ``monitoring.services``, whose refusals become the one error shape. Ingest keys
appear in exactly two responses: creating an integration and rotating its key.
"""

from __future__ import annotations

import re
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from monitoring import services
from monitoring.models import (
    Alert,
    AlertStatus,
    Integration,
    IntegrationKind,
    Service,
    Severity,
)
from tocsin.api.filters import IntegerFilter, StrictFilterSet, TeamRefField, TeamRefFilter
from tocsin.api.lookups import INT_LOOKUP, not_found, validated, visible_teams
from tocsin.api.permissions import TeamRole
from tocsin.api.serializers import NoInputSerializer, StrictInputMixin, TeamRefSerializer
from tocsin.api.views import ApiMixin
from tocsin.permissions import Action, scope

router = SimpleRouter()


# --- Filters --------------------------------------------------------------------------------------


class StrictBooleanField(forms.Field):
    """``true``/``false`` (or 1/0, yes/no); anything else is a 400, not an ignored filter."""

    TRUE = frozenset({"true", "1", "yes"})
    FALSE = frozenset({"false", "0", "no"})

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValidationError("true or false", code="invalid")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class LabelMatchField(forms.Field):
    """Repeatable ``label=name=value``: every given label must have exactly that value."""

    widget = forms.MultipleHiddenInput  # reads every occurrence of the parameter

    def to_python(self, value: Any) -> list[tuple[str, str]]:
        matches = []
        for raw in value or []:
            name, sep, wanted = str(raw).partition("=")
            name = name.strip()
            if not sep or not LABEL_NAME.match(name):
                raise ValidationError(
                    f"{raw!r} is not name=value (a label name, '=', then its value)",
                    code="invalid",
                )
            matches.append((name, wanted))
        return matches


@extend_schema_field(OpenApiTypes.STR)
class LabelMatchFilter(django_filters.Filter):
    field_class = LabelMatchField

    def filter(self, qs: QuerySet, value: list[tuple[str, str]]) -> QuerySet:
        for name, wanted in value or []:
            # The plain Exact lookup on the label's text (JSON_EXTRACT / ->>), not the JSON-aware
            # one a KeyTransform would pick: label values are strings, compared as strings.
            qs = qs.filter(Exact(KeyTextTransform(name, "labels"), wanted))
        return qs


class ServiceFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams)
    search = django_filters.CharFilter(method="filter_search", help_text="In name, slug, tags.")

    class Meta:
        model = Service
        fields: list[str] = []

    def filter_search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(
            Q(name__icontains=value) | Q(slug__icontains=value) | Q(tags__icontains=value)
        )


class IntegrationFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams, field_name="service__team")
    service = IntegerFilter(field_name="service", min_value=1)
    kind = django_filters.ChoiceFilter(choices=IntegrationKind.choices)
    revoked = StrictBooleanFilter(method="filter_revoked")

    class Meta:
        model = Integration
        fields: list[str] = []

    def filter_revoked(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return qs
        return qs.filter(revoked_at__isnull=not value)


class AlertFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.MultipleChoiceFilter(
        choices=Severity.choices,
        help_text="Repeat for several: `severity=critical&severity=error`.",
    )
    service = IntegerFilter(field_name="service", min_value=1)
    team = TeamRefFilter(queryset=visible_teams)
    suppressed = StrictBooleanFilter(method="filter_suppressed")
    flapping = StrictBooleanFilter(field_name="is_flapping")
    label = LabelMatchFilter(help_text="`name=value`; repeat to require several labels.")
    search = django_filters.CharFilter(method="filter_search", help_text="In summary and labels.")

    class Meta:
        model = Alert
        fields: list[str] = []

    def filter_suppressed(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return qs
        return qs.exclude(suppression="") if value else qs.filter(suppression="")

    def filter_search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(Q(summary__icontains=value) | Q(labels__icontains=value))


# --- Serializers ----------------------------------------------------------------------------------


class ServiceSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "name", "slug"]


class ServiceSerializer(serializers.ModelSerializer):
    """A service as listed and returned after a change."""

    team = TeamRefSerializer(read_only=True)
    firing_alerts = serializers.SerializerMethodField(help_text="Alerts firing now.")
    integrations = serializers.SerializerMethodField(help_text="Integrations not revoked.")

    class Meta:
        model = Service
        fields = [
            "id",
            "team",
            "name",
            "slug",
            "description",
            "runbook_url",
            "tags",
            "created_at",
            "firing_alerts",
            "integrations",
        ]
        read_only_fields = fields

    def get_firing_alerts(self, service: Service) -> int:
        if hasattr(service, "firing_count"):
            return service.firing_count
        return service.alerts.filter(status=AlertStatus.FIRING).count()

    def get_integrations(self, service: Service) -> int:
        if hasattr(service, "integration_count"):
            return service.integration_count
        return service.integrations.usable().count()


def _tags_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=services.MAX_TAG_LENGTH),
        max_length=services.MAX_TAGS,
        required=False,
    )


class ServiceCreateSerializer(StrictInputMixin, serializers.Serializer):
    team = serializers.CharField(help_text="Team id or slug; you need the manager role in it.")
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(
        max_length=100, required=False, help_text="Derived from the name when left out."
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    runbook_url = serializers.URLField(required=False, allow_blank=True)
    tags = _tags_field()

    def validate_team(self, value: str) -> Any:
        field = TeamRefField(queryset=visible_teams(self.context.get("request")))
        try:
            return field.clean(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class ServiceUpdateSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    runbook_url = serializers.URLField(required=False, allow_blank=True)
    tags = _tags_field()


class IntegrationSerializer(serializers.ModelSerializer):
    service = ServiceSummarySerializer(read_only=True)
    team = serializers.IntegerField(source="service.team_id", read_only=True)
    active = serializers.SerializerMethodField(help_text="Not revoked: its key is accepted.")
    ingest_url = serializers.SerializerMethodField(
        help_text="Where the sender posts; `<your key>` stands for the key, shown only once."
    )

    class Meta:
        model = Integration
        fields = [
            "id",
            "service",
            "team",
            "kind",
            "name",
            "key_prefix",
            "rate_limit_per_minute",
            "created_at",
            "key_rotated_at",
            "revoked_at",
            "last_received_at",
            "active",
            "ingest_url",
        ]
        read_only_fields = fields

    def get_active(self, integration: Integration) -> bool:
        return integration.revoked_at is None

    def get_ingest_url(self, integration: Integration) -> str:
        return services.ingest_url(integration.kind, self.context.get("raw_key"))


class NewKeySerializer(IntegrationSerializer):
    """The answer to creating an integration or rotating its key: the only time the key shows."""

    key = serializers.SerializerMethodField(
        help_text="The ingest key. Shown once: store it in the sender now; it cannot be read again."
    )

    class Meta(IntegrationSerializer.Meta):
        fields = [*IntegrationSerializer.Meta.fields, "key"]

    def get_key(self, integration: Integration) -> str:
        return self.context["raw_key"]


class IntegrationCreateSerializer(StrictInputMixin, serializers.Serializer):
    service = serializers.IntegerField(min_value=1, help_text="The service's id.")
    # All kinds (one enum in the schema); the service refuses "internal" with a 400.
    kind = serializers.ChoiceField(choices=IntegrationKind.choices)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    rate_limit_per_minute = serializers.IntegerField(min_value=0, required=False)


class IntegrationUpdateSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    rate_limit_per_minute = serializers.IntegerField(min_value=0, required=False)


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


# --- Views ----------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Services you can view"),
    retrieve=extend_schema(summary="One service"),
    create=extend_schema(
        summary="Create a service (managers of its team)",
        request=ServiceCreateSerializer,
        responses={201: ServiceSerializer},
    ),
    partial_update=extend_schema(
        summary="Rename, describe or re-tag a service (managers)",
        request=ServiceUpdateSerializer,
        responses=ServiceSerializer,
    ),
    destroy=extend_schema(summary="Delete a service that never had alerts (managers)"),
)
class ServiceViewSet(
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The service catalog. Changes go through ``monitoring.services`` and are recorded."""

    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter
    permission_classes = [IsAuthenticated, TeamRole]
    lookup_value_regex = INT_LOOKUP
    required_actions = {
        "create": Action.MANAGE,
        "partial_update": Action.MANAGE,
        "destroy": Action.MANAGE,
    }
    conflict_actions = {"create", "partial_update"}

    def get_queryset(self) -> QuerySet[Service]:
        if getattr(self, "swagger_fake_view", False):
            return Service.objects.none()
        return (
            scope(Service.objects.all(), self.request.user, Action.VIEW)
            .select_related("team")
            .annotate(
                firing_count=services.firing_count(),
                integration_count=services.integration_count(),
            )
            .order_by("team__name", "name", "id")
        )

    def get_object(self) -> Service:
        service = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if service is None:
            raise not_found("service")
        self.check_object_permissions(self.request, service)
        return service

    def create(self, request: Request) -> Response:
        data = validated(ServiceCreateSerializer, request.data, self.get_serializer_context())
        team = data.pop("team")
        self.check_object_permissions(request, team)
        service = services.create_service(team, actor=request.user, **data)
        return Response(
            ServiceSerializer(service, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    def partial_update(self, request: Request, pk: int) -> Response:
        service = self.get_object()
        data = validated(ServiceUpdateSerializer, request.data, self.get_serializer_context())
        services.update_service(service, actor=request.user, **data)
        return Response(ServiceSerializer(service, context=self.get_serializer_context()).data)

    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_service(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Integrations of the services you can view"),
    retrieve=extend_schema(summary="One integration (never its key)"),
    create=extend_schema(
        summary="Create an integration (managers); its key is shown once",
        request=IntegrationCreateSerializer,
        responses={201: NewKeySerializer},
    ),
    partial_update=extend_schema(
        summary="Rename an integration or change its rate limit (managers)",
        request=IntegrationUpdateSerializer,
        responses=IntegrationSerializer,
    ),
    destroy=extend_schema(
        summary="Revoke an integration (managers)",
        description="Its key stops working at once; it stays listed with `revoked_at` set.",
    ),
)
class IntegrationViewSet(
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Doors into services, one per sender, each with a secret ingest key stored hashed."""

    serializer_class = IntegrationSerializer
    filterset_class = IntegrationFilter
    permission_classes = [IsAuthenticated, TeamRole]
    lookup_value_regex = INT_LOOKUP
    required_actions = {
        "create": Action.MANAGE,
        "partial_update": Action.MANAGE,
        "destroy": Action.MANAGE,
        "rotate_key": Action.MANAGE,
    }

    def get_queryset(self) -> QuerySet[Integration]:
        if getattr(self, "swagger_fake_view", False):
            return Integration.objects.none()
        return (
            scope(Integration.objects.all(), self.request.user, Action.VIEW, "service__team")
            .select_related("service")
            .order_by("service__name", "name", "id")
        )

    def get_object(self) -> Integration:
        integration = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if integration is None:
            raise not_found("integration")
        self.check_object_permissions(self.request, integration)
        return integration

    def _new_key_response(self, integration: Integration, key: str, code: int) -> Response:
        context = {**self.get_serializer_context(), "raw_key": key}
        response = Response(NewKeySerializer(integration, context=context).data, status=code)
        response["Cache-Control"] = "no-store"
        return response

    def create(self, request: Request) -> Response:
        data = validated(IntegrationCreateSerializer, request.data, self.get_serializer_context())
        service = (
            scope(Service.objects.all(), request.user, Action.VIEW)
            .filter(pk=data.pop("service"))
            .first()
        )
        if service is None:
            raise serializers.ValidationError(
                {"service": ["no service with this id that you can view"]}
            )
        self.check_object_permissions(request, service)
        integration, key = services.create_integration(
            service, data.pop("kind"), data.pop("name", ""), actor=request.user, **data
        )
        return self._new_key_response(integration, key, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: int) -> Response:
        integration = self.get_object()
        data = validated(IntegrationUpdateSerializer, request.data, self.get_serializer_context())
        services.update_integration(integration, actor=request.user, **data)
        return Response(self.get_serializer(integration).data)

    def destroy(self, request: Request, pk: int) -> Response:
        services.revoke_integration(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={200: NewKeySerializer},
        summary="Rotate the key (managers): the new key is shown once, the old one stops working",
        operation_id="integrations_rotate_key",
    )
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request: Request, pk: int) -> Response:
        integration = self.get_object()
        given = {} if request.data is None else request.data
        NoInputSerializer(data=given).is_valid(raise_exception=True)
        key = services.rotate_key(integration, actor=request.user)
        return self._new_key_response(integration, key, status.HTTP_200_OK)


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
class AlertViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    """Alerts, read-only: they change through ingest and the pipeline, not through edits here."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    lookup_value_regex = INT_LOOKUP

    def get_queryset(self) -> QuerySet[Alert]:
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return (
            scope(Alert.objects.all(), self.request.user, Action.VIEW)
            .select_related("service", "team")
            .order_by("-last_change_at", "-id")
        )

    def get_object(self) -> Alert:
        alert = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if alert is None:
            raise not_found("alert")
        return alert


router.register("services", ServiceViewSet, basename="api-service")
router.register("integrations", IntegrationViewSet, basename="api-integration")
router.register("alerts", AlertViewSet, basename="api-alert")
