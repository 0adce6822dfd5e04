"""REST endpoints for on-call schedules, overrides and shift swaps.

Thin callers of ``incidents.oncall.services``. Viewers read schedules, who is on call and the final
shifts; responders add overrides for themselves and request, accept and decline shift swaps;
managers configure schedules and layers and override for anyone. Objects outside the caller's
teams answer 404; a team, schedule or user in the body that does not fit is a 400 on that field.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from incidents.models import (
    Rotation,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    ShiftSwapRequest,
    SwapStatus,
)
from incidents.oncall import services as oncall
from tocsin.api.lookups import not_found
from tocsin.api.permissions import TeamRole
from tocsin.api.serializers import MemberUserSerializer, NoInputSerializer, StrictInputMixin
from tocsin.api.views import ApiMixin
from tocsin.models import Team
from tocsin.permissions import Action, scope, teams_for
from tocsin.services import ServiceError

router = SimpleRouter()

DEFAULT_SHIFT_RANGE = timedelta(days=14)


class Conflict(APIException):
    """The request was valid but the object moved on (a swap already accepted or declined)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _decided(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except ServiceError as exc:
        if exc.code == "conflict":
            raise Conflict(exc.message, code="conflict") from None
        raise


# --- Output -------------------------------------------------------------------------------------


class LayerSerializer(serializers.ModelSerializer):
    participants = serializers.SerializerMethodField()

    class Meta:
        model = ScheduleLayer
        fields = [
            "id",
            "name",
            "priority",
            "rotation",
            "shift_length_hours",
            "handoff_time",
            "handoff_weekday",
            "starts_at",
            "ends_at",
            "restrict_start",
            "restrict_end",
            "participants",
        ]
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


class UserIdField(serializers.IntegerField):
    """A user id in, the user out."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if value < 1:
            raise serializers.ValidationError("a user id is a positive integer")
        return _users([value])[0]

    def to_representation(self, value: Any) -> Any:
        return value.pk


class LayerInputSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100)
    participants = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
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
        if end - start > oncall.MAX_RANGE:
            raise serializers.ValidationError(
                {"end": [f"the range may span {oncall.MAX_RANGE.days} days at most"]}
            )
        return {"start": start, "end": end}


def _query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _layer_options(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("name", "participants", "rotation")}


def _prefixed(prefix: str, exc: ServiceError) -> ServiceError:
    if exc.field:
        exc.field = f"{prefix}.{exc.field}"
    return exc


# --- Schedules ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Schedules of the teams you can view"),
    retrieve=extend_schema(summary="One schedule with its layers"),
    create=extend_schema(
        summary="Create a schedule, optionally with layers (managers)",
        request=ScheduleCreateSerializer,
        responses={201: ScheduleSerializer},
    ),
    partial_update=extend_schema(
        summary="Rename, re-zone or describe a schedule (managers)",
        request=ScheduleUpdateSerializer,
        responses=ScheduleSerializer,
    ),
    destroy=extend_schema(summary="Delete a schedule (managers)"),
)
class ScheduleViewSet(
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ScheduleSerializer
    permission_classes = [IsAuthenticated, TeamRole]
    lookup_value_regex = r"\d+"
    required_actions = {
        "create": Action.MANAGE,
        "partial_update": Action.MANAGE,
        "destroy": Action.MANAGE,
        "add_layer": Action.MANAGE,
        "change_layer": Action.MANAGE,
        "remove_layer": Action.MANAGE,
        "create_override": Action.RESPOND,
        "remove_override": Action.RESPOND,
    }
    conflict_actions = {"create", "partial_update"}

    def get_queryset(self) -> QuerySet[Schedule]:
        if getattr(self, "swagger_fake_view", False):
            return Schedule.objects.none()
        queryset = oncall.schedules_with_layers(
            scope(Schedule.objects.all(), self.request.user, Action.VIEW)
        )
        team = self.request.query_params.get("team", "")
        if team.isdigit():
            queryset = queryset.filter(team_id=int(team))
        return queryset.order_by("team__name", "name", "id")

    def permission_team(self) -> Team | None:
        if self.action != "create":
            return None
        raw = self.request.data.get("team") if hasattr(self.request.data, "get") else None
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
            return None
        return teams_for(self.request.user, Action.VIEW).filter(pk=int(raw)).first()

    def get_object(self) -> Schedule:
        schedule = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if schedule is None:
            raise not_found("schedule")
        self.check_object_permissions(self.request, schedule)
        return schedule

    def _fresh(self, schedule: Schedule) -> dict[str, Any]:
        return ScheduleSerializer(self.get_queryset().get(pk=schedule.pk)).data

    def create(self, request: Request) -> Response:
        input_ = ScheduleCreateSerializer(data=request.data, context=self.get_serializer_context())
        input_.is_valid(raise_exception=True)
        data = input_.validated_data
        self.check_object_permissions(request, data["team"])
        with transaction.atomic():
            schedule = oncall.create_schedule(
                data["team"],
                data["name"],
                time_zone=data["time_zone"],
                description=data["description"],
                actor=request.user,
            )
            for index, layer in enumerate(data.get("layers", [])):
                try:
                    oncall.add_layer(
                        schedule,
                        name=layer["name"],
                        participants=layer["participants"],
                        rotation=layer["rotation"],
                        actor=request.user,
                        **_layer_options(layer),
                    )
                except ServiceError as exc:
                    raise _prefixed(f"layers.{index}", exc) from None
        return Response(self._fresh(schedule), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        schedule = self.get_object()
        input_ = ScheduleUpdateSerializer(data=request.data)
        input_.is_valid(raise_exception=True)
        oncall.update_schedule(schedule, actor=request.user, **input_.validated_data)
        return Response(self._fresh(schedule))

    def destroy(self, request: Request, pk: str) -> Response:
        oncall.delete_schedule(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # Layers ---------------------------------------------------------------------------------

    @extend_schema(
        summary="Add a layer (managers)",
        request=LayerInputSerializer,
        responses={201: LayerSerializer},
    )
    @action(detail=True, methods=["post"], url_path="layers")
    def add_layer(self, request: Request, pk: str) -> Response:
        schedule = self.get_object()
        input_ = LayerInputSerializer(data=request.data)
        input_.is_valid(raise_exception=True)
        data = input_.validated_data
        layer = oncall.add_layer(
            schedule,
            name=data["name"],
            participants=data["participants"],
            rotation=data["rotation"],
            actor=request.user,
            **_layer_options(data),
        )
        return Response(LayerSerializer(layer).data, status=status.HTTP_201_CREATED)

    def _layer(self, schedule: Schedule) -> ScheduleLayer:
        layer = next(
            (la for la in schedule.layers.all() if str(la.pk) == self.kwargs["layer_id"]), None
        )
        if layer is None:
            raise not_found("layer")
        layer.schedule = schedule
        return layer

    @extend_schema(
        summary="Change a layer (managers)",
        request=LayerUpdateSerializer,
        responses=LayerSerializer,
    )
    @action(detail=True, methods=["patch"], url_path=r"layers/(?P<layer_id>\d+)")
    def change_layer(self, request: Request, pk: str, layer_id: str) -> Response:
        schedule = self.get_object()
        layer = self._layer(schedule)
        input_ = LayerUpdateSerializer(data=request.data)
        input_.is_valid(raise_exception=True)
        data = dict(input_.validated_data)
        participants = data.pop("participants", None)
        layer = oncall.update_layer(layer, actor=request.user, participants=participants, **data)
        return Response(LayerSerializer(layer).data)

    @extend_schema(summary="Remove a layer (managers)", responses={204: None})
    @change_layer.mapping.delete
    def remove_layer(self, request: Request, pk: str, layer_id: str) -> Response:
        schedule = self.get_object()
        oncall.delete_layer(self._layer(schedule), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # Who is on call ---------------------------------------------------------------------------

    @extend_schema(
        summary="Who is on call now, or at a given time",
        parameters=[OpenApiParameter("at", datetime, description="ISO 8601; default now")],
        responses=OnCallSerializer,
    )
    @action(detail=True, methods=["get"])
    def oncall(self, request: Request, pk: str) -> Response:
        schedule = self.get_object()
        at = _query(AtQuerySerializer, request).get("at") or timezone.now()
        users = oncall.on_call_users(schedule, at)
        return Response(OnCallSerializer({"at": at, "users": users}).data)

    @extend_schema(
        summary="The final schedule over a range (90 days at most)",
        parameters=[
            OpenApiParameter("start", datetime, description="ISO 8601; default now"),
            OpenApiParameter("end", datetime, description="ISO 8601; default start + 14 days"),
        ],
        responses=ShiftSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def shifts(self, request: Request, pk: str) -> Response:
        schedule = self.get_object()
        window = _query(RangeQuerySerializer, request)
        result = oncall.shifts(schedule, window["start"], window["end"])
        return Response(ShiftSerializer(result, many=True).data)

    # Overrides --------------------------------------------------------------------------------

    @extend_schema(
        summary="Overrides not yet ended (or overlapping ?start=&end=)",
        parameters=[
            OpenApiParameter("start", datetime),
            OpenApiParameter("end", datetime),
        ],
        responses=OverrideSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def overrides(self, request: Request, pk: str) -> Response:
        schedule = self.get_object()
        queryset = schedule.overrides.select_related("user").order_by("start", "id")
        if "start" in request.query_params or "end" in request.query_params:
            window = _query(RangeQuerySerializer, request)
            queryset = queryset.filter(start__lt=window["end"], end__gt=window["start"])
        else:
            queryset = queryset.filter(end__gt=timezone.now())
        return Response(OverrideSerializer(queryset[:500], many=True).data)

    @extend_schema(
        summary="Add an override (responders for themselves, managers for anyone)",
        request=OverrideInputSerializer,
        responses={201: OverrideSerializer},
    )
    @overrides.mapping.post
    def create_override(self, request: Request, pk: str) -> Response:
        schedule = self.get_object()
        input_ = OverrideInputSerializer(data=request.data)
        input_.is_valid(raise_exception=True)
        data = input_.validated_data
        override = oncall.create_override(
            schedule,
            data.get("user") or request.user,
            data["start"],
            data["end"],
            actor=request.user,
            reason=data["reason"],
        )
        return Response(OverrideSerializer(override).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Remove an override (its owner or a manager)", responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"overrides/(?P<override_id>\d+)")
    def remove_override(self, request: Request, pk: str, override_id: str) -> Response:
        schedule = self.get_object()
        override = schedule.overrides.filter(pk=override_id).first()
        if override is None:
            raise not_found("override")
        override.schedule = schedule
        oncall.delete_override(override, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


router.register("schedules", ScheduleViewSet, basename="api-schedule")


# --- Shift swaps --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Swap requests of the schedules you can view",
        parameters=[
            OpenApiParameter("schedule", int),
            OpenApiParameter("status", str, enum=SwapStatus.values),
        ],
    ),
    retrieve=extend_schema(summary="One swap request"),
)
class SwapRequestViewSet(
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = SwapSerializer
    permission_classes = [IsAuthenticated, TeamRole]
    lookup_value_regex = r"\d+"
    required_actions = {
        "create": Action.RESPOND,
        "accept": Action.RESPOND,
        "decline": Action.RESPOND,
        "cancel": Action.RESPOND,
    }
    conflict_actions = {"accept", "decline", "cancel"}

    def get_queryset(self) -> QuerySet[ShiftSwapRequest]:
        if getattr(self, "swagger_fake_view", False):
            return ShiftSwapRequest.objects.none()
        queryset = scope(
            ShiftSwapRequest.objects.select_related(
                "schedule", "requester", "proposed_taker", "taker"
            ),
            self.request.user,
            Action.VIEW,
            "schedule__team",
        )
        params = self.request.query_params
        if params.get("schedule", "").isdigit():
            queryset = queryset.filter(schedule_id=int(params["schedule"]))
        if params.get("status") in SwapStatus.values:
            queryset = queryset.filter(status=params["status"])
        return queryset.order_by("-created_at", "-id")

    def permission_team(self) -> int | None:
        if self.action != "create":
            return None
        raw = self.request.data.get("schedule") if hasattr(self.request.data, "get") else None
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
            return None
        schedule = scope(Schedule.objects.all(), self.request.user, Action.VIEW).filter(pk=int(raw))
        return schedule.values_list("team_id", flat=True).first()

    def get_object(self) -> ShiftSwapRequest:
        swap = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if swap is None:
            raise not_found("swap request")
        self.check_object_permissions(self.request, swap)
        return swap

    @extend_schema(
        summary="Ask someone to take (part of) your shift (responders)",
        request=SwapInputSerializer,
        responses={201: SwapSerializer},
    )
    def create(self, request: Request) -> Response:
        input_ = SwapInputSerializer(data=request.data, context=self.get_serializer_context())
        input_.is_valid(raise_exception=True)
        data = input_.validated_data
        self.check_object_permissions(request, data["schedule"])
        swap = oncall.request_swap(
            data["schedule"],
            request.user,
            data["start"],
            data["end"],
            proposed_taker=data.get("proposed_taker"),
            note=data["note"],
        )
        return Response(SwapSerializer(swap).data, status=status.HTTP_201_CREATED)

    def _no_input(self, request: Request) -> None:
        given = {} if request.data is None else request.data  # a JSON null is "no input" too
        NoInputSerializer(data=given).is_valid(raise_exception=True)

    @extend_schema(
        summary="Take the shift: writes an override for you", request=None, responses=SwapSerializer
    )
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        self._no_input(request)
        swap = _decided(oncall.accept_swap, self.get_object(), request.user)
        return Response(SwapSerializer(swap).data)

    @extend_schema(
        summary="Say no (the person asked, or a manager)", request=None, responses=SwapSerializer
    )
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str) -> Response:
        self._no_input(request)
        swap = _decided(oncall.decline_swap, self.get_object(), request.user)
        return Response(SwapSerializer(swap).data)

    @extend_schema(summary="Withdraw your request", request=None, responses=SwapSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        self._no_input(request)
        swap = _decided(oncall.cancel_swap, self.get_object(), request.user)
        return Response(SwapSerializer(swap).data)


router.register("swap-requests", SwapRequestViewSet, basename="api-swap-request")
