"""REST endpoints for heartbeats and their pings, under /api/v1/.

Same rules as every team-scoped endpoint (``tocsin.api.viewsets``): integer ids, a heartbeat of
a team you cannot view is a 404, your role there decides the rest (403). Viewers read; responders
pause, resume and snooze (the same services the pages, the admin and the ping URLs call);
managers create, change and delete. Pings are read-only: the ping URLs write them.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.models import Service
from probes.api import ServiceConfigViewSet
from probes.heartbeats import schedule, services, snippets
from probes.heartbeats.choices import (
    MAX_DURATION,
    MAX_PERIOD,
    OUTCOME_MEMORY,
    SLUG_PATTERN,
    HeartbeatStatus,
)
from probes.heartbeats.models import CONFIG_FIELDS, Heartbeat, Ping, PingKind
from tocsin.api.filters import IdFilter, StrictFilterSet, TeamRefFilter
from tocsin.api.lookups import visible_teams
from tocsin.api.pagination import KeysetPagination
from tocsin.api.serializers import IdField, NoInputSerializer, StrictInputMixin
from tocsin.api.viewsets import MANAGER_WRITES, TeamScopedViewSet
from tocsin.permissions import Action, scope
from tocsin.services import ServiceError

# --- Serializers --------------------------------------------------------------------------------


class HeartbeatSerializer(serializers.ModelSerializer):
    team = serializers.IntegerField(source="service.team_id", read_only=True)
    status = serializers.SerializerMethodField(
        help_text="new, up, late (past the expected time, within the grace), down or paused."
    )
    problems = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Why it is down: problem (missing, failed, too_long, too_short, too_often) → "
        "a sentence. Each problem has its own alert.",
    )
    deadline = serializers.SerializerMethodField(
        help_text="When it counts as missing: the expected time plus the grace."
    )
    ping_url = serializers.SerializerMethodField()
    curl = serializers.SerializerMethodField(help_text="A curl line for the end of the job.")
    crontab = serializers.SerializerMethodField(
        help_text="A crontab line reporting the start and the exit status."
    )

    class Meta:
        model = Heartbeat
        fields = [
            "id",
            "team",
            "service",
            *CONFIG_FIELDS,
            "uuid",
            "ping_url",
            "curl",
            "crontab",
            "status",
            "problems",
            "snoozed_until",
            "last_ping_at",
            "last_success_at",
            "last_start_at",
            "last_duration",
            "last_exit_status",
            "expected_at",
            "deadline",
            "consecutive_failures",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=HeartbeatStatus.choices))
    def get_status(self, heartbeat: Heartbeat) -> str:
        return heartbeat.get_status(self.context.get("now"))

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_deadline(self, heartbeat: Heartbeat) -> Any:
        deadline = heartbeat.deadline()
        return None if deadline is None else serializers.DateTimeField().to_representation(deadline)

    @extend_schema_field(OpenApiTypes.URI)
    def get_ping_url(self, heartbeat: Heartbeat) -> str:
        return snippets.ping_url(heartbeat)

    def get_curl(self, heartbeat: Heartbeat) -> str:
        return snippets.curl_line(heartbeat)

    def get_crontab(self, heartbeat: Heartbeat) -> str:
        return snippets.crontab_line(heartbeat)


def _seconds(minimum: int, maximum: int = MAX_PERIOD, **kwargs: Any) -> serializers.IntegerField:
    """A number of seconds within the model's bounds (a year at most, as Healthchecks has it)."""
    return serializers.IntegerField(min_value=minimum, max_value=maximum, **kwargs)


