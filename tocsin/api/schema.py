"""OpenAPI schema and interactive docs, served entirely from this server.

- :class:`TocsinAutoSchema` documents the error responses each operation can give, all with
  the one error body, so generated clients know the shape of failures too.
- The Swagger UI and Redoc pages load their assets from drf-spectacular-sidecar's static files.
  Two defaults would still reach other hosts, and both are switched off here rather than in
  settings so the pages are correct however SPECTACULAR_SETTINGS evolve: Swagger UI's spec
  validator badge (sends the schema URL to validator.swagger.io) and the Google Fonts links in
  drf-spectacular's Redoc template.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from django.template import engines
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from tocsin.api.errors import ErrorSerializer
from tocsin.security.throttling import AnonRateThrottle

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: see `error.fields`.",
    "401": "Not authenticated, or the API token is invalid, expired or revoked.",
    "403": "Authenticated, but your role does not allow this.",
    "404": "No such object (or page of a list), or you may not see it.",
    "409": "Conflicts with existing data (e.g. a duplicate).",
    "429": "Too many requests (the rate limit, or sign-in protection after failed tokens); "
    "retry after the `Retry-After` header's seconds.",
}


TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$"


def _as_answered(field: Any, schema: Any) -> Any:
    """A field's schema corrected to what the API really reads and answers."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return schema
    if schema.get("format") == "time":
        # Local times of day ("09:00:00"); JSON Schema's "time" wants an offset, which a time in
        # the schedule's own zone does not have.
        schema.pop("format")
        schema["pattern"] = TIME_OF_DAY
    blank_link = isinstance(field, serializers.URLField) and (field.allow_blank or field.read_only)
    if schema.get("format") == "uri" and (blank_link or "anyOf" in schema):
        # An optional link is stored (and answered) as "" when there is none.
        schema.pop("format")
        schema["anyOf"] = [{"format": "uri"}, {"maxLength": 0}]
    return schema


class TocsinAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error responses an operation can produce.

    ``_get_response_bodies`` is a private hook of drf-spectacular; tests/tocsin/test_api_schema.py
    checks its output, so an upgrade that changes it fails loudly rather than silently.
    """

    def _error_statuses(self) -> list[str]:
        view = self.view
        codes = []
        # Any write may meet a malformed body or a domain rule (a deletion too: "still in use",
        # "already ended"); reads may meet bad filters, page or other query parameters.
        if self.method != "GET" or self._is_list_view() or self.get_override_parameters():
            codes.append("400")
        if not any(isinstance(p, AllowAny) for p in view.get_permissions()):
            codes.append("401")
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            codes.append("403")  # role, administrator-only, or CSRF for browser sessions
        if "{" in self.path or self._is_paginated_list():
            codes.append("404")  # a page past the last is not found either
        # Viewsets name their conflicting actions ("create"); plain views their methods ("post").
        operation = getattr(view, "action", None) or self.method.lower()
        if operation in getattr(view, "conflict_actions", ()):
            codes.append("409")
        if view.get_throttles():
            codes.append("429")
        return codes

    def _map_serializer_field(
        self, field: Any, direction: str, bypass_extensions: bool = False
    ) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        return _as_answered(field, schema)

    def _insert_field_validators(self, field: Any, schema: dict[str, Any]) -> None:
        super()._insert_field_validators(field, schema)  # URLValidator puts "format: uri" back
        _as_answered(field, schema)

    def _is_paginated_list(self) -> bool:
        return self._is_list_view() and getattr(self.view, "pagination_class", None) is not None

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self._error_statuses():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses


class DocsThrottle(AnonRateThrottle):
    """Anonymous visitors may read the schema and docs, at the configured "anon" rate."""


class PublicDocsMixin:
    """Readable without an account (the schema describes the code, which is public), throttled
    for anonymous callers, and failing with the API's JSON error body rather than in the
    YAML or HTML these views otherwise render."""

    permission_classes = [AllowAny]
    throttle_classes = [DocsThrottle]
    request: Request

    def handle_exception(self, exc: Exception) -> Response:
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)  # type: ignore[misc]


class SchemaView(PublicDocsMixin, SpectacularAPIView):
    pass


class SwaggerView(PublicDocsMixin, SpectacularSwaggerView):
    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        ui_settings = spectacular_settings.SWAGGER_UI_SETTINGS
        if isinstance(ui_settings, dict):
            response.data["settings"] = json.dumps({**ui_settings, "validatorUrl": None})
        return response


REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <title>{{ title }}</title>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <div id="redoc-container"></div>
    <script src="{{ redoc_standalone }}"></script>
    <script>
      Redoc.init({{ schema_url_json|safe }}, {{ settings|safe }},
                 document.getElementById("redoc-container"));
    </script>
  </body>
</html>
"""


class RedocView(PublicDocsMixin, SpectacularRedocView):
    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        page = engines["django"].from_string(REDOC_PAGE)
        context = {
            "title": self.title,
            "redoc_standalone": self._redoc_standalone(),
            # A JS string literal; "<" escaped so no query value can close the script element.
            "schema_url_json": json.dumps(self._get_schema_url(request)).replace("<", "\\u003c"),
            "settings": self._dump(spectacular_settings.REDOC_UI_SETTINGS) or "{}",
        }
        return HttpResponse(page.render(context, request))
