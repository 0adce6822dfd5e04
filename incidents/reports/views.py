"""The Reports page and its CSV: thin views over ``incidents.reports.queries``.

Both read the same filters (``ReportFilterForm``) and show only teams the user may view; a
filter that does not parse, or names a team or service the user may not see, is a form error
(400), never someone else's figures.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from incidents.reports import queries as reports
from monitoring.models import Service
from tocsin.permissions import Action, scope, teams_for


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def _with_minutes(figures: dict) -> dict:
    return {
        **figures,
        "mtta": _minutes(figures["mtta_seconds"]),
        "mttr": _minutes(figures["mttr_seconds"]),
    }


@login_required
def report_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = reports.ReportFilterForm(request.GET, user=user)
    valid = form.is_valid()
    report = reports.build_from(form, user)
    data = report.as_dict()
    filters = {
        "team": form.cleaned_data.get("team") if valid else None,
        "service": form.cleaned_data.get("service") if valid else None,
        "since": report.since,
        "until": report.until,
    }
    query = urlencode(
        {
            k: v
            for k, v in {
                "team": filters["team"].slug if filters["team"] else "",
                "service": filters["service"].pk if filters["service"] else "",
                "since": report.since.isoformat(),
                "until": report.until.isoformat(),
            }.items()
            if v
        }
    )
    teams = list(teams_for(user, Action.VIEW).order_by("name"))
    services = scope(Service.objects.select_related("team"), user, Action.VIEW)
    if filters["team"] is not None:
        services = services.filter(team=filters["team"])
    context = {
        "form": form,
        "filters": filters,
        "teams": teams,
        "service_choices": list(services.order_by("team__name", "name")),
        "total": _with_minutes(data["total"]),
        "by_week": [_with_minutes(w) for w in data["by_week"]],
        "by_team": [{**g, "total": _with_minutes(g["total"])} for g in data["by_team"]],
        "by_service": [{**g, "total": _with_minutes(g["total"])} for g in data["by_service"]],
        "chart": {
            "weeks": data["weeks"],
            "incidents": [w["incidents"] for w in data["by_week"]],
            "breaches": [w["ack_breaches"] + w["resolve_breaches"] for w in data["by_week"]],
            "mtta": [_chart_minutes(w["mtta_seconds"]) for w in data["by_week"]],
            "mttr": [_chart_minutes(w["mttr_seconds"]) for w in data["by_week"]],
        },
        "query": query,
    }
    return render(request, "incidents/reports.html", context, status=200 if valid else 400)


def _chart_minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


@login_required
def report_csv(request: HttpRequest) -> HttpResponse:
    form = reports.ReportFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        lines = [f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()]
        return HttpResponse(
            "\n".join(lines) + "\n", status=400, content_type="text/plain; charset=utf-8"
        )
    report = reports.build_from(form, request.user)
    response = HttpResponse(report.to_csv(), content_type="text/csv; charset=utf-8")
    name = f"tocsin-incidents-{report.since.isoformat()}-{report.until.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
