"""Incidents, escalation policies and the grouping preview under /api/v1/.

Same rules as the rest of the API: objects are looked up in querysets narrowed to what the
caller may view (404 otherwise); acting on incidents needs the responder role, editing policies
the manager role (403); writes go through ``incidents.lifecycle.services``.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from incidents.lifecycle import groups, services, timeline
from incidents.models import (
    Incident,
    IncidentAlert,
    IncidentStatus,
    Priority,
)
from monitoring.models import Service
from tocsin.api.filters import IntegerFilter, StrictFilterSet, TeamRefFilter
from tocsin.api.lookups import validated, visible_teams
from tocsin.api.pagination import KeysetPagination
from tocsin.api.serializers import EventSerializer, IdField, StrictInputMixin, TeamRefSerializer
from tocsin.api.viewsets import ApiMixin, TeamScopedViewSet
from tocsin.permissions import Action, can, scope

router = SimpleRouter()


# --- Incidents ------------------------------------------------------------------------------------


# A step condition: "only for this priority or more urgent"; blank = any priority.


class IncidentFilter(StrictFilterSet):
    # distinct=False: no join to repeat rows, and SELECT DISTINCT over 100,000 incidents would
    # read them all before the page is cut.
    status = django_filters.MultipleChoiceFilter(choices=IncidentStatus.choices, distinct=False)
    priority = django_filters.MultipleChoiceFilter(choices=Priority.choices, distinct=False)
    service = IntegerFilter(field_name="service", min_value=1)
    team = TeamRefFilter(queryset=visible_teams)

    class Meta:
        model = Incident
        fields: list[str] = []


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class IncidentSerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    service = serializers.SerializerMethodField()
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    commander = UserRefSerializer(read_only=True, allow_null=True)
    alert_ids = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "team",
            "service",
            "title",
            "summary",
            "status",
            "priority",
            "urgency",
            "assignee",
            "commander",
            "created_at",
            "acknowledged_at",
            "resolved_at",
            "group_key",
            "merged_into",
            "current_step",
            "repeat_round",
            "next_step_at",
            "ack_timeout_at",
            "ack_due_at",
            "resolve_due_at",
            "ack_breached_at",
            "resolve_breached_at",
            "policy_snapshot",
            "alert_ids",
        ]
        read_only_fields = fields

    def get_service(self, incident: Incident) -> dict[str, Any]:
        return {"id": incident.service_id, "name": incident.service.name}

    def get_alert_ids(self, incident: Incident) -> list[int]:
        return [link.alert_id for link in incident.alert_links.all()]


class ReassignSerializer(StrictInputMixin, serializers.Serializer):
    user = IdField(allow_null=True)


class NoteSerializer(StrictInputMixin, serializers.Serializer):
    text = serializers.CharField(max_length=services.MAX_NOTE_LENGTH)


class MergeSerializer(StrictInputMixin, serializers.Serializer):
    sources = serializers.ListField(child=IdField(), min_length=1)


class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    model = Incident
    what = "incident"
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    pagination_class = KeysetPagination  # newest first by (created_at, id)
    required_actions = {
        "acknowledge": Action.RESPOND,
        "resolve": Action.RESPOND,
        "reassign": Action.RESPOND,
        "notes": Action.RESPOND,
        "merge": Action.RESPOND,
    }

    def shape(self, queryset: QuerySet[Incident]) -> QuerySet[Incident]:
        return (
            queryset.select_related("team", "service", "assignee", "commander")
            # alert_ids only: links without their other columns, in one query per page.
            .prefetch_related(
                Prefetch(
                    "alert_links",
                    # Not the model's ordering, which joins the incident to sort by it.
                    IncidentAlert.objects.only("incident_id", "alert_id").order_by(
                        "added_at", "id"
                    ),
                )
            )
            .order_by("-created_at", "-id")
        )

    def _answer(self, incident: Incident) -> Response:
        incident = self.get_queryset().get(pk=incident.pk)
        return Response(self.get_serializer(incident).data)

    @extend_schema(request=None, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: int) -> Response:
        incident = self.get_object()
        services.acknowledge(incident, actor=request.user, via="api")
        return self._answer(incident)

    @extend_schema(request=None, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: int) -> Response:
        incident = self.get_object()
        services.resolve(incident, actor=request.user, via="api")
        return self._answer(incident)

    @extend_schema(request=ReassignSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def reassign(self, request: Request, pk: int) -> Response:
        incident = self.get_object()
        data = validated(ReassignSerializer, request.data, self.get_serializer_context())
        user = None
        if data["user"] is not None:
            user = get_user_model().objects.filter(pk=data["user"]).first()
            if user is None:
                raise serializers.ValidationError({"user": ["no user with this id"]})
        services.reassign(incident, user, actor=request.user)
        return self._answer(incident)

    @extend_schema(request=NoteSerializer, responses={201: EventSerializer})
    @action(detail=True, methods=["post"])
    def notes(self, request: Request, pk: int) -> Response:
        incident = self.get_object()
        data = validated(NoteSerializer, request.data, self.get_serializer_context())
        services.add_note(incident, data["text"], actor=request.user)
        event = timeline.for_incident(incident).filter(kind="incident.note").last()
        return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MergeSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request: Request, pk: int) -> Response:
        incident = self.get_object()
        data = validated(MergeSerializer, request.data, self.get_serializer_context())
        sources = list(self.get_queryset().filter(pk__in=data["sources"]))
        if len(sources) != len(set(data["sources"])):
            raise serializers.ValidationError(
                {"sources": ["no such incident, or you may not see it"]}
            )
        for source in sources:
            if not can(request.user, Action.RESPOND, source):
                self.permission_denied(request, "this needs the responder role in the team")
        services.merge(incident, sources, actor=request.user)
        return self._answer(incident)

    # The whole timeline in one answer, oldest first: it is read as a story, not paged through.
    @extend_schema(responses=EventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def timeline(self, request: Request, pk: int) -> Response:
        incident = self.get_object()
        events = timeline.for_incident(incident).select_related("team")
        return Response(EventSerializer(events, many=True).data)


# --- Grouping preview -----------------------------------------------------------------------------


class PreviewSerializer(StrictInputMixin, serializers.Serializer):
    service = IdField()
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True), allow_empty=False)
    fingerprint = serializers.CharField(max_length=255, required=False)
    severity = serializers.CharField(max_length=10, required=False)
    summary = serializers.CharField(max_length=500, required=False)


class GroupingPreviewViewSet(ApiMixin, viewsets.ViewSet):
    """Which incident an alert would join, and why. Changes nothing (any viewer may ask)."""

    serializer_class = PreviewSerializer

    @extend_schema(request=PreviewSerializer, operation_id="grouping_preview")
    def create(self, request: Request) -> Response:
        data = dict(validated(PreviewSerializer, request.data, {"request": request}))
        service = (
            scope(Service.objects.all(), request.user, Action.VIEW)
            .filter(pk=data.pop("service"))
            .first()
        )
        if service is None:
            raise serializers.ValidationError(
                {"service": ["no service with this id that you can view"]}
            )
        result = groups.preview(service, data)
        incident = result["incident"]
        return Response(
            {
                **result,
                "incident": None
                if incident is None
                else {"id": incident.pk, "title": incident.title, "status": incident.status},
            }
        )


router.register("incidents", IncidentViewSet, basename="api-incident")
router.register("grouping-preview", GroupingPreviewViewSet, basename="api-grouping-preview")
