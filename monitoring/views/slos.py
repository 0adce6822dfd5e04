"""The SLO pages: every SLO of the user's teams with its budget (status colour and words), burn
rate and a sparkline of the budget over the window, re-fetched when the live stream brings an
alert (burn-rate alerts among them) and every minute (the figures are recomputed each minute);
an SLO's page with its facts, figures computed now, the burn-down chart (uPlot), the burn-rate
windows of the alerts and the alerts they raised.

``tocsin.permissions`` decides: an SLO of a team you cannot see is a 404; managers get links
to edit it in the admin. The list reads the figures the evaluation task stored (a fixed number
of queries whatever the number of SLOs); only the detail page computes.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from monitoring.models import Alert, ServiceLevelObjective
from monitoring.slos import alerts as burn_alerts
from monitoring.slos.budget import figures, status_of
from monitoring.slos.compute import Counter
from monitoring.slos.registry import ConfigError
from tocsin.models import Event
from tocsin.permissions import Action, can, scope, teams_for

PAGE_SIZE = 50
STATUS = {
    "ok": ("badge-ok", "Within budget"),
    "at_risk": ("badge-acknowledged", "Budget running low"),
    "exhausted": ("badge-firing", "Budget spent"),
    "no_data": ("badge-muted", "No data yet"),
}
SPARK_WIDTH, SPARK_HEIGHT = 120, 28


def visible_slos(user: Any) -> Any:
    rows = ServiceLevelObjective.objects.select_related("service", "service__team")
    return scope(rows, user, Action.VIEW, "service__team")


def sparkline_points(values: list[float]) -> str:
    """An SVG polyline's points: budget remaining from 100 % (top) to 0 (bottom), clamped."""
    if not values:
        return ""
    step = SPARK_WIDTH / max(1, len(values) - 1)
    points = []
    for index, value in enumerate(values):
        y = SPARK_HEIGHT * (1 - max(0.0, min(1.0, value)))
        points.append(f"{index * step:.1f},{y:.1f}")
    return " ".join(points)


def present(slo: ServiceLevelObjective) -> ServiceLevelObjective:
    slo.status = status_of(slo.budget_remaining, slo.attainment is not None)
    slo.badge, slo.status_text = STATUS[slo.status]
    slo.budget_text = "—" if slo.budget_remaining is None else f"{100 * slo.budget_remaining:.1f} %"
    slo.attainment_text = "—" if slo.attainment is None else f"{100 * slo.attainment:.3f} %"
    slo.burn_text = "—" if slo.burn_rate is None else f"{slo.burn_rate:.2f}x"
    slo.spark = sparkline_points(slo.sparkline or [])
    slo.objective_text = format(slo.objective.normalize(), "f")
    indicator = slo.indicator
    slo.kind_label = indicator.label if indicator is not None else slo.sli_kind
    return slo


def _list_context(request: HttpRequest) -> dict[str, Any]:
    teams = list(teams_for(request.user, Action.VIEW))
    rows = visible_slos(request.user)
    team = None
    slug = request.GET.get("team")
    if slug:
        team = next((t for t in teams if t.slug == slug), None)
        if team is None:
            raise Http404("no such team")
        rows = rows.filter(service__team=team)
    rows = rows.order_by("service__team__name", "service__name", "name", "id")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    slos = [present(slo) for slo in page.object_list]
    return {
        "slos": slos,
        "page": page,
        "teams": teams,
        "team": team,
        "query": f"team={team.slug}" if team else "",
        "spark_width": SPARK_WIDTH,
        "spark_height": SPARK_HEIGHT,
    }


@login_required
def slo_list(request: HttpRequest) -> HttpResponse:
    context = _list_context(request)
    context["last_event_id"] = Event.objects.newest_id_for(request.user)
    context["current"] = "slos"
    return render(request, "monitoring/slos.html", context)


@login_required
def slo_rows(request: HttpRequest) -> HttpResponse:
    """The table alone, re-fetched by the list when figures may have changed."""
    return render(request, "monitoring/_slo_rows.html", _list_context(request))


def _slo(request: HttpRequest, pk: int) -> ServiceLevelObjective:
    slo = visible_slos(request.user).filter(pk=pk).first()
    if slo is None:
        raise Http404("no such SLO")
    return slo


def _detail_context(request: HttpRequest, slo: ServiceLevelObjective) -> dict[str, Any]:
    now = timezone.now()
    context: dict[str, Any] = {"slo": present(slo), "now": now}
    try:
        counter = Counter(slo, now)
    except ConfigError as exc:
        context["config_error"] = str(exc)
        return context
    found = figures(slo, now, counter=counter, chart=True)
    found_status = found.status
    context.update(
        figures=found,
        status_badge=STATUS[found_status][0],
        status_text=STATUS[found_status][1],
        budget_text=f"{100 * found.budget_remaining:.2f} %",
        attainment_text="—" if found.attainment is None else f"{100 * found.attainment:.4f} %",
        burns=burn_alerts.burns(slo, now, counter),
        chart={
            "t": [int(moment.timestamp()) for moment, _ in found.burn_down],
            "budget": [round(100 * value, 4) for _, value in found.burn_down],
        },
        describe=slo.indicator.describe(counter.config),
    )
    return context


@login_required
def slo_detail(request: HttpRequest, pk: int) -> HttpResponse:
    slo = _slo(request, pk)
    context = _detail_context(request, slo)
    context["alerts"] = list(
        Alert.objects.filter(
            service=slo.service, fingerprint__startswith=f"slo:{slo.pk}:"
        ).order_by("-starts_at", "-id")[:20]
    )
    context["last_event_id"] = Event.objects.newest_id_for(request.user)
    context["current"] = "slos"
    if can(request.user, Action.MANAGE, slo):
        context["admin_url"] = reverse(
            "admin:monitoring_servicelevelobjective_change", args=[slo.pk]
        )
    context["export_url"] = reverse("api-slo-export", args=[slo.pk])
    return render(request, "monitoring/slo.html", context)


@login_required
def slo_figures(request: HttpRequest, pk: int) -> HttpResponse:
    """The figures alone, re-fetched by the SLO's page every minute and on alert events."""
    slo = _slo(request, pk)
    return render(request, "monitoring/_slo_figures.html", _detail_context(request, slo))
