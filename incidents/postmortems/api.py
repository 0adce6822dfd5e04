"""Postmortems and their action items under /api/v1/.

- ``/incidents/{incident_id}/postmortem/``: GET it, POST to start it (prefilled), PATCH to edit
  the narrative, the timeline rows and/or the status; ``publish/`` and ``markdown/`` beside it.
- ``/action-items/``: every action item you can see (filter ``owner=me&status=open`` for your
  to-do list), created against an incident's postmortem, changed and deleted one by one.

Same rules as the rest of the API: an incident you may not view is 404, writing needs the
responder role (403), writes go through ``incidents.postmortems.services``, which records the
events.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, renderers, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from incidents.lifecycle.api import UserRefSerializer
from incidents.models import (
    ActionItem,
    ActionItemStatus,
    Incident,
    Postmortem,
    PostmortemStatus,
)
from incidents.postmortems import prefill
from incidents.postmortems import services as postmortems
from tocsin.api.filters import IdFilter, StrictFilterSet, TeamRefFilter
from tocsin.api.lookups import not_found, object_id, validated, visible_teams
from tocsin.api.permissions import TeamRole
from tocsin.api.serializers import IdField, StrictInputMixin, TeamRefSerializer
from tocsin.api.viewsets import ApiMixin, TeamScopedViewSet
from tocsin.permissions import Action, scope

router = SimpleRouter()


def _user(pk: int | None, field: str = "owner") -> Any:
    if pk is None:
        return None
    user = get_user_model().objects.filter(pk=pk).first()
    if user is None:
        raise serializers.ValidationError({field: ["no user with this id"]})
    return user


# --- serializers --------------------------------------------------------------------------------


class TimelineRowSerializer(StrictInputMixin, serializers.Serializer):
    at = serializers.DateTimeField(help_text="When, ISO 8601 (stored in UTC, whole seconds).")
    text = serializers.CharField(max_length=prefill.MAX_ROW_TEXT)
    event_id = IdField(
        required=False, allow_null=True, help_text="The event the row was prefilled from."
    )
    kind = serializers.CharField(required=False, allow_blank=True, max_length=64)


class ActionItemSerializer(serializers.ModelSerializer):
    incident = serializers.IntegerField(source="postmortem.incident_id", read_only=True)
    owner = UserRefSerializer(read_only=True, allow_null=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = ActionItem
        fields = [
            "id",
            "postmortem",
            "incident",
            "title",
            "owner",
            "due_date",
            "status",
            "tracker_url",
            "position",
            "created_at",
            "done_at",
            "overdue",
        ]
        read_only_fields = fields

    def get_overdue(self, item: ActionItem) -> bool:
        return item.is_overdue(self.context.get("today"))


class PostmortemSerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    author = UserRefSerializer(read_only=True, allow_null=True)
    timeline = TimelineRowSerializer(many=True, read_only=True)
    action_items = serializers.SerializerMethodField()

    class Meta:
        model = Postmortem
        fields = [
            "id",
            "incident",
            "team",
            "status",
            "summary",
            "impact",
            "root_cause",
            "contributing_factors",
            "timeline",
            "author",
            "created_at",
            "updated_at",
            "published_at",
            "action_items",
        ]
        read_only_fields = fields

    @extend_schema_field(ActionItemSerializer(many=True))
    def get_action_items(self, postmortem: Postmortem) -> list[dict[str, Any]]:
        items = postmortem.action_items.select_related("owner", "postmortem").order_by(
            "position", "id"
        )
        return ActionItemSerializer(items, many=True, context=self.context).data


class PostmortemWriteSerializer(StrictInputMixin, serializers.Serializer):
    summary = serializers.CharField(
        required=False, allow_blank=True, max_length=postmortems.MAX_TEXT, trim_whitespace=False
    )
    impact = serializers.CharField(
        required=False, allow_blank=True, max_length=postmortems.MAX_TEXT, trim_whitespace=False
    )
    root_cause = serializers.CharField(
        required=False, allow_blank=True, max_length=postmortems.MAX_TEXT, trim_whitespace=False
    )
    contributing_factors = serializers.CharField(
        required=False, allow_blank=True, max_length=postmortems.MAX_TEXT, trim_whitespace=False
    )
    timeline = TimelineRowSerializer(many=True, required=False, max_length=postmortems.MAX_ROWS)
    status = serializers.ChoiceField(choices=PostmortemStatus.choices, required=False)


class ActionItemWriteSerializer(StrictInputMixin, serializers.Serializer):
    title = serializers.CharField(max_length=postmortems.TITLE_MAX, required=False)
    owner = IdField(allow_null=True, required=False, help_text="A member of the incident's team.")
    due_date = serializers.DateField(allow_null=True, required=False)
    status = serializers.ChoiceField(choices=ActionItemStatus.choices, required=False)
    tracker_url = serializers.URLField(
        max_length=postmortems.URL_MAX, allow_blank=True, required=False
    )


class ActionItemCreateSerializer(ActionItemWriteSerializer):
    incident = IdField(help_text="The incident whose postmortem gets the item.")
    title = serializers.CharField(max_length=postmortems.TITLE_MAX)


# --- the postmortem of an incident --------------------------------------------------------------


class IncidentPostmortemMixin:
    """The incident in the URL (404 for people who may not view it) and its postmortem."""

    request: Request
    kwargs: dict[str, Any]
    permission_classes = [IsAuthenticated, TeamRole]

    @cached_property
    def incident(self) -> Incident:
        found = (
            scope(Incident.objects.all(), self.request.user, Action.VIEW)
            .select_related("team", "service")
            .filter(pk=self.kwargs["incident_id"])
            .first()
        )
        if found is None:
            raise not_found("incident")
        return found

    def permission_team(self) -> Any:
        return self.incident.team

    def postmortem(self) -> Postmortem:
        found = (
            Postmortem.objects.select_related("team", "author")
            .filter(incident=self.incident)
            .first()
        )
        if found is None:
            raise NotFound("this incident has no postmortem yet", code="not_found")
        found.incident = self.incident
        return found

    def answer(self, postmortem: Postmortem, code: int = status.HTTP_200_OK) -> Response:
        postmortem = self.postmortem()
        context = {"request": self.request, "today": timezone.now().date()}
        return Response(PostmortemSerializer(postmortem, context=context).data, status=code)


INCIDENT_ID = OpenApiParameter("incident_id", int, OpenApiParameter.PATH)


@extend_schema(parameters=[INCIDENT_ID])
class PostmortemView(ApiMixin, IncidentPostmortemMixin, APIView):
    """An incident's postmortem."""

    required_actions = {"post": Action.RESPOND, "patch": Action.RESPOND}
    conflict_actions = {"post"}
    permission_classes = [IsAuthenticated, TeamRole]

    @extend_schema(
        summary="The incident's postmortem",
        responses=PostmortemSerializer,
        operation_id="postmortem",
    )
    def get(self, request: Request, incident_id: int) -> Response:
        return self.answer(self.postmortem())

    @extend_schema(
        summary="Start the postmortem, prefilled from the incident (responders)",
        request=None,
        responses={201: PostmortemSerializer},
        operation_id="postmortem_create",
    )
    def post(self, request: Request, incident_id: int) -> Response:
        given = {} if request.data is None else request.data
        if given:
            raise serializers.ValidationError({"": ["send no body; the postmortem is prefilled"]})
        postmortem = postmortems.create(self.incident, actor=request.user)
        return self.answer(postmortem, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Edit the postmortem and/or change its status (responders)",
        description="A published postmortem is read-only: send `status: draft` to reopen it "
        "(together with the edits, if you like). Publishing needs a resolved incident.",
        request=PostmortemWriteSerializer,
        responses=PostmortemSerializer,
        operation_id="postmortem_update",
    )
    def patch(self, request: Request, incident_id: int) -> Response:
        postmortem = self.postmortem()
        data = validated(PostmortemWriteSerializer, request.data, {"request": request})
        target = data.pop("status", None)
        if "timeline" in data:
            data["timeline"] = [dict(row) for row in data["timeline"]]
        postmortems.save(postmortem, actor=request.user, status=target, **data)
        return self.answer(postmortem)