class HeartbeatInputSerializer(StrictInputMixin, serializers.Serializer):
    """A heartbeat's configuration; checked as the model checks it (cron, time zone, limits)."""

    service = IdField(help_text="The service's id; you need the manager role in its team.")
    name = serializers.CharField(max_length=100)
    slug = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        validators=[RegexValidator(f"^{SLUG_PATTERN}$", "use a-z, 0-9, hyphens and underscores")],
        help_text="For /ping/<ping key>/<slug>; derived from the name when left out.",
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    period = _seconds(10, required=False, allow_null=True, help_text="Seconds between runs.")
    cron = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="Replaces the period."
    )
    timezone = serializers.CharField(max_length=64, required=False)
    grace = _seconds(0, required=False)
    min_runtime = _seconds(0, int(MAX_DURATION.total_seconds()), required=False, allow_null=True)
    max_runtime = _seconds(1, required=False, allow_null=True)
    too_often = _seconds(1, required=False, allow_null=True)
    failures_before_alert = serializers.IntegerField(
        min_value=1, max_value=OUTCOME_MEMORY, required=False
    )
    failure_percent = serializers.IntegerField(
        min_value=1, max_value=100, required=False, allow_null=True
    )
    failure_window = serializers.IntegerField(min_value=2, max_value=OUTCOME_MEMORY, required=False)
    manual_resume = serializers.BooleanField(required=False)

    def validate_service(self, pk: int) -> Service:
        request = self.context.get("request")
        visible = scope(Service.objects.select_related("team"), request.user, Action.VIEW)
        service = visible.filter(pk=pk).first()
        if service is None:
            raise serializers.ValidationError("no service with this id that you can view")
        if self.instance is not None and service.pk != self.instance.service_id:
            raise serializers.ValidationError("cannot be changed; create a heartbeat there instead")
        return service

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """The model's own checks, on the heartbeat as it would be after this change."""
        if self.instance is not None:
            candidate = Heartbeat.objects.get(pk=self.instance.pk)
        else:
            candidate = Heartbeat()
        for name, value in data.items():
            setattr(candidate, name, value)
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        data["slug"] = candidate.slug
        return data


class SnoozeSerializer(StrictInputMixin, serializers.Serializer):
    duration = serializers.CharField(
        help_text="How long no new alerts are raised: seconds, or 90s, 15m, 2h, 1d, 1w; "
        "0 ends a snooze. At most 30 days."
    )

    def validate_duration(self, value: str) -> int:
        try:
            return schedule.parse_duration(str(value).strip())
        except ValueError:
            raise serializers.ValidationError(
                "a duration such as 3600, 90s, 15m, 2h or 1d"
            ) from None


@extend_schema_field({"type": "string", "description": ", ".join(PingKind.values)})
class PingKindField(serializers.CharField):
    """A ping's kind, listed in words: an enum here would collide with the other components'
    "kind" enums (spectacular names enums after the field), and settings are not ours to add
    an ENUM_NAME_OVERRIDES entry to."""


class PingSerializer(serializers.ModelSerializer):
    kind = PingKindField(read_only=True)
    team = serializers.IntegerField(source="heartbeat.service.team_id", read_only=True)
    body_truncated = serializers.BooleanField(
        read_only=True, help_text="The client sent more than the body limit kept."
    )

    class Meta:
        model = Ping
        fields = [
            "id",
            "team",
            "heartbeat",
            "received_at",
            "kind",
            "exit_status",
            "rid",
            "duration",
            "method",
            "remote_addr",
            "user_agent",
            "body_size",
            "body_truncated",
        ]
        read_only_fields = fields


class PingDetailSerializer(PingSerializer):
    class Meta(PingSerializer.Meta):
        fields = [*PingSerializer.Meta.fields, "body"]
        read_only_fields = fields


# --- Filters ------------------------------------------------------------------------------------


class HeartbeatFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams, field_name="service__team")
    service = IdFilter(field_name="service")
    status = django_filters.ChoiceFilter(
        choices=[c for c in HeartbeatStatus.choices if c[0] != HeartbeatStatus.LATE],
        help_text="The stored state (late heartbeats are up).",
    )

    class Meta:
        model = Heartbeat
        fields: list[str] = []


class PingFilter(StrictFilterSet):
    heartbeat = IdFilter(field_name="heartbeat")
    kind = django_filters.ChoiceFilter(choices=PingKind.choices)

    class Meta:
        model = Ping
        fields: list[str] = []


# --- Views --------------------------------------------------------------------------------------


