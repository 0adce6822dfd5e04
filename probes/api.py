"""What the checks and heartbeats APIs share: configuration that belongs to a service.

Managers create, change and delete it; responders pause and resume it; everyone in the team
reads it. Writes go through the area's services module (as the admin's and the pages' do), and
every write answers with the object as a GET would show it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response

from monitoring.services import service_team_in_body
from tocsin.api.serializers import NoInputSerializer
from tocsin.api.viewsets import ManagedViewSet
from tocsin.models import Team


class ServiceConfigViewSet(ManagedViewSet):
    team_field = "service__team"

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    def permission_team(self) -> Team | None:
        return service_team_in_body(self.request) if self.action == "create" else None

    def answer(self, obj: Model, code: int = status.HTTP_200_OK) -> Response:
        """The object as read back (``shape``'s joins), after a write."""
        fresh = self.shape(self.model.objects.filter(pk=obj.pk)).get()
        return Response(self.get_serializer(fresh).data, status=code)

    def target(self) -> Any:
        """The object an action without input (pause, resume, run now) is about."""
        obj = self.get_object()
        NoInputSerializer(data=self.request.data).is_valid(raise_exception=True)
        return obj
