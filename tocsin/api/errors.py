"""One error shape for the whole API: ``{"error": {"code", "message", "fields"}}``.

Clients (scripts, the CLI, other services) should be able to handle every failure with one code
path: read ``error.code`` to branch, show ``error.message`` to a person, and map ``error.fields``
onto their inputs. DRF's own shapes vary by exception (``{"detail": …}``, ``{field: […]}``,
``[…]``), so everything is funnelled through :func:`exception_handler`, including the
``ServiceError`` that domain services raise, which views therefore never need to catch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from tocsin.services import ServiceError

# Keys under which DRF and Django put errors that belong to no single input.
NON_FIELD_KEYS = frozenset({api_settings.NON_FIELD_ERRORS_KEY, "__all__", ""})

# ServiceError codes that mean "this clashes with what already exists" rather than "bad input".
# "busy": the object is in the middle of something that allows one at a time (a backup plan's run).
CONFLICT_CODES = frozenset({"duplicate", "busy"})


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    """The body every API error response carries."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested serializer errors become dotted keys (``team.name``) so ``fields`` stays flat."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = str(key)
            name = prefix if key in NON_FIELD_KEYS else (f"{prefix}.{key}" if prefix else key)
            for field, messages in _flatten(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        for index, item in enumerate(detail):
            name = f"{prefix}.{index}" if prefix else str(index)
            for field, messages in _flatten(item, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        if detail:
            out[prefix] = [str(item) for item in detail]
    else:
        out[prefix] = [str(detail)]
    return out


def _split(detail: Any) -> tuple[list[str], dict[str, list[str]]]:
    """(messages about the request as a whole, messages per input field)."""
    general: list[str] = []
    fields: dict[str, list[str]] = {}
    for key, messages in _flatten(detail).items():
        if key in NON_FIELD_KEYS:
            general.extend(messages)
        else:
            fields[key] = messages
    return general, fields


def _summary(general: list[str], fields: dict[str, list[str]]) -> str:
    if general:
        return " ".join(general)
    if fields:
        return "; ".join(f"{field}: {messages[0]}" for field, messages in fields.items())
    return "invalid input"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (status, WWW-Authenticate, Retry-After, rollback) with our body shape."""
    if isinstance(exc, ServiceError):
        # A domain rule refused the operation: the input was wrong, or clashes with what exists.
        set_rollback()
        fields = {exc.field: [exc.message]} if exc.field else {}
        http_status = 409 if exc.code in CONFLICT_CODES else 400
        return Response(error_body(exc.code, exc.message, fields), status=http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's handler500 answers for it

    assert isinstance(exc, exceptions.APIException)  # what DRF's handler answers for
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"  # per-field codes vary; clients branch on the fields instead
    else:
        codes = exc.get_codes()  # e.g. "token_expired" where a view gave one
        code = codes if isinstance(codes, str) else exc.default_code
    general, fields = _split(exc.detail)
    response.data = error_body(code, _summary(general, fields), fields)
    return response


@contextmanager
def renamed_fields(mapping: dict[str, str]) -> Iterator[None]:
    """Report a ServiceError under the name the client used for the input.

    Services speak in domain terms (``user``); the API may have accepted that input as
    ``username`` or ``user_id``, and the error should point at what the client sent.
    """
    try:
        yield
    except ServiceError as exc:
        if exc.field in mapping:
            exc.field = mapping[exc.field]
        raise


class ErrorDetailSerializer(serializers.Serializer):
    """Schema only: documents the ``error`` object."""

    code = serializers.CharField(help_text="Machine-readable reason, e.g. `invalid`, `not_found`.")
    message = serializers.CharField(help_text="A sentence for people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per input field (dotted for nested input); empty when none applies.",
    )


class ErrorSerializer(serializers.Serializer):
    """Schema only: the body of every 4xx/5xx API response."""

    error = ErrorDetailSerializer()