@extend_schema(parameters=[INCIDENT_ID])
class PostmortemPublishView(ApiMixin, IncidentPostmortemMixin, APIView):
    required_actions = {"post": Action.RESPOND}
    permission_classes = [IsAuthenticated, TeamRole]

    @extend_schema(
        summary="Publish the postmortem (responders; the incident must be resolved)",
        request=None,
        responses=PostmortemSerializer,
        operation_id="postmortem_publish",
    )
    def post(self, request: Request, incident_id: int) -> Response:
        postmortem = postmortems.publish(self.postmortem(), actor=request.user)
        return self.answer(postmortem)


class MarkdownRenderer(renderers.BaseRenderer):
    """Lets clients ask for ``Accept: text/markdown``; errors still carry the JSON error body."""

    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        if isinstance(data, str):
            return data.encode(self.charset)
        return renderers.JSONRenderer().render(data)


@extend_schema(parameters=[INCIDENT_ID])
class PostmortemMarkdownView(ApiMixin, IncidentPostmortemMixin, APIView):
    renderer_classes = [renderers.JSONRenderer, MarkdownRenderer]
    permission_classes = [IsAuthenticated, TeamRole]

    @extend_schema(
        summary="The postmortem as a Markdown document (a download)",
        responses={(200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR)},
        operation_id="postmortem_markdown",
    )
    def get(self, request: Request, incident_id: int) -> HttpResponse:
        from incidents.postmortems.views import markdown_response

        return markdown_response(self.postmortem())


