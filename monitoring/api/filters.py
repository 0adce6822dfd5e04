"""Query filters of the monitoring API: each list declares its parameters here, so the schema
lists them and a bad value is a 400 naming the parameter (``tocsin.api.filters``)."""

from __future__ import annotations

import re
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from monitoring.models import (
    Alert,
    AlertRule,
    AlertStatus,
    InhibitionRule,
    Integration,
    IntegrationKind,
    MaintenanceWindow,
    MetricKind,
    MetricSeries,
    Service,
    Severity,
    Silence,
)
from tocsin.api.filters import IdFilter, StrictFilterSet, TeamRefFilter
from tocsin.api.lookups import visible_teams

# --- Fields -------------------------------------------------------------------------------------


class StrictBooleanField(forms.Field):
    """``true``/``false`` (or 1/0, yes/no); anything else is a 400, not an ignored filter."""

    TRUE = frozenset({"true", "1", "yes"})
    FALSE = frozenset({"false", "0", "no"})

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValidationError("true or false", code="invalid")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class LabelMatchField(forms.Field):
    """Repeatable ``label=name=value``: every given label must have exactly that value."""

    widget = forms.MultipleHiddenInput  # reads every occurrence of the parameter

    def to_python(self, value: Any) -> list[tuple[str, str]]:
        matches = []
        for raw in value or []:
            name, sep, wanted = str(raw).partition("=")
            name = name.strip()
            if not sep or not LABEL_NAME.match(name):
                raise ValidationError(
                    f"{raw!r} is not name=value (a label name, '=', then its value)",
                    code="invalid",
                )
            matches.append((name, wanted))
        return matches


@extend_schema_field(OpenApiTypes.STR)
class LabelMatchFilter(django_filters.Filter):
    field_class = LabelMatchField

    def filter(self, qs: QuerySet, value: list[tuple[str, str]]) -> QuerySet:
        for name, wanted in value or []:
            # The plain Exact lookup on the label's text (JSON_EXTRACT / ->>), not the JSON-aware
            # one a KeyTransform would pick: label values are strings, compared as strings.
            qs = qs.filter(Exact(KeyTextTransform(name, "labels"), wanted))
        return qs


# --- Catalog and alerts -------------------------------------------------------------------------


class ServiceFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams)
    search = django_filters.CharFilter(method="filter_search", help_text="In name, slug, tags.")

    class Meta:
        model = Service
        fields: list[str] = []

    def filter_search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(
            Q(name__icontains=value) | Q(slug__icontains=value) | Q(tags__icontains=value)
        )


class IntegrationFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams, field_name="service__team")
    service = IdFilter(field_name="service")
    kind = django_filters.ChoiceFilter(choices=IntegrationKind.choices)
    revoked = StrictBooleanFilter(method="filter_revoked")

    class Meta:
        model = Integration
        fields: list[str] = []

    def filter_revoked(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return qs
        return qs.filter(revoked_at__isnull=not value)


class AlertFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.MultipleChoiceFilter(
        choices=Severity.choices,
        help_text="Repeat for several: `severity=critical&severity=error`.",
        distinct=False,  # no join repeats an alert; DISTINCT would read every match first
    )
    service = IdFilter(field_name="service")
    team = TeamRefFilter(queryset=visible_teams)
    suppressed = StrictBooleanFilter(method="filter_suppressed")
    flapping = StrictBooleanFilter(field_name="is_flapping")
    label = LabelMatchFilter(help_text="`name=value`; repeat to require several labels.")
    search = django_filters.CharFilter(method="filter_search", help_text="In summary and labels.")

    class Meta:
        model = Alert
        fields: list[str] = []

    def filter_suppressed(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return qs
        return qs.exclude(suppression="") if value else qs.filter(suppression="")

    def filter_search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(Q(summary__icontains=value) | Q(labels__icontains=value))


# --- Suppression --------------------------------------------------------------------------------


class SilenceFilter(StrictFilterSet):
    team = IdFilter(field_name="team")
    state = django_filters.ChoiceFilter(
        choices=[("pending", "pending"), ("active", "active"), ("expired", "expired")],
        method="filter_state",
    )

    class Meta:
        model = Silence
        fields: list[str] = []

    def filter_state(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return getattr(qs, value)(timezone.now()) if value else qs


class InhibitionRuleFilter(StrictFilterSet):
    team = IdFilter(field_name="team")

    class Meta:
        model = InhibitionRule
        fields: list[str] = []


class MaintenanceWindowFilter(StrictFilterSet):
    service = IdFilter(field_name="service")

    class Meta:
        model = MaintenanceWindow
        fields: list[str] = []


# --- Metrics and rules --------------------------------------------------------------------------


class SeriesFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams)
    name = django_filters.CharFilter(help_text="Exact metric name.")
    name_prefix = django_filters.CharFilter(field_name="name", lookup_expr="startswith")
    kind = django_filters.ChoiceFilter(choices=MetricKind.choices)

    class Meta:
        model = MetricSeries
        fields: list[str] = []


class AlertRuleFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams)
    service = IdFilter(field_name="service")
    enabled = django_filters.BooleanFilter()
    metric = django_filters.CharFilter()

    class Meta:
        model = AlertRule
        fields: list[str] = []
