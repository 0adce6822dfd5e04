"""Query filters for list endpoints (django-filter).

Bad values answer 400 naming the parameter, and so do unknown parameters: a typo such as
``?tema=3`` must not silently return every team's events.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorDict, ErrorList
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from tocsin.api.lookups import MAX_ID, object_id, visible_teams
from tocsin.models import Event, Team

# Query parameters that belong to pagination or rendering, not to the filterset.
NON_FILTER_PARAMS = frozenset({"page", "page_size", "cursor", "format"})


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet that refuses query parameters it does not know."""

    def unknown_params(self) -> list[str]:
        return sorted(set(self.data) - set(self.filters) - NON_FILTER_PARAMS)

    def is_valid(self) -> bool:
        return super().is_valid() and not self.unknown_params()

    @property
    def errors(self) -> ErrorDict:
        errors = ErrorDict(self.form.errors)
        known = ", ".join(sorted(self.filters))
        for name in self.unknown_params():
            errors[name] = ErrorList(
                [ValidationError(f"unknown filter; use one of: {known}", code="unknown")]
            )
        return errors


class TeamRefField(forms.ModelChoiceField):
    """A team given by id or by slug, among the teams the caller may view.

    Teams the caller may not view are reported exactly like teams that do not exist.
    """

    default_error_messages = {
        "invalid_choice": "no team with this id or slug that you can view",
    }

    def to_python(self, value: Any) -> Team | None:
        if value in self.empty_values:
            return None
        value = str(value).strip()
        team = None
        if object_id(value) is not None:
            team = self.queryset.filter(pk=object_id(value)).first()
        if team is None:
            team = self.queryset.filter(slug=value).first()
        if team is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return team


@extend_schema_field(OpenApiTypes.STR)
class TeamRefFilter(django_filters.ModelChoiceFilter):
    field_class = TeamRefField


@extend_schema_field(OpenApiTypes.INT)
class IntegerFilter(django_filters.Filter):
    """Whole numbers only (django-filter's NumberFilter would accept ``1.5``), within what a
    bigint column holds: a larger one is a 400 naming the parameter, not a crash in the query."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", -MAX_ID - 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilter(IntegerFilter):
    """An object's id (a foreign key, usually): 1 … MAX_ID."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        super().__init__(*args, **kwargs)


class EventFilterForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "must be later than since")
        return data


class EventFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams)
    kind = django_filters.CharFilter(help_text="Exact event kind, e.g. `alert.firing`.")
    kind_prefix = django_filters.CharFilter(
        field_name="kind",
        lookup_expr="startswith",
        help_text="Kinds starting with this, e.g. `team.` for every team event.",
    )
    subject_type = django_filters.CharFilter(help_text="e.g. `team`, `incident`, `alert`.")
    subject_id = django_filters.CharFilter()
    actor = IntegerFilter(field_name="actor", min_value=1)
    after = IntegerFilter(field_name="id", lookup_expr="gt", min_value=0)
    since = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        help_text="ISO 8601 time; events at or after it.",
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="lt",
        help_text="ISO 8601 time; events strictly before it.",
    )

    class Meta:
        model = Event
        fields: list[str] = []
        form = EventFilterForm
