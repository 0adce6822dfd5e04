"""The monthly SLA report under /api/v1/reports/sla/<team id>/: the page's figures as JSON.

Any member of the team reads it; another team's id answers 404 as a missing one does. The
parameters are the page's (``SlaReportForm``); unknown ones and bad values answer 400 with the
field errors.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.reports import sla_forms
from tocsin.api.lookups import not_found, object_id, visible_teams
from tocsin.api.viewsets import ApiMixin

SLA_PARAMS = [
    OpenApiParameter("month", OpenApiTypes.STR, description="YYYY-MM; default: last month."),
    OpenApiParameter(
        "tz", OpenApiTypes.STR, description="IANA time zone; default: TOCSIN_SLA_TIME_ZONE."
    ),
    OpenApiParameter(
        "target",
        OpenApiTypes.NUMBER,
        description="Target availability (percent); default: the service's SLO, else 99.9.",
    ),
    OpenApiParameter("service", OpenApiTypes.INT, description="Only this service of the team."),
]


class SlaReportView(ApiMixin, APIView):
    """Availability against target, downtime, maintenance and incidents per service, for one
    team and calendar month."""

    @extend_schema(
        parameters=SLA_PARAMS,
        responses=OpenApiTypes.OBJECT,
        operation_id="reports_sla",
        summary="Monthly SLA report of a team",
    )
    def get(self, request: Request, team_id: int) -> Response:
        pk = object_id(team_id)
        found = visible_teams(request).filter(pk=pk).first() if pk is not None else None
        if found is None:
            raise not_found("team")
        params = request.query_params
        form = sla_forms.SlaReportForm(params, team=found)
        errors = dict(form.errors) if not form.is_valid() else {}
        known = ", ".join(sorted(sla_forms.SlaReportForm.base_fields))
        for name in sorted(set(params) - set(sla_forms.SlaReportForm.base_fields) - {"format"}):
            errors[name] = [f"unknown parameter; use one of: {known}"]
        if errors:
            raise serializers.ValidationError({k: list(v) for k, v in errors.items()})
        return Response(sla_forms.build_from(form).as_dict())