# --- action items -------------------------------------------------------------------------------


class OwnerFilter(django_filters.CharFilter):
    """A user id, or ``me``."""

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if not value:
            return qs
        if value == "me":
            return qs.filter(owner=self.parent.request.user)
        if object_id(value) is None:
            raise serializers.ValidationError({"owner": ["a user id or “me”"]})
        return qs.filter(owner_id=object_id(value))


class ActionItemFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=ActionItemStatus.choices)
    owner = OwnerFilter(help_text="A user id, or `me`.")
    incident = IdFilter(field_name="postmortem__incident")
    team = TeamRefFilter(queryset=visible_teams, field_name="postmortem__team")

    class Meta:
        model = ActionItem
        fields: list[str] = []


class ActionItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Postmortem action items of the teams you can view, soonest due first."""

    model = ActionItem
    what = "action item"
    team_field = "postmortem__team"
    serializer_class = ActionItemSerializer
    filterset_class = ActionItemFilter
    required_actions = {
        "create": Action.RESPOND,
        "partial_update": Action.RESPOND,
        "destroy": Action.RESPOND,
    }

    def shape(self, queryset: QuerySet[ActionItem]) -> QuerySet[ActionItem]:
        return queryset.select_related("owner", "postmortem").order_by("status", "due_date", "id")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "today": timezone.now().date()}

    def _answer(self, item: ActionItem, code: int = status.HTTP_200_OK) -> Response:
        item = self.get_queryset().get(pk=item.pk)
        return Response(self.get_serializer(item).data, status=code)

    @extend_schema(
        summary="Add an action item to an incident's postmortem (responders)",
        request=ActionItemCreateSerializer,
        responses={201: ActionItemSerializer},
    )
    def create(self, request: Request) -> Response:
        data = validated(ActionItemCreateSerializer, request.data, self.get_serializer_context())
        postmortem = (
            scope(Postmortem.objects.all(), request.user, Action.VIEW)
            .filter(incident_id=data.pop("incident"))
            .first()
        )
        if postmortem is None:
            raise serializers.ValidationError(
                {"incident": ["no incident with a postmortem that you can view"]}
            )
        self.check_object_permissions(request, postmortem)
        data.pop("status", None)  # new items are open
        data["owner"] = _user(data.get("owner"))
        item = postmortems.add_action_item(postmortem, actor=request.user, **data)
        return self._answer(item, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change an action item: title, owner, due date, status, tracker (responders)",
        request=ActionItemWriteSerializer,
        responses=ActionItemSerializer,
    )
    def partial_update(self, request: Request, pk: int) -> Response:
        item = self.get_object()
        data = validated(ActionItemWriteSerializer, request.data, self.get_serializer_context())
        if "owner" in data:
            data["owner"] = _user(data["owner"])
        postmortems.update_action_item(item, actor=request.user, **data)
        return self._answer(item)

    @extend_schema(summary="Delete an action item (responders)")
    def destroy(self, request: Request, pk: int) -> Response:
        postmortems.delete_action_item(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


router.register("action-items", ActionItemViewSet, basename="api-action-item")

_AT = "incidents/<int:incident_id>/postmortem/"
urlpatterns = [
    *router.urls,
    path(_AT, PostmortemView.as_view(), name="api-postmortem"),
    path(f"{_AT}publish/", PostmortemPublishView.as_view(), name="api-postmortem-publish"),
    path(f"{_AT}markdown/", PostmortemMarkdownView.as_view(), name="api-postmortem-markdown"),
]
