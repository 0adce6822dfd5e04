"""Pagination: page numbers for small lists, cursors for the event log, keyset pages for the
lists that grow without bound (alerts, incidents).

DRF quietly ignores a bad ``page_size`` and answers 404 to ``?page=abc``; both hide client bugs,
so here they are 400s naming the parameter, like any other bad input.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param

from tocsin.keyset import COUNT_CAP, BadCursor, Cursor, capped_count, keyset_page

MAX_PAGE_SIZE = 500
# How deep ``page=N`` reaches in the keyset-paged lists; deeper pages are cursor links.
PAGE_NUMBER_ROWS = 10_000


class StrictPageSizeMixin:
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_size: int | None

    def get_page_size(self, request: Request) -> int | None:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        if not raw.isdecimal() or int(raw) < 1:
            raise ValidationError(
                {self.page_size_query_param: [f"a whole number from 1 to {self.max_page_size}"]}
            )
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        """The parameters with the bounds they are checked against, so clients know them."""
        parameters = super().get_schema_operation_parameters(view)  # type: ignore[misc]
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            elif parameter["name"] == "page":
                parameter["schema"].update(minimum=1)
        return parameters


class PageNumberPagination(StrictPageSizeMixin, pagination.PageNumberPagination):
    """For lists that stay small (teams, members, tokens): totals and page links."""

    def get_page_number(self, request: Request, paginator: Paginator) -> Any:
        number = super().get_page_number(request, paginator)
        if str(number) not in self.last_page_strings and not str(number).isdecimal():
            raise ValidationError({self.page_query_param: ["a whole number, or 'last'"]})
        return number


class EventCursorPagination(StrictPageSizeMixin, pagination.CursorPagination):
    """The event log only grows and is read newest first: a cursor never skips or repeats an
    event when new ones arrive between pages, and costs no COUNT over a large table."""

    ordering = "-id"

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: ["invalid cursor; follow the next/previous links"]}
            ) from None


class KeysetPagination(StrictPageSizeMixin, pagination.BasePagination):
    """For lists that grow without bound (alerts, incidents): newest first by (``at_field``,
    id), with ``next``/``previous`` links that carry a keyset cursor (``tocsin.keyset``), so
    page 10,000 costs what page 1 costs and rows arriving meanwhile shift nothing.

    The answer keeps the page-number shape (``count``, ``next``, ``previous``, ``results``)
    plus ``count_exact``: ``count`` is counted up to ``COUNT_CAP`` and ``count_exact`` is false
    when there are more. ``page=N`` still works within the first ``PAGE_NUMBER_ROWS`` rows
    (older clients; an offset that deep is still cheap); past them, follow ``next``.
    """

    at_field = "created_at"
    page_size = api_settings.PAGE_SIZE
    cursor_query_param = "cursor"
    page_query_param = "page"

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: Any = None
    ) -> list[Any] | None:
        self.request = request
        size = self.get_page_size(request) or MAX_PAGE_SIZE
        cursor = self._cursor(request)
        number = self._page_number(request, size)
        if cursor is not None and number is not None:
            raise ValidationError({self.page_query_param: ["give either a page or a cursor"]})
        if number is None:
            page = keyset_page(queryset, self.at_field, size, cursor)
            rows, self.next_cursor, self.previous_link = page.rows, page.next, None
            if page.previous is not None:
                self.previous_link = self._link(page.previous.encode())
        else:
            offset = (number - 1) * size
            ordered = queryset.order_by(f"-{self.at_field}", "-id")
            rows = list(ordered[offset : offset + size + 1])
            if not rows and number > 1:
                raise NotFound("no such page: past the last")
            more, rows = len(rows) > size, rows[:size]
            self.next_cursor = (
                Cursor(getattr(rows[-1], self.at_field), rows[-1].pk) if more else None
            )
            self.previous_link = None
            if number > 1:
                url = remove_query_param(request.build_absolute_uri(), self.cursor_query_param)
                self.previous_link = replace_query_param(url, self.page_query_param, number - 1)
        self.count, self.count_exact = capped_count(queryset)
        return rows

    def _cursor(self, request: Request) -> Cursor | None:
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:
            return None
        try:
            return Cursor.decode(raw)
        except BadCursor:
            raise ValidationError(
                {self.cursor_query_param: ["invalid cursor; follow the next/previous links"]}
            ) from None

    def _page_number(self, request: Request, size: int) -> int | None:
        raw = request.query_params.get(self.page_query_param)
        if raw is None or raw == "":
            return None
        if not raw.isdecimal() or int(raw) < 1:
            raise ValidationError({self.page_query_param: ["a whole number from 1"]})
        number = int(raw)
        if (number - 1) * size >= PAGE_NUMBER_ROWS:
            raise ValidationError(
                {
                    self.page_query_param: [
                        f"page numbers reach the first {PAGE_NUMBER_ROWS:,} rows; "
                        "past them, follow the next links (a cursor)"
                    ]
                }
            )
        return number

    def _link(self, token: str) -> str:
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        return replace_query_param(url, self.cursor_query_param, token)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "count": self.count,
                "count_exact": self.count_exact,
                "next": self._link(self.next_cursor.encode()) if self.next_cursor else None,
                "previous": self.previous_link,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["count", "count_exact", "next", "previous", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "description": f"Matches, counted up to {COUNT_CAP}.",
                },
                "count_exact": {
                    "type": "boolean",
                    "description": f"False when more than {COUNT_CAP} match.",
                },
                "next": {**link, "description": "Older rows (a cursor link)."},
                "previous": {**link, "description": "Newer rows."},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where a page starts: take it from a next/previous link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": f"A page number, within the first {PAGE_NUMBER_ROWS} rows.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": "Rows per page.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
