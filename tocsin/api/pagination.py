"""Pagination: page numbers for small lists, cursors for the event log.

DRF quietly ignores a bad ``page_size`` and answers 404 to ``?page=abc``; both hide client bugs,
so here they are 400s naming the parameter, like any other bad input.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

MAX_PAGE_SIZE = 500


class StrictPageSizeMixin:
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_size: int | None

    def get_page_size(self, request: Request) -> int | None:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        if not raw.isdigit() or int(raw) < 1:
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
        if str(number) not in self.last_page_strings and not str(number).isdigit():
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
