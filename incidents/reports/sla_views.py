"""The monthly SLA report of a team: page, print view and CSV, thin views over
``incidents.reports.sla``. A team the user may not view is a 404 (as if it did not exist);
any member may read (viewers included)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from incidents.reports import sla_forms
from incidents.reports.sla_presentation import context as report_context
from incidents.slas.services import SLA_SERVICE_SLUG
from monitoring.models import Service
from tocsin.models import Team
from tocsin.permissions import Action, can, teams_for


def _form(request: HttpRequest, slug: str) -> sla_forms.SlaReportForm:
    team = Team.objects.filter(slug=slug).first()
    if team is None or not can(request.user, Action.VIEW, team):
        raise Http404("no such team")
    form = sla_forms.SlaReportForm(request.GET, team=team)
    form.is_valid()
    return form


def _text_errors(form: sla_forms.SlaReportForm) -> HttpResponse:
    lines = [f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()]
    return HttpResponse(
        "\n".join(lines) + "\n", status=400, content_type="text/plain; charset=utf-8"
    )


@login_required
def sla_index(request: HttpRequest) -> HttpResponse:
    """The teams whose SLA reports the user may read; straight to the only one."""
    teams = list(teams_for(request.user, Action.VIEW).order_by("name"))
    if len(teams) == 1:
        return redirect("sla_report", slug=teams[0].slug)
    return render(request, "incidents/sla_teams.html", {"teams": teams})


@login_required
def sla_page(request: HttpRequest, slug: str) -> HttpResponse:
    form = _form(request, slug)
    team: Team = form.team
    services = list(
        Service.objects.filter(team=team)
        .exclude(slug=SLA_SERVICE_SLUG)
        .order_by("name")
        .only("id", "name")
    )
    if not form.is_valid():
        context = {"team": team, "form": form, "services": services, "report": None}
        return render(request, "incidents/sla_report.html", context, status=400)
    report = sla_forms.build_from(form)
    query = urlencode(form.params())
    context = {
        **report_context(report),
        "team": team,
        "form": form,
        "services": services,
        "query": query,
        "chosen": form.cleaned_data.get("service"),
        "params": form.params(),
    }
    return render(request, "incidents/sla_report.html", context)


@login_required
def sla_print(request: HttpRequest, slug: str) -> HttpResponse:
    form = _form(request, slug)
    if not form.is_valid():
        return _text_errors(form)
    report = sla_forms.build_from(form)
    return render(
        request, "incidents/sla_print.html", {**report_context(report), "team": form.team}
    )


@login_required
def sla_csv(request: HttpRequest, slug: str) -> HttpResponse:
    form = _form(request, slug)
    if not form.is_valid():
        return _text_errors(form)
    report = sla_forms.build_from(form)
    response = HttpResponse(report.to_csv(), content_type="text/csv; charset=utf-8")
    name = f"tocsin-sla-{form.team.slug}-{report.month:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
