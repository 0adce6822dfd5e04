"""Status pages under /api/v1/: pages, component groups, components and public updates.

Members of a team read its pages (the same things the editor shows); managers create, change
and delete pages, groups and components (a component's ``manual_status``/``manual_until``
override the automatic status; null clears it); responders post public updates. Writes go
through the services, which validate and record the events.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from incidents.lifecycle.models import Incident
from incidents.statuspages import publishing, services
from incidents.statuspages.links import page_url
from incidents.statuspages.models import (
    Component,
    ComponentGroup,
    ComponentStatus,
    PublicImpact,
    PublicIncident,
    PublicIncidentStatus,
    PublicUpdate,
    StatusPage,
)
from monitoring.models import Service
from tocsin.api.filters import IdFilter, StrictFilterSet, TeamRefField, TeamRefFilter
from tocsin.api.lookups import visible_teams
from tocsin.api.serializers import IdField, StrictInputMixin, TeamRefSerializer
from tocsin.api.viewsets import ManagedViewSet, TeamScopedViewSet
from tocsin.permissions import Action, scope
from tocsin.services import ServiceError

router = SimpleRouter()


def _visible(model: Any, request: Any, pk: int | None, field: str, path: str = "team") -> Any:
    if pk is None:
        return None
    found = scope(model.objects.all(), request.user, Action.VIEW, path).filter(pk=pk).first()
    if found is None:
        raise serializers.ValidationError({field: ["no such object that you can view"]})
    return found


# --- pages --------------------------------------------------------------------------------------


class PageSerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    services = serializers.SerializerMethodField()
    public_url = serializers.SerializerMethodField()
    has_logo = serializers.SerializerMethodField()

    class Meta:
        model = StatusPage
        fields = [
            "id",
            "team",
            *services.PAGE_FIELDS,
            "services",
            "public_url",
            "has_logo",
            "published_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_services(self, page: StatusPage) -> list[int]:
        return sorted(s.pk for s in page.services.all())

    def get_public_url(self, page: StatusPage) -> str:
        return page_url(page)

    def get_has_logo(self, page: StatusPage) -> bool:
        return bool(page.logo_type)


class PageWriteSerializer(StrictInputMixin, serializers.Serializer):
    title = serializers.CharField(max_length=100, required=False)
    slug = serializers.CharField(max_length=60, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    published = serializers.BooleanField(required=False)
    logo_url = serializers.CharField(required=False, allow_blank=True, max_length=200)
    brand_colour = serializers.CharField(required=False, max_length=7)
    header_colour = serializers.CharField(required=False, max_length=7)
    custom_domain = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=253
    )
    time_zone = serializers.CharField(required=False, max_length=64)
    support_url = serializers.CharField(required=False, allow_blank=True, max_length=200)
    services = serializers.ListField(child=IdField(), required=False, max_length=500)

    def validate_services(self, value: list[int]) -> list[Service]:
        request = self.context["request"]
        found = list(scope(Service.objects.filter(pk__in=value), request.user, Action.VIEW))
        if len(found) != len(set(value)):
            raise serializers.ValidationError("no such service that you can view")
        return found


class PageCreateSerializer(PageWriteSerializer):
    team = serializers.CharField(help_text="Team id or slug; you need the manager role in it.")
    title = serializers.CharField(max_length=100)
    slug = serializers.CharField(max_length=60)

    def validate_team(self, value: str) -> Any:
        field = TeamRefField(queryset=visible_teams(self.context.get("request")))
        try:
            return field.clean(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class PageFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams)
    published = django_filters.BooleanFilter()

    class Meta:
        model = StatusPage
        fields: list[str] = []


class StatusPageViewSet(ManagedViewSet):
    """Status pages of your teams (private until ``published``)."""

    model = StatusPage
    what = "status page"
    serializer_class = PageSerializer
    filterset_class = PageFilter

    def shape(self, queryset: QuerySet[StatusPage]) -> QuerySet[StatusPage]:
        return (
            queryset.select_related("team")
            .prefetch_related("services")
            .defer("logo")
            .order_by("team__name", "title", "id")
        )

    @extend_schema(request=PageCreateSerializer, responses={201: PageSerializer})
    def create(self, request: Request) -> Response:
        data = self.valid_input(PageCreateSerializer)
        team = data.pop("team")
        self.check_object_permissions(request, team)
        chosen = data.pop("services", None)
        page = services.save_page(
            StatusPage(team=team), actor=request.user, services=chosen, **data
        )
        return Response(PageSerializer(page).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PageWriteSerializer, responses=PageSerializer)
    def partial_update(self, request: Request, pk: int) -> Response:
        page = self.get_object()
        data = self.valid_input(PageWriteSerializer, page)
        chosen = data.pop("services", None)
        services.save_page(page, actor=request.user, services=chosen, **data)
        return Response(PageSerializer(page).data)

    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_page(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- groups and components ----------------------------------------------------------------------


class GroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = ComponentGroup
        fields = ["id", "page", "name", "description", "position", "created_at", "updated_at"]
        read_only_fields = fields


class GroupWriteSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    position = serializers.IntegerField(required=False, min_value=0, max_value=100_000)


class GroupCreateSerializer(GroupWriteSerializer):
    page = IdField()
    name = serializers.CharField(max_length=100)


# "page" is the pagination's parameter: the filters say "status_page".
class GroupFilter(StrictFilterSet):
    status_page = IdFilter(field_name="page")

    class Meta:
        model = ComponentGroup
        fields: list[str] = []


class ComponentFilter(StrictFilterSet):
    status_page = IdFilter(field_name="page")

    class Meta:
        model = Component
        fields: list[str] = []


class ComponentGroupViewSet(ManagedViewSet):
    """Groups of a page's components."""

    model = ComponentGroup
    what = "component group"
    team_field = "page__team"
    serializer_class = GroupSerializer
    filterset_class = GroupFilter

    def shape(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("page").order_by("page_id", "position", "id")

    @extend_schema(request=GroupCreateSerializer, responses={201: GroupSerializer})
    def create(self, request: Request) -> Response:
        data = self.valid_input(GroupCreateSerializer)
        page = _visible(StatusPage, request, data.pop("page"), "page")
        self.check_object_permissions(request, page)
        group = services.save_group(ComponentGroup(page=page), actor=request.user, **data)
        return Response(GroupSerializer(group).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=GroupWriteSerializer, responses=GroupSerializer)
    def partial_update(self, request: Request, pk: int) -> Response:
        group = self.get_object()
        services.save_group(
            group, actor=request.user, **self.valid_input(GroupWriteSerializer, group)
        )
        return Response(GroupSerializer(group).data)

    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_group(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ComponentSerializer(serializers.ModelSerializer):
    manual_status = serializers.SerializerMethodField(
        help_text="The status set by hand; null while automatic."
    )

    class Meta:
        model = Component
        fields = [
            "id",
            "page",
            "group",
            "name",
            "description",
            "position",
            "service",
            "source_kind",
            "target_id",
            "show_uptime",
            "manual_status",
            "manual_until",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=ComponentStatus.choices, allow_null=True))
    def get_manual_status(self, component: Component) -> str | None:
        return component.manual_status or None


class ComponentWriteSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    position = serializers.IntegerField(required=False, min_value=0, max_value=100_000)
    group = IdField(required=False, allow_null=True)
    service = IdField(required=False, allow_null=True)
    source_kind = serializers.CharField(required=False, allow_blank=True, max_length=20)
    target_id = IdField(required=False, allow_null=True)
    show_uptime = serializers.BooleanField(required=False)
    manual_status = serializers.ChoiceField(
        choices=ComponentStatus.choices,
        required=False,
        allow_null=True,
        help_text="Override the automatic status; null goes back to automatic.",
    )
    manual_until = serializers.DateTimeField(required=False, allow_null=True)


class ComponentCreateSerializer(ComponentWriteSerializer):
    page = IdField()
    name = serializers.CharField(max_length=100)


class ComponentViewSet(ManagedViewSet):
    """A page's components and what they follow (a service, a probe check)."""

    model = Component
    what = "component"
    team_field = "page__team"
    serializer_class = ComponentSerializer
    filterset_class = ComponentFilter

    def shape(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("page").order_by("page_id", "position", "id")

    def _save(self, request: Request, component: Component, data: dict[str, Any]) -> Component:
        manual = data.pop("manual_status", ...)
        until = data.pop("manual_until", None)
        if "group" in data:
            data["group"] = _visible(ComponentGroup, request, data["group"], "group", "page__team")
        if "service" in data:
            data["service"] = _visible(Service, request, data["service"], "service")
        # All or nothing: a refused manual status must not leave the component saved (a
        # client retrying a 400 would otherwise create it twice).
        with transaction.atomic():
            component = services.save_component(component, actor=request.user, **data)
            if manual is None:
                services.clear_manual_status(component, actor=request.user)
            elif manual is not ...:
                try:
                    services.set_manual_status(component, manual, until=until, actor=request.user)
                except ServiceError as error:  # named as the API's fields
                    field = {"until": "manual_until", "status": "manual_status"}.get(
                        error.field or "", error.field
                    )
                    raise ServiceError(error.message, field, error.code) from None
        return component

    @extend_schema(request=ComponentCreateSerializer, responses={201: ComponentSerializer})
    def create(self, request: Request) -> Response:
        data = self.valid_input(ComponentCreateSerializer)
        page = _visible(StatusPage, request, data.pop("page"), "page")
        self.check_object_permissions(request, page)
        component = self._save(request, Component(page=page), data)
        return Response(ComponentSerializer(component).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ComponentWriteSerializer, responses=ComponentSerializer)
    def partial_update(self, request: Request, pk: int) -> Response:
        component = self.get_object()
        data = self.valid_input(ComponentWriteSerializer, component)
        return Response(ComponentSerializer(self._save(request, component, data)).data)

    def destroy(self, request: Request, pk: int) -> Response:
        services.delete_component(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- public updates -----------------------------------------------------------------------------


class PublicIncidentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = PublicIncident
        fields = [
            "id",
            "page",
            "incident",
            "title",
            "status",
            "impact",
            "started_at",
            "resolved_at",
        ]
        read_only_fields = fields


class UpdateSerializer(serializers.ModelSerializer):
    public_incident = PublicIncidentRefSerializer(read_only=True)

    class Meta:
        model = PublicUpdate
        fields = ["id", "public_incident", "status", "body", "created_at", "created_by"]
        read_only_fields = fields


class UpdateCreateSerializer(StrictInputMixin, serializers.Serializer):
    page = IdField()
    status = serializers.ChoiceField(choices=PublicIncidentStatus.choices)
    body = serializers.CharField(max_length=publishing.MAX_BODY)
    incident = IdField(required=False, help_text="The internal incident this is about.")
    public_incident = IdField(required=False, help_text="Continue this public incident.")
    title = serializers.CharField(required=False, max_length=publishing.MAX_TITLE)
    impact = serializers.ChoiceField(choices=PublicImpact.choices, required=False)
    components = serializers.ListField(child=IdField(), required=False, max_length=500)


class UpdateFilter(StrictFilterSet):
    status_page = IdFilter(field_name="public_incident__page")
    incident = IdFilter(field_name="public_incident__incident")

    class Meta:
        model = PublicUpdate
        fields: list[str] = []


class PublicUpdateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Public updates: read by the team, posted by responders (the first on an incident opens
    its public incident and needs a ``title``)."""

    model = PublicUpdate
    what = "public update"
    team_field = "public_incident__page__team"
    serializer_class = UpdateSerializer
    filterset_class = UpdateFilter
    required_actions = {"create": Action.RESPOND}

    def shape(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("public_incident").order_by("-created_at", "-id")

    @extend_schema(request=UpdateCreateSerializer, responses={201: UpdateSerializer})
    def create(self, request: Request) -> Response:
        serializer = UpdateCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        page = _visible(StatusPage, request, data.pop("page"), "page")
        self.check_object_permissions(request, page)
        incident = _visible(Incident, request, data.pop("incident", None), "incident")
        public = _visible(
            PublicIncident,
            request,
            data.pop("public_incident", None),
            "public_incident",
            "page__team",
        )
        update = publishing.post_update(
            page,
            actor=request.user,
            incident=incident,
            public_incident=public,
            component_ids=data.pop("components", None),
            **data,
        )
        return Response(UpdateSerializer(update).data, status=status.HTTP_201_CREATED)


router.register("status-pages", StatusPageViewSet, basename="api-status-page")
router.register("status-component-groups", ComponentGroupViewSet, basename="api-status-group")
router.register("status-components", ComponentViewSet, basename="api-status-component")
router.register("status-updates", PublicUpdateViewSet, basename="api-status-update")
