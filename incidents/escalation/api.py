"""API for escalation policies (managers write, members read)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from incidents.escalation import services
from incidents.models import (
    EscalationPolicy,
    HoursCondition,
    Priority,
)
from tocsin.api.filters import TeamRefField
from tocsin.api.lookups import validated, visible_teams
from tocsin.api.serializers import IdField, StrictInputMixin, TeamRefSerializer
from tocsin.api.viewsets import MANAGER_WRITES, TeamScopedViewSet

# --- Escalation policies --------------------------------------------------------------------------

MIN_PRIORITY_CHOICES = [("", "any"), *Priority.choices]


class StepSerializer(StrictInputMixin, serializers.Serializer):
    delay_minutes = serializers.IntegerField(min_value=0, max_value=24 * 60, default=0)
    user_ids = serializers.ListField(child=IdField(), default=list)
    schedule = IdField(allow_null=True, required=False, source="schedule_id")
    notify_team = serializers.BooleanField(default=False)
    round_robin = serializers.BooleanField(default=False)
    reassign = serializers.BooleanField(default=False)
    hours_condition = serializers.ChoiceField(choices=HoursCondition.choices, default="always")
    time_zone = serializers.CharField(max_length=64, default="UTC")
    windows = serializers.JSONField(default=list)
    min_priority = serializers.ChoiceField(
        choices=MIN_PRIORITY_CHOICES, default="", allow_blank=True
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if "schedule_id" in data:
            data["schedule"] = data.pop("schedule_id")
        return data


class PolicySerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    steps = serializers.SerializerMethodField()

    class Meta:
        model = EscalationPolicy
        fields = [
            "id",
            "team",
            "name",
            "description",
            "repeat_times",
            "repeat_after_minutes",
            "ack_timeout_minutes",
            "created_at",
            "updated_at",
            "steps",
        ]
        read_only_fields = fields

    def get_steps(self, policy: EscalationPolicy) -> list[dict[str, Any]]:
        return policy.snapshot()["steps"]


class PolicyWriteSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    repeat_times = serializers.IntegerField(min_value=0, max_value=20, required=False)
    repeat_after_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60, required=False)
    ack_timeout_minutes = serializers.IntegerField(
        min_value=0, max_value=7 * 24 * 60, required=False
    )
    steps = StepSerializer(many=True, required=False)


class PolicyCreateSerializer(PolicyWriteSerializer):
    team = serializers.CharField(help_text="Team id or slug; you need the manager role in it.")
    name = serializers.CharField(max_length=100)

    def validate_team(self, value: str) -> Any:
        from django.core.exceptions import ValidationError

        field = TeamRefField(queryset=visible_teams(self.context.get("request")))
        try:
            return field.clean(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class EscalationPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    model = EscalationPolicy
    what = "escalation policy"
    serializer_class = PolicySerializer
    required_actions = MANAGER_WRITES
    conflict_actions = {"create", "partial_update"}
    # JSON only: steps are a list of objects, which a form body cannot carry (DRF would read a
    # form's "steps" as absent and answer 200 without changing them).
    parser_classes = [JSONParser]

    def shape(self, queryset: QuerySet[EscalationPolicy]) -> QuerySet[EscalationPolicy]:
        return (
            queryset.select_related("team")
            .prefetch_related("steps")
            .order_by("team__name", "name", "id")
        )

    @extend_schema(request=PolicyCreateSerializer, responses={201: PolicySerializer})
    def create(self, request: Request) -> Response:
        data = dict(validated(PolicyCreateSerializer, request.data, self.get_serializer_context()))
        team = data.pop("team")
        self.check_object_permissions(request, team)
        policy = services.create_policy(team, actor=request.user, **data)
        return Response(PolicySerializer(policy).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PolicyWriteSerializer, responses=PolicySerializer)
    def partial_update(self, request: Request, pk: int) -> Response:
        policy = self.get_object()
        data = dict(validated(PolicyWriteSerializer, request.data, self.get_serializer_context()))
        services.update_policy(policy, actor=request.user, **data)
        return Response(PolicySerializer(policy).data)

    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_policy(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


router = SimpleRouter()
router.register("escalation-policies", EscalationPolicyViewSet, basename="api-escalation-policy")
