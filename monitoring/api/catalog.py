"""The service catalog API: /services/ and /integrations/ under /api/v1/.

Same rules as tocsin.api: everything is looked up in querysets already narrowed to what the
caller may view (404 otherwise), writes need the manager role in the object's team (403), and
writes go through ``monitoring.services``, whose refusals become the one error shape. Ingest keys
appear in exactly two responses: creating an integration and rotating its key.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring import services
from monitoring.api.filters import IntegrationFilter, ServiceFilter
from monitoring.models import AlertStatus, Integration, IntegrationKind, Service
from tocsin.api.filters import TeamRefField
from tocsin.api.lookups import validated, visible_teams
from tocsin.api.serializers import IdField, NoInputSerializer, StrictInputMixin, TeamRefSerializer
from tocsin.api.viewsets import MANAGER_WRITES, TeamScopedViewSet
from tocsin.permissions import Action, scope

# --- Serializers --------------------------------------------------------------------------------


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
    service = IdField(help_text="The service's id.")
    # All kinds (one enum in the schema); the service refuses "internal" with a 400.
    kind = serializers.ChoiceField(choices=IntegrationKind.choices)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    rate_limit_per_minute = serializers.IntegerField(min_value=0, required=False)


class IntegrationUpdateSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    rate_limit_per_minute = serializers.IntegerField(min_value=0, required=False)


# --- Views --------------------------------------------------------------------------------------


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
class ServiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """The service catalog. Changes go through ``monitoring.services`` and are recorded."""

    model = Service
    what = "service"
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter
    required_actions = MANAGER_WRITES
    conflict_actions = {"create", "partial_update"}

    def shape(self, queryset: QuerySet[Service]) -> QuerySet[Service]:
        return (
            queryset.select_related("team")
            .annotate(
                firing_count=services.firing_count(),
                integration_count=services.integration_count(),
            )
            .order_by("team__name", "name", "id")
        )

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
class IntegrationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Doors into services, one per sender, each with a secret ingest key stored hashed."""

    model = Integration
    what = "integration"
    team_field = "service__team"
    serializer_class = IntegrationSerializer
    filterset_class = IntegrationFilter
    required_actions = {
        **MANAGER_WRITES,
        "rotate_key": Action.MANAGE,
    }

    def shape(self, queryset: QuerySet[Integration]) -> QuerySet[Integration]:
        return queryset.select_related("service").order_by("service__name", "name", "id")

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
