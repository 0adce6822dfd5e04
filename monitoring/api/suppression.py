"""REST endpoints for silences, inhibition rules and maintenance windows.

Thin callers of ``monitoring.suppression``. Viewers read; responders create and end silences;
managers manage inhibition rules and maintenance windows. Objects outside the caller's teams
answer 404; a team or service in the body that the caller cannot see is a 400 on that field.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from monitoring import suppression as services
from monitoring.matchers import MatcherError, to_matchers
from monitoring.models import InhibitionRule, MaintenanceWindow, Service, Silence
from tocsin.api.lookups import not_found
from tocsin.api.permissions import TeamRole
from tocsin.api.serializers import StrictInputMixin
from tocsin.api.views import ApiMixin
from tocsin.models import Team
from tocsin.permissions import Action, scope, teams_for

router = SimpleRouter()


# --- Fields -------------------------------------------------------------------------------------


class MatcherSerializer(serializers.Serializer):
    name = serializers.CharField()
    op = serializers.ChoiceField(choices=["=", "!=", "=~", "!~"])
    value = serializers.CharField(allow_blank=True)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "example": 'alertname="HighLatency", env=~"prod.*"'},
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "op": {"type": "string", "enum": ["=", "!=", "=~", "!~"]},
                        "value": {"type": "string"},
                    },
                    "required": ["name", "value"],
                },
            },
        ]
    }
)
class MatchersField(serializers.Field):
    """Text (``alertname=X,env=~"prod.*"``) or a list of ``{name, op, value}``; stored as dicts."""

    def to_internal_value(self, data: Any) -> list[dict[str, str]]:
        try:
            matchers = to_matchers(data)
        except MatcherError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if not matchers:
            raise serializers.ValidationError('give at least one matcher, e.g. alertname="X"')
        return [m.as_dict() for m in matchers]

    def to_representation(self, value: Any) -> list[dict[str, str]]:
        return list(value)


@extend_schema_field(OpenApiTypes.STR)
class DurationTextField(serializers.Field):
    """``30m``, ``2h``, ``1h30m``, ``1d`` or a number of seconds."""

    def to_internal_value(self, data: Any) -> timedelta:
        if isinstance(data, int) and not isinstance(data, bool):
            if data <= 0:
                raise serializers.ValidationError("must be positive")
            return timedelta(seconds=data)
        try:
            return services.parse_duration(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: timedelta) -> int:
        return int(value.total_seconds())


def _team_field() -> serializers.PrimaryKeyRelatedField:
    return serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        error_messages={"does_not_exist": "no team with this id that you can view"},
    )


def _visible_service_field(**kwargs: Any) -> serializers.PrimaryKeyRelatedField:
    return serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.all(),
        error_messages={"does_not_exist": "no service with this id that you can view"},
        **kwargs,
    )


class _ScopedInput(StrictInputMixin, serializers.Serializer):
    """Team and service choices narrowed to what the caller may view."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        user = request.user if request else None
        if "team" in self.fields:
            self.fields["team"].queryset = teams_for(user, Action.VIEW)
        if "service" in self.fields:
            self.fields["service"].queryset = scope(
                Service.objects.select_related("team"), user, Action.VIEW
            )


# --- Silences -----------------------------------------------------------------------------------


