"""REST endpoints for silences and inhibition rules (maintenance windows: maintenance.py).

Thin callers of ``monitoring.suppression``. Viewers read; responders create and end silences;
managers manage inhibition rules and maintenance windows. Objects outside the caller's teams
answer 404; a team or service in the body that the caller cannot see is a 400 on that field.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring import suppression as services
from monitoring.api.filters import InhibitionRuleFilter, SilenceFilter
from monitoring.matchers import MatcherError, to_matchers
from monitoring.models import InhibitionRule, Service, Silence
from monitoring.suppression import inhibition
from tocsin.api.lookups import team_in_body
from tocsin.api.serializers import StrictInputMixin
from tocsin.api.viewsets import ManagedViewSet, TeamScopedViewSet
from tocsin.models import Team
from tocsin.permissions import Action, scope, teams_for

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
            try:
                return timedelta(seconds=data)
            except OverflowError:  # 10**20 seconds: past timedelta's range
                raise serializers.ValidationError("far too long a duration") from None
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


def visible_service_field(**kwargs: Any) -> serializers.PrimaryKeyRelatedField:
    return serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.all(),
        error_messages={"does_not_exist": "no service with this id that you can view"},
        **kwargs,
    )


class ScopedInput(StrictInputMixin, serializers.Serializer):
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
    expired_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Null until ended early."
    )

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


class SilenceCreateSerializer(ScopedInput):
    team = _team_field()
    service = visible_service_field(required=False, allow_null=True)
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


@extend_schema_view(
    list=extend_schema(summary="Silences of the teams you can view"),
    retrieve=extend_schema(summary="One silence"),
)
class SilenceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Silences of the teams you can view; ending one early keeps it listed as expired."""

    model = Silence
    what = "silence"
    serializer_class = SilenceSerializer
    filterset_class = SilenceFilter
    required_actions = {
        "create": Action.RESPOND,
        "destroy": Action.RESPOND,
        "expire": Action.RESPOND,
    }

    def shape(self, queryset: QuerySet[Silence]) -> QuerySet[Silence]:
        return queryset.select_related("created_by", "expired_by").order_by("-starts_at", "-id")

    def permission_team(self) -> Team | None:
        return team_in_body(self.request) if self.action == "create" else None

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


# --- Inhibition rules ---------------------------------------------------------------------------


class InhibitionRuleSerializer(serializers.ModelSerializer):
    source_matchers = MatchersField()
    target_matchers = MatchersField()
    equal = serializers.ListField(child=serializers.CharField(), required=False)

    class Meta:
        model = InhibitionRule
        fields = ["id", "team", *inhibition.RULE_FIELDS, "created_at", "updated_at"]
        read_only_fields = fields


class InhibitionRuleInputSerializer(ScopedInput):
    team = _team_field()
    service = visible_service_field(required=False, allow_null=True)
    name = serializers.CharField(max_length=200)
    source_matchers = MatchersField()
    target_matchers = MatchersField()
    equal = serializers.ListField(child=serializers.CharField(), required=False)
    enabled = serializers.BooleanField(required=False)

    def validate_team(self, team: Team) -> Team:
        if self.instance is not None:
            raise serializers.ValidationError("cannot be changed; create a rule in the other team")
        return team


@extend_schema_view(
    list=extend_schema(summary="Inhibition rules of the teams you can view"),
    retrieve=extend_schema(summary="One inhibition rule"),
)
class InhibitionRuleViewSet(ManagedViewSet):
    """While a source alert fires, matching target alerts with equal labels are muted."""

    model = InhibitionRule
    what = "inhibition rule"
    serializer_class = InhibitionRuleSerializer
    filterset_class = InhibitionRuleFilter

    def shape(self, queryset: QuerySet[InhibitionRule]) -> QuerySet[InhibitionRule]:
        return queryset.order_by("name", "id")

    def permission_team(self) -> Team | None:
        return team_in_body(self.request) if self.action == "create" else None

    @extend_schema(
        summary="Create an inhibition rule (managers)",
        request=InhibitionRuleInputSerializer,
        responses={201: InhibitionRuleSerializer},
    )
    def create(self, request: Request) -> Response:
        data = self.valid_input(InhibitionRuleInputSerializer)
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
        data = self.valid_input(InhibitionRuleInputSerializer, rule)
        rule = services.update_inhibition_rule(rule, actor=request.user, **data)
        return Response(InhibitionRuleSerializer(rule).data)

    @extend_schema(summary="Delete an inhibition rule (managers)")
    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_inhibition_rule(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
