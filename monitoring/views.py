"""Pages for alerts and the service catalog: thin views over ``monitoring.services``.

Same rules as ``tocsin.views``: someone who may not view a team gets 404 for everything under
it, a member whose role is too low gets 403, and every check happens here whatever the
templates show. Ingest keys are shown once, in the response to creating an integration or
rotating its key, which no cache may keep.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from monitoring import services
from monitoring.models import Alert, AlertStatus, Integration, IntegrationKind, Service, Severity
from monitoring.suppression import silence_alert
from tocsin.forms import add_service_error
from tocsin.models import Event, Team
from tocsin.permissions import Action, can, scope, team_ids_for, teams_for
from tocsin.services import ServiceError

ALERTS_PAGE_SIZE = 100
SERVICE_FIRING_LIMIT = 50
SERVICE_RECENT_LIMIT = 20
SILENCE_DURATION = timedelta(hours=1)
SEVERITY_ORDER = {value: rank for rank, value in enumerate(reversed(Severity.values))}


# -- helpers ---------------------------------------------------------------------------------------
def since_text(moment: datetime | None, now: datetime) -> str:
    """ "42 s", "5 min", "3 h 20 min", "4 d": short enough for a table cell at 3 a.m."""
    if moment is None:
        return ""
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds // 86400} d"


def _service_or_404(
    request: HttpRequest, team_slug: str, service_slug: str, action: Action = Action.VIEW
) -> Service:
    service = (
        Service.objects.select_related("team")
        .filter(team__slug=team_slug, slug=service_slug)
        .first()
    )
    if service is None or not can(request.user, Action.VIEW, service):
        raise Http404("no such service")
    if not can(request.user, action, service):
        raise PermissionDenied(f"your role in {service.team} does not allow this")
    return service


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# -- the Alerts page -------------------------------------------------------------------------------
STATUS_CHOICES = [("firing", "Firing"), ("resolved", "Resolved"), ("all", "All")]
SUPPRESSED_CHOICES = [("", "Any"), ("no", "Not suppressed"), ("yes", "Suppressed")]


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    severity = forms.MultipleChoiceField(
        choices=Severity.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    suppressed = forms.ChoiceField(choices=SUPPRESSED_CHOICES, required=False)
    team = forms.CharField(required=False)
    service = forms.IntegerField(required=False, min_value=1)
    page = forms.IntegerField(required=False, min_value=1)


def team_and_service_filter(
    user: Any, data: dict[str, Any]
) -> tuple[list[Team], Team | None, list[Service], Service | None]:
    """The teams and services a list page offers as filters, and the ones picked (``team`` slug,
    ``service`` id in ``data``); a pick the user may not see is a 404, like an unknown one."""
    teams = list(teams_for(user, Action.VIEW).order_by("name"))
    selected_team = None
    if data.get("team"):
        selected_team = next((t for t in teams if t.slug == data["team"]), None)
        if selected_team is None:
            raise Http404("no such team")
    service_choices = scope(Service.objects.select_related("team"), user, Action.VIEW)
    if selected_team is not None:
        service_choices = service_choices.filter(team=selected_team)
    service_choices = list(service_choices.order_by("team__name", "name"))
    selected_service = None
    if data.get("service"):
        selected_service = next((s for s in service_choices if s.pk == data["service"]), None)
        if selected_service is None:
            raise Http404("no such service")
    return teams, selected_team, service_choices, selected_service


def _alerts_context(request: HttpRequest) -> tuple[dict[str, Any], int]:
    """Everything the Alerts page and its table partial show, and the HTTP status."""
    user = request.user
    form = AlertFilterForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    teams, selected_team, service_choices, selected_service = team_and_service_filter(user, data)

    status = data.get("status") or "firing"
    alerts: QuerySet[Alert] = scope(Alert.objects.all(), user, Action.VIEW)
    if status != "all":
        alerts = alerts.filter(status=status)
    if data.get("severity"):
        alerts = alerts.filter(severity__in=data["severity"])
    if data.get("suppressed") == "yes":
        alerts = alerts.exclude(suppression="")
    elif data.get("suppressed") == "no":
        alerts = alerts.filter(suppression="")
    if selected_team is not None:
        alerts = alerts.filter(team=selected_team)
    if selected_service is not None:
        alerts = alerts.filter(service=selected_service)
    alerts = alerts.select_related("service", "team").order_by("-last_change_at", "-id")
    page = Paginator(alerts, ALERTS_PAGE_SIZE).get_page(data.get("page") or 1)

    now = timezone.now()
    respond_ids = team_ids_for(user, Action.RESPOND)
    for alert in page.object_list:
        moment = alert.starts_at if alert.is_firing else (alert.ends_at or alert.last_change_at)
        alert.since = since_text(moment, now)
        alert.since_at = moment
        alert.last_seen_ago = since_text(alert.last_seen_at, now)
        alert.can_silence = (
            alert.is_firing
            and not alert.is_suppressed
            and (respond_ids is None or alert.team_id in respond_ids)
        )
        alert.label_items = sorted(
            (k, v) for k, v in alert.labels.items() if k not in ("alertname", "severity")
        )[:4]

    filters = {
        "status": status,
        "severity": data.get("severity") or [],
        "suppressed": data.get("suppressed") or "",
        "team": selected_team.slug if selected_team else "",
        "service": selected_service.pk if selected_service else "",
    }
    query = urlencode(
        [(k, v) for k, v in filters.items() if k != "severity" and v]
        + [("severity", s) for s in filters["severity"]]
    )
    page_query = query + (f"&page={page.number}" if page.number > 1 else "")
    context = {
        "form": form,
        "filters": filters,
        "teams": teams,
        "service_choices": service_choices,
        "selected_team": selected_team,
        "selected_service": selected_service,
        "page": page,
        "alerts": page.object_list,
        "query": query,
        "page_query": page_query,
        "page_url": reverse("alerts") + (f"?{page_query}" if page_query else ""),
        "status_choices": STATUS_CHOICES,
        "severity_choices": Severity.choices,
        "suppressed_choices": SUPPRESSED_CHOICES,
        "silence_hours": int(SILENCE_DURATION.total_seconds() // 3600),
    }
    return context, (200 if valid else 400)


@login_required
def alerts(request: HttpRequest) -> HttpResponse:
    context, status = _alerts_context(request)
    context["last_event_id"] = Event.objects.newest_id_for(request.user)
    return render(request, "monitoring/alerts.html", context, status=status)


@login_required
def alerts_table(request: HttpRequest) -> HttpResponse:
    """The table alone, re-fetched by the Alerts page when alert events arrive live."""
    context, status = _alerts_context(request)
    return render(request, "monitoring/_alerts_table.html", context, status=status)


@login_required
@require_POST
def alert_silence(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(
        scope(Alert.objects.select_related("service", "team"), request.user, Action.VIEW), pk=pk
    )
    if not can(request.user, Action.RESPOND, alert):
        raise PermissionDenied("silencing needs the responder role in the team")
    back = _safe_next(request, reverse("alerts"))
    comment = (request.POST.get("comment") or "").strip()[:500] or (
        f"Silenced for {int(SILENCE_DURATION.total_seconds() // 3600)} h from the Alerts page"
    )
    try:
        silence_alert(alert, SILENCE_DURATION, request.user, comment)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Silenced “{alert.summary}” for one hour.")
    return redirect(back)


# -- services --------------------------------------------------------------------------------------
class ServiceForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )
    runbook_url = forms.URLField(required=False, label="Runbook URL", assume_scheme="https")
    tags = forms.CharField(
        required=False, max_length=500, help_text="Comma-separated, e.g. “payments, tier-1”."
    )

    def clean_tags(self) -> list[str]:
        return [t.strip().lower() for t in self.cleaned_data["tags"].split(",") if t.strip()]


class ServiceCreateForm(ServiceForm):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    field_order = ["team", "name", "description", "runbook_url", "tags"]

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Rendered choices: the teams the user manages. Posted values are checked by the view.
        self.fields["team"].queryset = teams_for(user, Action.MANAGE).order_by("name")


class IntegrationForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k.value, k.label) for k in services.USER_KINDS])
    name = forms.CharField(
        max_length=100,
        required=False,
        help_text="What sends through it, e.g. “prod Alertmanager”. Optional.",
    )


@login_required
def services_page(request: HttpRequest) -> HttpResponse:
    return _render_services(request)


def _render_services(
    request: HttpRequest, form: ServiceCreateForm | None = None, status: int = 200
) -> HttpResponse:
    user = request.user
    rows = (
        scope(Service.objects.select_related("team"), user, Action.VIEW)
        .annotate(
            firing_count=services.firing_count(), integration_count=services.integration_count()
        )
        .order_by("team__name", "name")
    )
    manages_any = team_ids_for(user, Action.MANAGE) != set()
    if form is None and manages_any:
        form = ServiceCreateForm(user=user)
    return render(
        request,
        "monitoring/services.html",
        {"services": rows, "form": form if manages_any else None},
        status=status,
    )


@login_required
@require_POST
def service_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    team_id = request.POST.get("team", "")
    team = teams_for(user, Action.VIEW).filter(pk=team_id).first() if team_id.isdigit() else None
    if team_id and team is None:
        raise Http404("no such team")
    if team is not None and not can(user, Action.MANAGE, team):
        raise PermissionDenied(f"your role in {team} does not allow this")
    if team is None and team_ids_for(user, Action.MANAGE) == set():
        raise PermissionDenied("only team managers create services")
    form = ServiceCreateForm(request.POST, user=user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            service = services.create_service(
                data["team"],
                data["name"],
                actor=user,
                description=data["description"],
                runbook_url=data["runbook_url"],
                tags=data["tags"],
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Service “{service}” created. Add an integration below.")
            return redirect("service", team_slug=service.team.slug, service_slug=service.slug)
    return _render_services(request, form, status=400)


SETUP_TITLES = {
    IntegrationKind.ALERTMANAGER: "Prometheus Alertmanager",
    IntegrationKind.PROMETHEUS: "Prometheus (straight to Tocsin)",
    IntegrationKind.GRAFANA: "Grafana contact point",
    IntegrationKind.EVENTS_V2: "Events API v2 (PagerDuty-compatible)",
    IntegrationKind.GENERIC: "Generic JSON (curl, scripts)",
}


def setup_steps(integration: Integration, key: str | None = None) -> list[dict[str, str]]:
    """How to point a sender at this integration: a sentence and a snippet per step.

    With ``key`` (just created or rotated) the snippets are ready to paste; otherwise the key
    reads ``<your key>``, since Tocsin keeps only its hash.
    """
    kind = integration.kind
    url = services.ingest_url(kind, key)
    shown_key = key or services.KEY_PLACEHOLDER
    base = services.base_url()
    if kind == IntegrationKind.ALERTMANAGER:
        return [
            {
                "text": "Add a webhook receiver to alertmanager.yml and route alerts to it. "
                "Keep send_resolved on, so alerts resolve here when they resolve there.",
                "code": (
                    "route:\n"
                    "  receiver: tocsin\n"
                    "receivers:\n"
                    "  - name: tocsin\n"
                    "    webhook_configs:\n"
                    f'      - url: "{url}"\n'
                    "        send_resolved: true\n"
                ),
            },
        ]
    if kind == IntegrationKind.PROMETHEUS:
        target = services.prometheus_target(key)
        return [
            {
                "text": "Prometheus can send to Tocsin as if it were an Alertmanager (API v2). Add "
                "this to prometheus.yml; Prometheus appends /api/v2/alerts to the path_prefix.",
                "code": (
                    "alerting:\n"
                    "  alertmanagers:\n"
                    f"    - scheme: {target['scheme']}\n"
                    f'      path_prefix: "{target["path_prefix"]}"\n'
                    "      api_version: v2\n"
                    "      static_configs:\n"
                    f'        - targets: ["{target["target"]}"]\n'
                ),
            },
            {"text": "The full URL Prometheus posts to:", "code": url},
        ]
    if kind == IntegrationKind.GRAFANA:
        return [
            {
                "text": "In Grafana, Alerting → Contact points → Add contact point: choose the "
                "Webhook integration, HTTP method POST, and paste this URL.",
                "code": url,
            },
        ]
    if kind == IntegrationKind.EVENTS_V2:
        return [
            {
                "text": "Any PagerDuty Events API v2 client works: use this base URL instead of "
                "https://events.pagerduty.com, and the key as the routing key (integration key).",
                "code": f"{base}/ingest/pagerduty",
            },
            {"text": "Routing key:", "code": shown_key},
            {
                "text": "Alertmanager's PagerDuty receiver, for example:",
                "code": (
                    "receivers:\n"
                    "  - name: tocsin\n"
                    "    pagerduty_configs:\n"
                    f'      - url: "{url}"\n'
                    f'        routing_key: "{shown_key}"\n'
                ),
            },
            {
                "text": "Or trigger a test event with curl:",
                "code": (
                    f"curl -X POST '{url}' \\\n"
                    "  -H 'Content-Type: application/json' \\\n"
                    f'  -d \'{{"routing_key": "{shown_key}", "event_action": "trigger", '
                    '"dedup_key": "tocsin-test", "payload": {"summary": "Test from curl", '
                    '"source": "my-laptop", "severity": "warning"}}\''
                ),
            },
        ]
    if kind == IntegrationKind.GENERIC:
        return [
            {
                "text": "POST JSON from any script. Send the same labels again to update the "
                'alert, and "status": "resolved" to resolve it.',
                "code": (
                    f"curl -X POST '{url}' \\\n"
                    "  -H 'Content-Type: application/json' \\\n"
                    '  -d \'{"status": "firing", "severity": "warning", '
                    '"summary": "Test from curl", '
                    '"labels": {"alertname": "CurlTest", "instance": "my-laptop"}}\''
                ),
            },
        ]
    return []


def _render_service(
    request: HttpRequest,
    service: Service,
    *,
    status: int = 200,
    edit_form: ServiceForm | None = None,
    integration_form: IntegrationForm | None = None,
    new_key: tuple[Integration, str] | None = None,
) -> HttpResponse:
    user = request.user
    can_manage = can(user, Action.MANAGE, service)
    now = timezone.now()
    firing = list(
        service.alerts.filter(status=AlertStatus.FIRING).order_by("-last_change_at", "-id")[
            :SERVICE_FIRING_LIMIT
        ]
    )
    recent = list(
        service.alerts.filter(status=AlertStatus.RESOLVED).order_by("-last_change_at", "-id")[
            :SERVICE_RECENT_LIMIT
        ]
    )
    for alert in firing:
        alert.since = since_text(alert.starts_at, now)
        alert.since_at = alert.starts_at
    for alert in recent:
        alert.since = since_text(alert.ends_at or alert.last_change_at, now)
        alert.since_at = alert.ends_at or alert.last_change_at
    integrations = list(service.integrations.order_by("revoked_at", "name", "id"))
    for integration in integrations:
        key = new_key[1] if new_key and new_key[0].pk == integration.pk else None
        integration.new_key = key
        integration.setup_title = SETUP_TITLES.get(integration.kind, integration.get_kind_display())
        integration.setup = setup_steps(integration, key) if integration.revoked_at is None else []
        integration.ingest_url = services.ingest_url(integration.kind)
    if can_manage and edit_form is None:
        edit_form = ServiceForm(
            initial={
                "name": service.name,
                "description": service.description,
                "runbook_url": service.runbook_url,
                "tags": ", ".join(service.tags),
            }
        )
    response = render(
        request,
        "monitoring/service.html",
        {
            "service": service,
            "firing": firing,
            "firing_total": service.alerts.filter(status=AlertStatus.FIRING).count()
            if len(firing) == SERVICE_FIRING_LIMIT
            else len(firing),
            "recent": recent,
            "integrations": integrations,
            "can_manage": can_manage,
            "edit_form": edit_form if can_manage else None,
            "integration_form": (integration_form or IntegrationForm()) if can_manage else None,
            "new_key": new_key,
        },
        status=status,
    )
    if new_key:
        # The one response that ever shows the key must not be kept by any cache.
        response["Cache-Control"] = "no-store"
    return response


@login_required
def service_detail(request: HttpRequest, team_slug: str, service_slug: str) -> HttpResponse:
    return _render_service(request, _service_or_404(request, team_slug, service_slug))


@login_required
@require_POST
def service_update(request: HttpRequest, team_slug: str, service_slug: str) -> HttpResponse:
    service = _service_or_404(request, team_slug, service_slug, Action.MANAGE)
    form = ServiceForm(request.POST)
    if form.is_valid():
        try:
            services.update_service(service, actor=request.user, **form.cleaned_data)
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Service details saved.")
            return redirect("service", team_slug=team_slug, service_slug=service_slug)
    service.refresh_from_db()
    return _render_service(request, service, status=400, edit_form=form)


@login_required
@require_POST
def integration_create(request: HttpRequest, team_slug: str, service_slug: str) -> HttpResponse:
    service = _service_or_404(request, team_slug, service_slug, Action.MANAGE)
    form = IntegrationForm(request.POST)
    if form.is_valid():
        try:
            integration, key = services.create_integration(
                service, form.cleaned_data["kind"], form.cleaned_data["name"], actor=request.user
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            return _render_service(request, service, status=201, new_key=(integration, key))
    return _render_service(request, service, status=400, integration_form=form)


def _integration_or_404(service: Service, pk: int) -> Integration:
    return get_object_or_404(Integration.objects.select_related("service"), pk=pk, service=service)


@login_required
@require_POST
def integration_rotate(
    request: HttpRequest, team_slug: str, service_slug: str, pk: int
) -> HttpResponse:
    service = _service_or_404(request, team_slug, service_slug, Action.MANAGE)
    integration = _integration_or_404(service, pk)
    try:
        key = services.rotate_key(integration, actor=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("service", team_slug=team_slug, service_slug=service_slug)
    return _render_service(request, service, new_key=(integration, key))


@login_required
@require_POST
def integration_revoke(
    request: HttpRequest, team_slug: str, service_slug: str, pk: int
) -> HttpResponse:
    service = _service_or_404(request, team_slug, service_slug, Action.MANAGE)
    integration = _integration_or_404(service, pk)
    services.revoke_integration(integration, actor=request.user)
    messages.success(request, f"Integration “{integration.name}” revoked; its key is refused now.")
    return redirect("service", team_slug=team_slug, service_slug=service_slug)