def _save(heartbeat: Heartbeat, data: dict[str, Any], *, created: bool, actor: Any) -> Heartbeat:
    """Store a configuration (as the admin does) and take it into account at once."""
    for name, value in data.items():
        setattr(heartbeat, name, value)
    try:
        with transaction.atomic():
            heartbeat.save()
            heartbeat = services.configured(heartbeat, created=created, actor=actor)
    except IntegrityError:
        raise ServiceError(
            "another heartbeat of this service has this slug", "slug", "duplicate"
        ) from None
    return heartbeat


@extend_schema_view(
    list=extend_schema(summary="Heartbeats of the teams you can view"),
    retrieve=extend_schema(summary="One heartbeat"),
)
class HeartbeatViewSet(ServiceConfigViewSet):
    """Jobs that check in by pinging a URL (Healthchecks.io-compatible)."""

    model = Heartbeat
    what = "heartbeat"
    serializer_class = HeartbeatSerializer
    filterset_class = HeartbeatFilter
    required_actions = {
        **MANAGER_WRITES,
        "pause": Action.RESPOND,
        "resume": Action.RESPOND,
        "snooze": Action.RESPOND,
    }
    conflict_actions = {"create", "partial_update"}  # a slug the service already uses (409)

    def shape(self, queryset: QuerySet[Heartbeat]) -> QuerySet[Heartbeat]:
        return queryset.select_related("service").order_by("service__name", "name", "id")

    @extend_schema(
        summary="Create a heartbeat (managers)",
        request=HeartbeatInputSerializer,
        responses={201: HeartbeatSerializer},
    )
    def create(self, request: Request) -> Response:
        data = self.valid_input(HeartbeatInputSerializer)
        self.check_object_permissions(request, data["service"].team)
        heartbeat = _save(Heartbeat(), data, created=True, actor=request.user)
        return self.answer(heartbeat, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a heartbeat's configuration (managers)",
        request=HeartbeatInputSerializer,
        responses=HeartbeatSerializer,
    )
    def partial_update(self, request: Request, pk: int) -> Response:
        heartbeat = self.get_object()
        data = self.valid_input(HeartbeatInputSerializer, heartbeat)
        data.pop("service", None)
        return self.answer(_save(heartbeat, data, created=False, actor=request.user))

    @extend_schema(summary="Delete a heartbeat and its pings (managers)")
    def destroy(self, request: Request, pk: int) -> Response:
        services.delete(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Pause: expect nothing, resolve its alerts (responders)",
        request=NoInputSerializer,
        responses=HeartbeatSerializer,
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: int) -> Response:
        return self.answer(services.pause(self.target(), actor=request.user))

    @extend_schema(
        summary="Resume: expect pings again from the next one (responders)",
        request=NoInputSerializer,
        responses=HeartbeatSerializer,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: int) -> Response:
        return self.answer(services.resume(self.target(), actor=request.user))

    @extend_schema(
        summary="Snooze: no new alerts for a while (responders)",
        request=SnoozeSerializer,
        responses=HeartbeatSerializer,
    )
    @action(detail=True, methods=["post"])
    def snooze(self, request: Request, pk: int) -> Response:
        heartbeat = self.get_object()
        input_ = SnoozeSerializer(data=request.data)
        input_.is_valid(raise_exception=True)
        try:
            snoozed = services.snooze(
                heartbeat, input_.validated_data["duration"], actor=request.user
            )
        except ServiceError as exc:
            exc.field = "duration"
            raise
        return self.answer(snoozed)


class PingPagination(KeysetPagination):
    at_field = "received_at"


@extend_schema_view(
    list=extend_schema(summary="Pings of the heartbeats you can view, newest first"),
    retrieve=extend_schema(summary="One ping, with the body it carried (bounded)"),
)
class PingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """What arrived at the ping URLs (kept for ``TOCSIN_PING_RETENTION_DAYS``)."""

    model = Ping
    what = "ping"
    team_field = "heartbeat__service__team"
    serializer_class = PingSerializer
    filterset_class = PingFilter
    pagination_class = PingPagination

    def shape(self, queryset: QuerySet[Ping]) -> QuerySet[Ping]:
        return queryset.select_related("heartbeat__service").order_by("-received_at", "-id")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return PingDetailSerializer if self.action == "retrieve" else PingSerializer
