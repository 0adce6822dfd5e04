"""REST endpoints for on-call schedules, overrides and shift swaps.

Thin callers of ``incidents.oncall.services``. Viewers read schedules, who is on call and the final
shifts; responders add overrides for themselves and request, accept and decline shift swaps;
managers configure schedules and layers and override for anyone. Objects outside the caller's
teams answer 404; a team, schedule or user in the body that does not fit is a 400 on that field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from incidents.models import Schedule, ScheduleLayer, ShiftSwapRequest, SwapStatus
from incidents.oncall import rotations, swaps
from incidents.oncall import services as oncall
from incidents.oncall.serializers import (
    AtQuerySerializer,
    LayerInputSerializer,
    LayerSerializer,
    LayerUpdateSerializer,
    OnCallSerializer,
    OverrideInputSerializer,
    OverrideSerializer,
    RangeQuerySerializer,
    ScheduleCreateSerializer,
    ScheduleSerializer,
    ScheduleUpdateSerializer,
    ShiftSerializer,
    SwapInputSerializer,
    SwapSerializer,
    layer_options,
    prefixed,
    query,
)
from tocsin.api.filters import IdFilter, StrictFilterSet
from tocsin.api.lookups import id_in_body, not_found, object_id, team_in_body
from tocsin.api.serializers import NoInputSerializer
from tocsin.api.viewsets import MANAGER_WRITES, TeamScopedViewSet
from tocsin.models import Team
from tocsin.permissions import Action, scope
from tocsin.services import ServiceError

router = SimpleRouter()


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


class ScheduleFilter(StrictFilterSet):
    team = IdFilter(field_name="team")

    class Meta:
        model = Schedule
        fields: list[str] = []


class SwapFilter(StrictFilterSet):
    schedule = IdFilter(field_name="schedule")
    status = django_filters.ChoiceFilter(choices=SwapStatus.choices)

    class Meta:
        model = ShiftSwapRequest
        fields: list[str] = []


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
class ScheduleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    model = Schedule
    what = "schedule"
    serializer_class = ScheduleSerializer
    filterset_class = ScheduleFilter
    required_actions = {
        **MANAGER_WRITES,
        "add_layer": Action.MANAGE,
        "change_layer": Action.MANAGE,
        "remove_layer": Action.MANAGE,
        "create_override": Action.RESPOND,
        "remove_override": Action.RESPOND,
    }
    conflict_actions = {"create", "partial_update"}

    def shape(self, queryset: QuerySet[Schedule]) -> QuerySet[Schedule]:
        return rotations.schedules_with_layers(queryset).order_by("team__name", "name", "id")

    def permission_team(self) -> Team | None:
        return team_in_body(self.request) if self.action == "create" else None

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
                        **layer_options(layer),
                    )
                except ServiceError as exc:
                    raise prefixed(f"layers.{index}", exc) from None
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
            **layer_options(data),
        )
        return Response(LayerSerializer(layer).data, status=status.HTTP_201_CREATED)

    def _layer(self, schedule: Schedule) -> ScheduleLayer:
        layer_id = object_id(self.kwargs["layer_id"])
        layer = next((la for la in schedule.layers.all() if la.pk == layer_id), None)
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
        at = query(AtQuerySerializer, request).get("at") or timezone.now()
        users = rotations.on_call_users(schedule, at)
        return Response(OnCallSerializer({"at": at, "users": users}).data)

    @extend_schema(
        summary="The final schedule over a range (90 days at most)",
        parameters=[
            OpenApiParameter("start", datetime, description="ISO 8601; default now"),
            OpenApiParameter("end", datetime, description="ISO 8601; default start + 14 days"),
        ],
        responses=ShiftSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def shifts(self, request: Request, pk: str) -> Response:
        schedule = self.get_object()
        window = query(RangeQuerySerializer, request)
        result = rotations.shifts(schedule, window["start"], window["end"])
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
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def overrides(self, request: Request, pk: str) -> Response:
        schedule = self.get_object()
        queryset = schedule.overrides.select_related("user").order_by("start", "id")
        if "start" in request.query_params or "end" in request.query_params:
            window = query(RangeQuerySerializer, request)
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
        override = schedule.overrides.filter(pk=object_id(override_id) or 0).first()
        if override is None:
            raise not_found("override")
        override.schedule = schedule
        oncall.delete_override(override, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Shift swaps --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Swap requests of the schedules you can view"),
    retrieve=extend_schema(summary="One swap request"),
)
class SwapRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    model = ShiftSwapRequest
    what = "swap request"
    team_field = "schedule__team"
    serializer_class = SwapSerializer
    filterset_class = SwapFilter
    required_actions = {
        "create": Action.RESPOND,
        "accept": Action.RESPOND,
        "decline": Action.RESPOND,
        "cancel": Action.RESPOND,
    }
    conflict_actions = {"accept", "decline", "cancel"}

    def shape(self, queryset: QuerySet[ShiftSwapRequest]) -> QuerySet[ShiftSwapRequest]:
        return queryset.select_related("schedule", "requester", "proposed_taker", "taker").order_by(
            "-created_at", "-id"
        )

    def permission_team(self) -> int | None:
        if self.action != "create":
            return None
        pk = id_in_body(self.request, "schedule")
        schedule = scope(Schedule.objects.all(), self.request.user, Action.VIEW).filter(pk=pk)
        return None if pk is None else schedule.values_list("team_id", flat=True).first()

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
        swap = swaps.request_swap(
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
        swap = _decided(swaps.accept_swap, self.get_object(), request.user)
        return Response(SwapSerializer(swap).data)

    @extend_schema(
        summary="Say no (the person asked, or a manager)", request=None, responses=SwapSerializer
    )
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str) -> Response:
        self._no_input(request)
        swap = _decided(swaps.decline_swap, self.get_object(), request.user)
        return Response(SwapSerializer(swap).data)

    @extend_schema(summary="Withdraw your request", request=None, responses=SwapSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        self._no_input(request)
        swap = _decided(swaps.cancel_swap, self.get_object(), request.user)
        return Response(SwapSerializer(swap).data)


router.register("schedules", ScheduleViewSet, basename="api-schedule")
router.register("swap-requests", SwapRequestViewSet, basename="api-swap-request")