class SilenceSerializer(serializers.ModelSerializer):
    matchers = MatchersField()
    matchers_text = serializers.CharField(source="label", read_only=True)
    state = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    expired_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Silence
        fields = [
            "id",
            "team",
            "service",
            "matchers",
            "matchers_text",
            "starts_at",
            "ends_at",
            "state",
            "comment",
            "created_by",
            "created_at",
            "expired_by",
            "expired_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=["pending", "active", "expired"]))
    def get_state(self, silence: Silence) -> str:
        return silence.state(self.context.get("now"))


class SilenceCreateSerializer(_ScopedInput):
    team = _team_field()
    service = _visible_service_field(required=False, allow_null=True)
    matchers = MatchersField()
    starts_at = serializers.DateTimeField(required=False)
    ends_at = serializers.DateTimeField(required=False)
    duration = DurationTextField(required=False)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if ("ends_at" in data) == ("duration" in data):
            message = "give either ends_at or duration (exactly one)"
            raise serializers.ValidationError({"ends_at": [message], "duration": [message]})
        return data


class SilenceViewSet(
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Silences of the teams you can view; ending one early keeps it listed as expired."""

    serializer_class = SilenceSerializer
    permission_classes = [IsAuthenticated, TeamRole]
    required_actions = {
        "create": Action.RESPOND,
        "destroy": Action.RESPOND,
        "expire": Action.RESPOND,
    }

    def get_queryset(self) -> QuerySet[Silence]:
        if getattr(self, "swagger_fake_view", False):
            return Silence.objects.none()
        queryset = scope(Silence.objects.all(), self.request.user, Action.VIEW)
        queryset = queryset.select_related("created_by", "expired_by")
        params = self.request.query_params
        now = timezone.now()
        if params.get("team", "").isdigit():
            queryset = queryset.filter(team_id=int(params["team"]))
        state = params.get("state")
        if state == "active":
            queryset = queryset.active(now)
        elif state == "pending":
            queryset = queryset.pending(now)
        elif state == "expired":
            queryset = queryset.expired(now)
        return queryset.order_by("-starts_at", "-id")

    def permission_team(self) -> Team | None:
        return _team_from_body(self.request, "team") if self.action == "create" else None

    def get_object(self) -> Silence:
        silence = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if silence is None:
            raise not_found("silence")
        self.check_object_permissions(self.request, silence)
        return silence

    @extend_schema(
        summary="Create a silence (responders)",
        request=SilenceCreateSerializer,
        responses={201: SilenceSerializer},
    )
    def create(self, request: Request) -> Response:
        input_ = SilenceCreateSerializer(data=request.data, context=self.get_serializer_context())
        input_.is_valid(raise_exception=True)
        data = dict(input_.validated_data)
        self.check_object_permissions(request, data["team"])
        silence = services.create_silence(actor=request.user, **data)
        return Response(SilenceSerializer(silence).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="End a silence now (responders)", responses={204: None})
    def destroy(self, request: Request, pk: int) -> Response:
        services.expire_silence(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="End a silence now (responders)", request=None, responses=SilenceSerializer
    )
    @action(detail=True, methods=["post"])
    def expire(self, request: Request, pk: int) -> Response:
        silence = services.expire_silence(self.get_object(), actor=request.user)
        return Response(SilenceSerializer(silence).data)


def _team_from_body(request: Request, key: str) -> Team | None:
    """The team a write names, when the caller can view it: TeamRole then answers 403 to a
    member whose role is too low before any input is validated. Anything else is left to the
    serializer (400 on the field)."""
    data = request.data
    raw = data.get(key) if hasattr(data, "get") else None
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
        return None
    return teams_for(request.user, Action.VIEW).filter(pk=int(raw)).first()


def _service_team_from_body(request: Request) -> Team | None:
    data = request.data
    raw = data.get("service") if hasattr(data, "get") else None
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
        return None
    service = (
        scope(Service.objects.select_related("team"), request.user, Action.VIEW)
        .filter(pk=int(raw))
        .first()
    )
    return service.team if service else None


# --- Inhibition rules ---------------------------------------------------------------------------


class InhibitionRuleSerializer(serializers.ModelSerializer):
    source_matchers = MatchersField()
    target_matchers = MatchersField()
    equal = serializers.ListField(child=serializers.CharField(), required=False)

    class Meta:
        model = InhibitionRule
        fields = [
            "id",
            "team",
            "service",
            "name",
            "source_matchers",
            "target_matchers",
            "equal",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class InhibitionRuleInputSerializer(_ScopedInput):
    team = _team_field()
    service = _visible_service_field(required=False, allow_null=True)
    name = serializers.CharField(max_length=200)
    source_matchers = MatchersField()
    target_matchers = MatchersField()
    equal = serializers.ListField(child=serializers.CharField(), required=False)
    enabled = serializers.BooleanField(required=False)

    def validate_team(self, team: Team) -> Team:
        if self.instance is not None:
            raise serializers.ValidationError("cannot be changed; create a rule in the other team")
        return team


class _ManagedViewSet(
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [IsAuthenticated, TeamRole]
    required_actions = {
        "create": Action.MANAGE,
        "partial_update": Action.MANAGE,
        "destroy": Action.MANAGE,
    }
    what = "object"

    def get_object(self) -> Any:
        obj = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if obj is None:
            raise not_found(self.what)
        self.check_object_permissions(self.request, obj)
        return obj

    def _valid(self, serializer_class: type, instance: Any = None) -> dict[str, Any]:
        serializer = serializer_class(
            instance,
            data=self.request.data,
            partial=instance is not None,
            context=self.get_serializer_context(),
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


@extend_schema_view(
    list=extend_schema(summary="Inhibition rules of the teams you can view"),
    retrieve=extend_schema(summary="One inhibition rule"),
)
class InhibitionRuleViewSet(_ManagedViewSet):
    """While a source alert fires, matching target alerts with equal labels are muted."""

    serializer_class = InhibitionRuleSerializer
    what = "inhibition rule"

    def get_queryset(self) -> QuerySet[InhibitionRule]:
        if getattr(self, "swagger_fake_view", False):
            return InhibitionRule.objects.none()
        queryset = scope(InhibitionRule.objects.all(), self.request.user, Action.VIEW)
        team = self.request.query_params.get("team", "")
        if team.isdigit():
            queryset = queryset.filter(team_id=int(team))
        return queryset.order_by("name", "id")

    def permission_team(self) -> Team | None:
        return _team_from_body(self.request, "team") if self.action == "create" else None

    @extend_schema(
        summary="Create an inhibition rule (managers)",
        request=InhibitionRuleInputSerializer,
        responses={201: InhibitionRuleSerializer},
    )
    def create(self, request: Request) -> Response:
        data = self._valid(InhibitionRuleInputSerializer)
        self.check_object_permissions(request, data["team"])
        rule = services.create_inhibition_rule(actor=request.user, **data)
        return Response(InhibitionRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change an inhibition rule (managers)",
        request=InhibitionRuleInputSerializer,
        responses=InhibitionRuleSerializer,
    )
    def partial_update(self, request: Request, pk: int) -> Response:
        rule = self.get_object()
        data = self._valid(InhibitionRuleInputSerializer, rule)
        rule = services.update_inhibition_rule(rule, actor=request.user, **data)
        return Response(InhibitionRuleSerializer(rule).data)

    @extend_schema(summary="Delete an inhibition rule (managers)")
    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_inhibition_rule(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Maintenance windows ------------------------------------------------------------------------


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    team = serializers.IntegerField(source="service.team_id", read_only=True)
    duration = DurationTextField(read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "team",
            "service",
            "title",
            "description",
            "starts_at",
            "ends_at",
            "weekdays",
            "start_time",
            "duration",
            "time_zone",
            "active",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_active(self, window: MaintenanceWindow) -> bool:
        return window.is_active()


class MaintenanceWindowInputSerializer(_ScopedInput):
    service = _visible_service_field()
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
class MaintenanceWindowViewSet(_ManagedViewSet):
    """While a window is open, its service's alerts are stored but do not page."""

    serializer_class = MaintenanceWindowSerializer
    what = "maintenance window"

    def get_queryset(self) -> QuerySet[MaintenanceWindow]:
        if getattr(self, "swagger_fake_view", False):
            return MaintenanceWindow.objects.none()
        queryset = scope(
            MaintenanceWindow.objects.select_related("service"),
            self.request.user,
            Action.VIEW,
            "service__team",
        )
        service = self.request.query_params.get("service", "")
        if service.isdigit():
            queryset = queryset.filter(service_id=int(service))
        return queryset.order_by("service__name", "title", "id")

    def permission_team(self) -> Team | None:
        return _service_team_from_body(self.request) if self.action == "create" else None

    @extend_schema(
        summary="Create a maintenance window (managers)",
        request=MaintenanceWindowInputSerializer,
        responses={201: MaintenanceWindowSerializer},
    )
    def create(self, request: Request) -> Response:
        data = self._valid(MaintenanceWindowInputSerializer)
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
        data = self._valid(MaintenanceWindowInputSerializer, window)
        data.pop("service", None)
        window = services.update_maintenance_window(window, actor=request.user, **data)
        return Response(MaintenanceWindowSerializer(window).data)

    @extend_schema(summary="Delete a maintenance window (managers)")
    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_maintenance_window(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


router.register("silences", SilenceViewSet, basename="api-silence")
router.register("inhibition-rules", InhibitionRuleViewSet, basename="api-inhibition-rule")
router.register("maintenance-windows", MaintenanceWindowViewSet, basename="api-maintenance-window")
