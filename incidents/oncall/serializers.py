"""Serializers of the on-call API: what schedules, layers, shifts, overrides and swaps look like
(output), what a client may send (input), and the query parameters of the time-range reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request

from incidents.models import (
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    ShiftSwapRequest,
)
from incidents.oncall import rotations
from incidents.oncall import services as oncall_services
from tocsin.api.serializers import IdField, MemberUserSerializer, StrictInputMixin
from tocsin.models import Team
from tocsin.permissions import Action, scope, teams_for
from tocsin.services import ServiceError

DEFAULT_SHIFT_RANGE = timedelta(days=14)


# --- Output -------------------------------------------------------------------------------------


class LayerSerializer(serializers.ModelSerializer):
    participants = serializers.SerializerMethodField()

    class Meta:
        model = ScheduleLayer
        fields = ["id", *oncall_services.LAYER_FIELDS, "participants"]
        read_only_fields = fields

    def get_participants(self, layer: ScheduleLayer) -> list[dict[str, Any]]:
        return MemberUserSerializer(layer.ordered_users(), many=True).data


class ScheduleSerializer(serializers.ModelSerializer):
    team = serializers.IntegerField(source="team_id", read_only=True)
    layers = LayerSerializer(many=True, read_only=True)

    class Meta:
        model = Schedule
        fields = ["id", "team", "name", "time_zone", "description", "created_at", "layers"]
        read_only_fields = fields


class ShiftSerializer(serializers.Serializer):
    user = MemberUserSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    source = serializers.CharField(help_text='The layer\'s name, or "override".')


class OnCallSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    users = MemberUserSerializer(many=True)


class OverrideSerializer(serializers.ModelSerializer):
    user = MemberUserSerializer(read_only=True)
    created_by = serializers.IntegerField(source="created_by_id", read_only=True)

    class Meta:
        model = ScheduleOverride
        fields = ["id", "schedule", "user", "start", "end", "reason", "created_by", "created_at"]
        read_only_fields = fields


class SwapSerializer(serializers.ModelSerializer):
    requester = MemberUserSerializer(read_only=True)
    proposed_taker = MemberUserSerializer(read_only=True, allow_null=True)
    taker = MemberUserSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ShiftSwapRequest
        fields = [
            "id",
            "schedule",
            "requester",
            "start",
            "end",
            "proposed_taker",
            "note",
            "status",
            "taker",
            "override",
            "created_at",
            "decided_at",
        ]
        read_only_fields = fields


# --- Input --------------------------------------------------------------------------------------


def _users(ids: list[int]) -> list[Any]:
    found = get_user_model().objects.in_bulk(ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise serializers.ValidationError(f"no user with id {missing[0]}")
    return [found[i] for i in ids]


class UserIdField(IdField):
    """A user id in, the user out."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # After the id's own checks (range included), which would not know what to do with a user.
        value = super().run_validation(data)
        return None if value is None else _users([value])[0]

    def to_representation(self, value: Any) -> Any:
        return value.pk


class LayerInputSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100)
    participants = serializers.ListField(
        child=IdField(),
        allow_empty=False,
        max_length=200,
        help_text="User ids in rotation order.",
    )
    rotation = serializers.ChoiceField(choices=Rotation.choices, default=Rotation.WEEKLY)
    priority = serializers.IntegerField(required=False, allow_null=True)
    shift_length_hours = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=24 * 366
    )
    handoff_time = serializers.TimeField(required=False)
    handoff_weekday = serializers.IntegerField(required=False, min_value=0, max_value=6)
    starts_at = serializers.DateTimeField(required=False)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    restrict_start = serializers.TimeField(required=False, allow_null=True)
    restrict_end = serializers.TimeField(required=False, allow_null=True)

    def validate_participants(self, ids: list[int]) -> list[Any]:
        return _users(ids)


class LayerUpdateSerializer(LayerInputSerializer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)


class ScheduleCreateSerializer(StrictInputMixin, serializers.Serializer):
    team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        error_messages={"does_not_exist": "no team with this id that you can view"},
    )
    name = serializers.CharField(max_length=100)
    time_zone = serializers.CharField(max_length=64, default="UTC")
    description = serializers.CharField(allow_blank=True, default="", max_length=2000)
    layers = LayerInputSerializer(many=True, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["team"].queryset = teams_for(request and request.user, Action.VIEW)


class ScheduleUpdateSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    time_zone = serializers.CharField(max_length=64, required=False)
    description = serializers.CharField(allow_blank=True, required=False, max_length=2000)


class OverrideInputSerializer(StrictInputMixin, serializers.Serializer):
    user = UserIdField(required=False, help_text="User id; yourself when left out.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    reason = serializers.CharField(allow_blank=True, default="", max_length=200)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["end"] <= data["start"]:
            raise serializers.ValidationError({"end": ["must be after the start"]})
        return data


class SwapInputSerializer(StrictInputMixin, serializers.Serializer):
    schedule = serializers.PrimaryKeyRelatedField(
        queryset=Schedule.objects.all(),
        error_messages={"does_not_exist": "no schedule with this id that you can view"},
    )
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    proposed_taker = UserIdField(required=False, allow_null=True)
    note = serializers.CharField(allow_blank=True, default="", max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["schedule"].queryset = scope(
            Schedule.objects.select_related("team"), request and request.user, Action.VIEW
        )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["end"] <= data["start"]:
            raise serializers.ValidationError({"end": ["must be after the start"]})
        return data


class AtQuerySerializer(serializers.Serializer):
    at = serializers.DateTimeField(required=False)


class RangeQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        start = data.get("start") or timezone.now()
        end = data.get("end") or start + DEFAULT_SHIFT_RANGE
        if end <= start:
            raise serializers.ValidationError({"end": ["must be after the start"]})
        if end - start > rotations.MAX_RANGE:
            raise serializers.ValidationError(
                {"end": [f"the range may span {rotations.MAX_RANGE.days} days at most"]}
            )
        return {"start": start, "end": end}


def query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    # A plain dict, not the QueryDict: DRF reads an empty form value as "not given", and
    # "?at=" is a mistake to point out, not a request for now.
    serializer = serializer_class(data=request.query_params.dict())
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def layer_options(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("name", "participants", "rotation")}


def prefixed(prefix: str, exc: ServiceError) -> ServiceError:
    if exc.field:
        exc.field = f"{prefix}.{exc.field}"
    return exc
