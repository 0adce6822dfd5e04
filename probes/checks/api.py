"""REST endpoints for checks, their results and rollups, under /api/v1/.

Same rules as every team-scoped endpoint (``tocsin.api.viewsets``): integer ids, a check of a
team you cannot view is a 404, your role there decides the rest (403). Viewers read; responders
pause, resume and run now (the same services the pages and the admin call); managers create,
change and delete, validated exactly as the admin validates (the model's ``full_clean``: the
kind's config, conditions with the position of an error, thresholds, locations). Results and
rollups are read-only: runs and the roll-up task write them.

A check's ``config`` may hold secrets (passwords, tokens, DSNs): it is returned with them
replaced by ``[redacted]``, and a config sent back with ``[redacted]`` still in place keeps the
stored value there, so a client can change one setting of what it read.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.models import Service
from probes import kinds
from probes.api import ServiceConfigViewSet
from probes.checks import rollups_api, services
from probes.checks.choices import CheckState, ResultStatus
from probes.checks.models import CHECK_STATE_FIELDS, Check, Result
from probes.checks.pages import redacted_config, restore_redacted
from tocsin.api.filters import IdFilter, StrictFilterSet, TeamRefFilter
from tocsin.api.lookups import visible_teams
from tocsin.api.pagination import KeysetPagination
from tocsin.api.serializers import IdField, NoInputSerializer, StrictInputMixin
from tocsin.api.viewsets import MANAGER_WRITES, TeamScopedViewSet
from tocsin.permissions import Action, scope

KIND_TEXT = ", ".join(kinds.KINDS)
STATE_TEXT = "up, degraded, down, paused or unknown"
# The settings a manager writes (the state columns are the scheduler's).
CONFIG_FIELDS = [
    "name",
    "kind",
    "config",
    "conditions",
    "degraded_conditions",
    "interval",
    "timeout",
    "failure_threshold",
    "recovery_threshold",
    "window_failures",
    "window_size",
    "quick_retry",
    "reminder_interval",
    "locations",
    "down_when_failing",
]


def _strings(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), **kwargs
    )


# --- Serializers --------------------------------------------------------------------------------


class CheckSerializer(serializers.ModelSerializer):
    team = serializers.IntegerField(source="service.team_id", read_only=True)
    # Plain strings listed in words: an enum here would collide with the other components'
    # "kind" and "state" enums (spectacular names enums after the field).
    kind = serializers.CharField(read_only=True, help_text=f"One of: {KIND_TEXT}.")
    config = serializers.SerializerMethodField(
        help_text="The kind's settings; secrets (passwords, tokens, keys, DSN passwords) read "
        "[redacted]."
    )
    conditions = _strings(read_only=True, help_text="What “up” means; empty: the kind's default.")
    degraded_conditions = _strings(read_only=True)
    locations = _strings(read_only=True, help_text="Probed from each (empty: any one worker).")
    parents = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    state = serializers.SerializerMethodField(
        help_text=f"{STATE_TEXT}; unknown also when no run happened for three intervals."
    )

    class Meta:
        model = Check
        fields = [
            "id",
            "team",
            "service",
            *CONFIG_FIELDS,
            "parents",
            "paused",
            *CHECK_STATE_FIELDS,
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_config(self, check: Check) -> dict[str, Any]:
        return redacted_config(check.config or {})

    def get_state(self, check: Check) -> str:
        return check.display_state(self.context.get("now"))


class CheckInputSerializer(StrictInputMixin, serializers.Serializer):
    """A check's settings; the model validates them as the admin does (``full_clean``)."""

    service = IdField(help_text="The service's id; you need the manager role in its team.")
    name = serializers.CharField(max_length=100)
    kind = serializers.CharField(max_length=20, help_text=f"One of: {KIND_TEXT}.")
    config = serializers.DictField(
        required=False, help_text="The kind's settings (see the kind's documentation)."
    )
    conditions = _strings(required=False)
    degraded_conditions = _strings(required=False)
    interval = serializers.IntegerField(required=False, help_text="Seconds, at least 10.")
    timeout = serializers.FloatField(required=False, help_text="Seconds, at most 60.")
    failure_threshold = serializers.IntegerField(required=False)
    recovery_threshold = serializers.IntegerField(required=False)
    window_failures = serializers.IntegerField(required=False, allow_null=True)
    window_size = serializers.IntegerField(required=False, allow_null=True)
    quick_retry = serializers.BooleanField(required=False)
    reminder_interval = serializers.IntegerField(required=False, allow_null=True)
    locations = _strings(required=False)
    down_when_failing = serializers.IntegerField(required=False)
    parents = serializers.ListField(
        child=IdField(),
        required=False,
        help_text="Ids of checks of the same team; while one is down this one's alerts wait.",
    )

    def validate_service(self, pk: int) -> Service:
        request = self.context["request"]
        visible = scope(Service.objects.select_related("team"), request.user, Action.VIEW)
        service = visible.filter(pk=pk).first()
        if service is None:
            raise serializers.ValidationError("no service with this id that you can view")
        if self.instance is not None and service.pk != self.instance.service_id:
            raise serializers.ValidationError("cannot be changed; create a check there instead")
        return service

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """The model's own validation, on the check as it would be after this change."""
        if self.instance is not None:
            candidate = Check.objects.select_related("service").get(pk=self.instance.pk)
            if "config" in data:
                data["config"] = restore_redacted(data["config"], candidate.config)
        else:
            candidate = Check(service=data["service"])
        service = data.get("service", candidate.service)
        if "parents" in data:
            data["parents"] = self._parents(data["parents"], service)
        for name, value in data.items():
            if name not in ("service", "parents"):
                setattr(candidate, name, value)
        try:
            candidate.full_clean(exclude=["service", "parents"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        if "config" in data:
            data["config"] = candidate.config  # as the kind normalised it
        return data

    def _parents(self, ids: list[int], service: Service) -> list[Check]:
        found = {c.pk: c for c in Check.objects.filter(pk__in=ids, service__team=service.team_id)}
        missing = [pk for pk in ids if pk not in found]
        if missing:
            raise serializers.ValidationError(
                {"parents": [f"no check {pk} in this service's team" for pk in missing]}
            )
        if self.instance is not None and self.instance.pk in found:
            raise serializers.ValidationError({"parents": ["a check cannot be its own parent"]})
        return list(found.values())


class ResultSerializer(serializers.ModelSerializer):
    team = serializers.IntegerField(source="probe.service.team_id", read_only=True)
    check = serializers.IntegerField(source="probe_id", read_only=True)
    status = serializers.CharField(
        read_only=True,
        help_text="up, degraded, down, or unknown: a gap of `slots` runs that did not happen "
        "(the prober was down), never the target's downtime.",
    )
    timings = serializers.DictField(
        child=serializers.FloatField(), read_only=True, help_text="Phase → milliseconds."
    )

    class Meta:
        model = Result
        fields = [
            "id",
            "team",
            "check",
            "location",
            "slot_at",
            "started_at",
            "status",
            "latency_ms",
            "timings",
            "error",
            "slots",
        ]
        read_only_fields = fields


class ResultDetailSerializer(ResultSerializer):
    details = serializers.DictField(read_only=True)

    class Meta(ResultSerializer.Meta):
        fields = [*ResultSerializer.Meta.fields, "explanation", "excerpt", "details"]
        read_only_fields = fields


# The most one answer of /checks/{id}/rollups/ spans, per period (about 2,000 points at most).
# --- Filters ------------------------------------------------------------------------------------


class CheckFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams, field_name="service__team")
    service = IdFilter(field_name="service")
    kind = django_filters.ChoiceFilter(choices=kinds.choices())
    state = django_filters.ChoiceFilter(
        choices=CheckState.choices,
        help_text="The stored state (the answer's state also reads unknown when no run "
        "happened for three intervals).",
    )

    class Meta:
        model = Check
        fields: list[str] = []


class ResultFilter(StrictFilterSet):
    check = IdFilter(field_name="probe")
    status = django_filters.ChoiceFilter(choices=ResultStatus.choices)
    location = django_filters.CharFilter()

    class Meta:
        model = Result
        fields: list[str] = []


# --- Views --------------------------------------------------------------------------------------


def _saved(call: Any, *args: Any, **kwargs: Any) -> Check:
    """A service call whose model validation (a race with another change) is still a 400."""
    try:
        return call(*args, **kwargs)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None


@extend_schema_view(
    list=extend_schema(summary="Checks of the teams you can view"),
    retrieve=extend_schema(summary="One check, with its state and why"),
)
class CheckViewSet(ServiceConfigViewSet):
    """Synthetic checks: a target probed on a schedule (HTTP, journeys, TCP, ping, DNS, TLS,
    SQL, Redis, consistency)."""

    model = Check
    what = "check"
    serializer_class = CheckSerializer
    filterset_class = CheckFilter
    required_actions = {
        **MANAGER_WRITES,
        "pause": Action.RESPOND,
        "resume": Action.RESPOND,
        "run_now": Action.RESPOND,
    }

    def shape(self, queryset: QuerySet[Check]) -> QuerySet[Check]:
        return (
            queryset.select_related("service")
            .prefetch_related("parents")
            .order_by("service__name", "name", "id")
        )

    @extend_schema(
        summary="Create a check (managers)",
        request=CheckInputSerializer,
        responses={201: CheckSerializer},
    )
    def create(self, request: Request) -> Response:
        data = self.valid_input(CheckInputSerializer)
        self.check_object_permissions(request, data["service"].team)
        check = _saved(services.create_check, actor=request.user, **data)
        return self.answer(check, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a check's settings (managers); a changed configuration starts over",
        request=CheckInputSerializer,
        responses=CheckSerializer,
    )
    def partial_update(self, request: Request, pk: int) -> Response:
        check = self.get_object()
        data = self.valid_input(CheckInputSerializer, check)
        data.pop("service", None)
        return self.answer(_saved(services.update_check, check, actor=request.user, **data))

    @extend_schema(summary="Delete a check, its results and rollups (managers)")
    def destroy(self, request: Request, pk: int) -> Response:
        services.delete(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Pause: stop running it, resolve its alert (responders)",
        request=NoInputSerializer,
        responses=CheckSerializer,
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: int) -> Response:
        return self.answer(services.pause(self.target(), actor=request.user))

    @extend_schema(
        summary="Resume: run it again from now, unknown until its first run (responders)",
        request=NoInputSerializer,
        responses=CheckSerializer,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: int) -> Response:
        return self.answer(services.resume(self.target(), actor=request.user))

    @extend_schema(
        summary="Run it once now and store the result; it counts like any run unless the "
        "check is paused (responders)",
        request=NoInputSerializer,
        responses=ResultDetailSerializer,
    )
    @action(detail=True, methods=["post"], url_path="run-now")
    def run_now(self, request: Request, pk: int) -> Response:
        result = services.run_now(self.target())
        result = Result.objects.select_related("probe__service").get(pk=result.pk)
        return Response(ResultDetailSerializer(result).data)

    @extend_schema(
        summary="A check's minutes, hours or days, oldest first (minutes are kept 14 days, "
        "hours 90, days 2 years)",
        parameters=[rollups_api.CheckPointsQuerySerializer],
        responses=rollups_api.CheckPointsSerializer,
    )
    @action(detail=True, methods=["get"])
    def rollups(self, request: Request, pk: int) -> Response:
        return Response(rollups_api.points_answer(self.get_object(), request.query_params))


class ResultPagination(KeysetPagination):
    at_field = "started_at"


@extend_schema_view(
    list=extend_schema(summary="Runs of the checks you can view, newest first (kept 48 h)"),
    retrieve=extend_schema(summary="One run, with its failed conditions and response excerpt"),
)
class ResultViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """What each run found; unknown rows are gaps in which the prober did not run."""

    model = Result
    what = "check result"
    team_field = "probe__service__team"
    serializer_class = ResultSerializer
    filterset_class = ResultFilter
    pagination_class = ResultPagination

    def shape(self, queryset: QuerySet[Result]) -> QuerySet[Result]:
        return queryset.select_related("probe__service").order_by("-started_at", "-id")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return ResultDetailSerializer if self.action == "retrieve" else ResultSerializer
