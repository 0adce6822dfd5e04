"""REST API views: thin callers of ``tocsin.services`` behind ``tocsin.permissions``.

Every view looks objects up in a queryset already narrowed to what the caller may view, so an
object the caller may not see answers 404 whether or not it exists. What a member's role
allows is checked by ``tocsin.api.permissions.TeamRole`` (403). Domain refusals are raised by
the services as ServiceError and shaped into error responses by ``tocsin.api.errors``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from tocsin import services
from tocsin.api import serializers as s
from tocsin.api.errors import renamed_fields
from tocsin.api.filters import EventFilter
from tocsin.api.lookups import not_found, validated
from tocsin.api.pagination import EventCursorPagination
from tocsin.api.permissions import IsAdministrator, TeamRole
from tocsin.api.viewsets import ApiMixin, OwnedViewSet, ScopedViewSet, TeamScopedViewSet
from tocsin.models import ApiToken, Event, Membership, Team
from tocsin.permissions import Action, teams_for

# --- Me -----------------------------------------------------------------------------------------


class MeView(ApiMixin, APIView):
    """Who the API thinks you are: account, teams with your role, and the token in use."""

    @extend_schema(responses=s.MeSerializer, operation_id="me")
    def get(self, request: Request) -> Response:
        return Response(s.MeSerializer(request.user, context={"request": request}).data)


# --- Teams --------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Teams you can view"),
    create=extend_schema(summary="Create a team (administrators only)"),
    retrieve=extend_schema(summary="One team"),
    partial_update=extend_schema(summary="Rename or describe a team (managers)"),
)
class TeamViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    TeamScopedViewSet,
):
    """Teams. Not deletable: their event history is kept for good (events PROTECT teams)."""

    model = Team
    what = "team"
    team_field = "pk"  # a team is its own team
    serializer_class = s.TeamSerializer
    required_actions = {"partial_update": Action.MANAGE}
    conflict_actions = {"create", "partial_update"}  # duplicate names (409)

    def get_permissions(self) -> list[Any]:
        # By method, not self.action, so OPTIONS reports "may I create?" truthfully.
        if self.request.method == "POST":
            return [IsAuthenticated(), IsAdministrator()]
        return super().get_permissions()

    def shape(self, queryset: QuerySet[Team]) -> QuerySet[Team]:
        return queryset.order_by("name")

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.create_team(
            serializer.validated_data["name"],
            description=serializer.validated_data.get("description", ""),
            actor=self.request.user,
        )

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.update_team(
            serializer.instance, actor=self.request.user, **serializer.validated_data
        )


class TeamScopedMixin:
    """For endpoints under /teams/{team_id}/: the team, or 404 for people outside it."""

    request: Request
    kwargs: dict[str, Any]

    @cached_property
    def team(self) -> Team:
        team = teams_for(self.request.user, Action.VIEW).filter(pk=self.kwargs["team_id"]).first()
        if team is None:
            raise not_found("team")
        return team

    def permission_team(self) -> Team:
        return self.team


@extend_schema_view(
    list=extend_schema(summary="Members of a team"),
    retrieve=extend_schema(summary="One membership"),
    create=extend_schema(
        summary="Add a member (managers)",
        request=s.MembershipCreateSerializer,
        responses={201: s.MembershipSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a member's role (managers)",
        request=s.MembershipUpdateSerializer,
        responses=s.MembershipSerializer,
    ),
    destroy=extend_schema(summary="Remove a member (managers)"),
)
class MembershipViewSet(
    TeamScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    TeamScopedViewSet,
):
    """A team's memberships. Every change goes through the services, which record an event
    and refuse to leave a team without a manager."""

    model = Membership
    what = "membership"
    serializer_class = s.MembershipSerializer
    required_actions = {
        "create": Action.MANAGE,
        "partial_update": Action.MANAGE,
        "destroy": Action.MANAGE,
    }
    conflict_actions = {"create"}  # adding someone who is already a member (409)

    def visible(self, queryset: QuerySet[Membership]) -> QuerySet[Membership]:
        return queryset.filter(team=self.team)  # the team in the path, already checked

    def shape(self, queryset: QuerySet[Membership]) -> QuerySet[Membership]:
        return queryset.select_related("user", "team").order_by("user__username")

    def create(self, request: Request, team_id: int) -> Response:
        data = self._valid(s.MembershipCreateSerializer, request.data)
        with renamed_fields({"user": data["user_field"]}):
            membership = services.add_member(
                self.team, data["user"], data["role"], actor=request.user
            )
        return Response(s.MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, team_id: int, pk: int) -> Response:
        membership = self.get_object()
        data = self._valid(s.MembershipUpdateSerializer, request.data)
        membership = services.change_role(membership, data["role"], actor=request.user)
        return Response(s.MembershipSerializer(membership).data)

    def destroy(self, request: Request, team_id: int, pk: int) -> Response:
        services.remove_member(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _valid(self, serializer_class: type[BaseSerializer], data: Any) -> dict[str, Any]:
        return validated(serializer_class, data, self.get_serializer_context())


class TestEventView(ApiMixin, TeamScopedMixin, APIView):
    """Ask a worker to write a ``team.test`` event: proves worker → event log → live pages.

    202 because the event does not exist yet; watch ``/api/v1/events/?kind=team.test`` or the
    live stream for it.
    """

    permission_classes = [IsAuthenticated, TeamRole]
    required_actions = {"post": Action.RESPOND}

    @extend_schema(
        request=None,
        responses={202: s.TestEventAcceptedSerializer},
        summary="Send a test event through a worker (responders)",
        operation_id="teams_test_event",
    )
    def post(self, request: Request, team_id: int) -> Response:
        given = {} if request.data is None else request.data  # a JSON null is "no input" too
        s.NoInputSerializer(data=given).is_valid(raise_exception=True)
        task_id = services.request_test_event(self.team, actor=request.user)
        accepted = {"task_id": task_id, "team": self.team.pk, "kind": "team.test"}
        return Response(
            s.TestEventAcceptedSerializer(accepted).data, status=status.HTTP_202_ACCEPTED
        )


# --- Events -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Events you can see, newest first",
        parameters=[
            # Typed by hand: these filters' custom fields hide their help texts from the
            # schema generator.
            OpenApiParameter("team", str, description="Team id or slug (a team you can view)."),
            OpenApiParameter("actor", int, description="The acting user's id."),
            OpenApiParameter(
                "after", int, description="Only events with a greater id (catch up from one)."
            ),
        ],
    ),
    retrieve=extend_schema(summary="One event"),
)
class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """The event log, read-only, in the same JSON shape as the live WebSocket."""

    model = Event
    what = "event"
    serializer_class = s.EventSerializer
    filterset_class = EventFilter
    pagination_class = EventCursorPagination

    def visible(self, queryset: QuerySet[Event]) -> QuerySet[Event]:
        return queryset.visible_to(self.request.user)

    def shape(self, queryset: QuerySet[Event]) -> QuerySet[Event]:
        return queryset.select_related("team").order_by("-id")


# --- Tokens -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Your API tokens"),
    retrieve=extend_schema(summary="One of your API tokens"),
    create=extend_schema(
        summary="Create an API token (its secret is shown once)",
        request=s.ApiTokenSerializer,
        responses={201: s.NewApiTokenSerializer},
    ),
    destroy=extend_schema(
        summary="Revoke an API token",
        description="The token stops working at once; it stays listed, with `revoked_at` set.",
    ),
)
class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    OwnedViewSet,
):
    """The caller's own API tokens; nobody, administrators included, sees anyone else's here."""

    model = ApiToken
    what = "token"
    serializer_class = s.ApiTokenSerializer

    def shape(self, queryset: QuerySet[ApiToken]) -> QuerySet[ApiToken]:
        return queryset.order_by("-created_at", "-id")

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, raw = services.issue_token(
            request.user,
            serializer.validated_data["name"],
            expires_at=serializer.validated_data.get("expires_at"),
        )
        body = s.NewApiTokenSerializer(token, context={"raw_token": raw}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        services.revoke_token(instance, actor=self.request.user)
