"""Base viewsets: every API object is looked up the same way, in one place.

A viewset declares what it serves and who may see it; the base does the rest:

    class SilenceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
        model = Silence
        what = "silence"                      # "no such silence, or you may not see it"
        required_actions = {"create": Action.RESPOND, "destroy": Action.RESPOND}

        def shape(self, queryset):            # joins, annotations, ordering
            return queryset.select_related("created_by").order_by("-starts_at", "-id")

- **Integer ids only.** The router only routes digits, and :meth:`ScopedViewSet.get_object`
  treats an id no bigint column can hold like a missing object: anything else in the path is
  the API's JSON 404, never a 500 from a lookup on a bad value.
- **Scope declared once.** :class:`TeamScopedViewSet` narrows to the teams the caller may view
  (``team_field`` names the path to the team), so an object of another team is a 404 exactly
  like one that does not exist; :class:`OwnedViewSet` narrows to the caller's own objects.
- **Roles declared once.** ``required_actions`` (viewset action → :class:`Action`) is read by
  :class:`tocsin.api.permissions.TeamRole` for the object's team: 403 naming the role needed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from rest_framework import mixins, viewsets
from rest_framework.permissions import IsAuthenticated

from tocsin.api.lookups import INT_LOOKUP, not_found, object_id
from tocsin.api.permissions import TeamRole
from tocsin.api.schema import TocsinAutoSchema
from tocsin.permissions import Action, scope


class ApiMixin:
    """What every Tocsin API view shares: authentication required, error-aware schema."""

    permission_classes = [IsAuthenticated]
    schema = TocsinAutoSchema()
    # Views speak in PATCH (partial update); PUT is not offered anywhere.
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]


# Team configuration: managers change it, everyone in the team reads it.
MANAGER_WRITES: dict[str, Action] = {
    "create": Action.MANAGE,
    "partial_update": Action.MANAGE,
    "destroy": Action.MANAGE,
}


class ScopedViewSet(ApiMixin, viewsets.GenericViewSet):
    """Objects of ``model`` looked up by integer id among those :meth:`visible` to the caller."""

    model: ClassVar[type[Model]]
    what: ClassVar[str] = "object"
    lookup_value_regex = INT_LOOKUP
    required_actions: ClassVar[dict[str, Action]] = {}

    def visible(self, queryset: QuerySet) -> QuerySet:
        """``queryset`` narrowed to what the caller may see at all."""
        raise NotImplementedError

    def shape(self, queryset: QuerySet) -> QuerySet:
        """Joins, annotations, ordering and query-parameter narrowing of the visible objects."""
        return queryset

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return self.model.objects.none()
        return self.shape(self.visible(self.model.objects.all()))

    def get_object(self) -> Any:
        pk = object_id(self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        obj = None if pk is None else self.get_queryset().filter(pk=pk).first()
        if obj is None:
            raise not_found(self.what)
        self.check_object_permissions(self.request, obj)
        return obj


class TeamScopedViewSet(ScopedViewSet):
    """Objects of the teams the caller may view; their role there decides the rest (403)."""

    permission_classes = [IsAuthenticated, TeamRole]
    team_field: ClassVar[str] = "team"  # the path from the object to its team, for filters

    def visible(self, queryset: QuerySet) -> QuerySet:
        return scope(queryset, self.request.user, Action.VIEW, self.team_field)


class ManagedViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Team configuration that managers change and everyone in the team reads."""

    required_actions = MANAGER_WRITES

    def valid_input(self, serializer_class: type, instance: Any = None) -> dict[str, Any]:
        """The request's input for a create, or (given ``instance``) a partial change: 400
        with field errors when it does not hold."""
        serializer = serializer_class(
            instance,
            data=self.request.data,
            partial=instance is not None,
            context=self.get_serializer_context(),
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class OwnedViewSet(ScopedViewSet):
    """Objects that belong to the calling user alone (nobody else sees them, not even admins)."""

    owner_field: ClassVar[str] = "user"

    def visible(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(**{self.owner_field: self.request.user})
