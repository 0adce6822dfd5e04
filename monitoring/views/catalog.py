"""Service catalog pages: the services list, a service's page (alerts, recent changes,
integrations with their setup steps), and creating, editing, rotating and revoking.

Ingest keys are shown once, in the response to creating an integration or rotating its key,
which no cache may keep.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from monitoring import service_setup, services
from monitoring.alert_tests import send_test_alert, was_tested
from monitoring.ingest import kinds as integration_kinds
from monitoring.metrics.host import SYSTEM_TEAM_SLUG
from monitoring.models import AlertStatus, ChangeEvent, Integration, IntegrationKind, Service
from monitoring.views.common import service_or_404, since_text
from tocsin import crypto
from tocsin.forms import add_service_error
from tocsin.models import Team
from tocsin.permissions import Action, can, scope, team_ids_for, teams_for
from tocsin.services import ServiceError

SERVICE_FIRING_LIMIT = 50
SERVICE_RECENT_LIMIT = 20
SERVICE_CHANGES_LIMIT = 20
# A change this long before an alert started is shown with it as "after <change>": deploys next
# to the alerts they may have caused.
CHANGE_BEFORE_ALERT = timedelta(hours=2)


def preceding_change(changes: list[ChangeEvent], moment: datetime) -> ChangeEvent | None:
    """The latest change within ``CHANGE_BEFORE_ALERT`` before ``moment`` (newest first list)."""
    for change in changes:
        if change.timestamp <= moment:
            return change if moment - change.timestamp <= CHANGE_BEFORE_ALERT else None
    return None


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
        self.fields["team"].queryset = (
            teams_for(user, Action.MANAGE)
            .exclude(pk__in=Team.objects.filter(slug=SYSTEM_TEAM_SLUG).values("pk"))
            .order_by("name")
        )


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
    team = teams_for(user, Action.VIEW).filter(pk=team_id).first() if team_id.isdecimal() else None
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


def _render_service(
    request: HttpRequest,
    service: Service,
    *,
    status: int = 200,
    edit_form: ServiceForm | None = None,
    integration_form: IntegrationForm | None = None,
    new_keys: list[tuple[Integration, str]] | None = None,
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
    changes = list(service.changes.order_by("-timestamp", "-id")[:SERVICE_CHANGES_LIMIT])
    for change in changes:
        change.since = since_text(change.timestamp, now)
    for alert in firing + recent:
        alert.after_change = preceding_change(changes, alert.starts_at)
    integrations = list(service.integrations.order_by("revoked_at", "name", "id"))
    shown_keys = {shown.pk: key for shown, key in new_keys or []}
    for integration in integrations:
        key = shown_keys.get(integration.pk)
        integration.new_key = key
        integration.setup_title = integration_kinds.setup_title(integration.kind)
        integration.setup = (
            integration_kinds.setup_steps(integration.kind, key)
            if integration.revoked_at is None
            else []
        )
        integration.ingest_url = services.ingest_url(integration.kind)
    paging = service_setup.paging_of(service)
    setup = service_setup.checklist(
        service,
        paging,
        active_integrations=sum(1 for i in integrations if i.revoked_at is None),
        tested=was_tested(service),
    )
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
            "changes": changes,
            "integrations": integrations,
            "can_manage": can_manage,
            "can_respond": can(user, Action.RESPOND, service),
            "paging": paging,
            "setup": setup,
            "setup_done": all(step.done for step in setup),
            "edit_form": edit_form if can_manage else None,
            "integration_form": (integration_form or IntegrationForm()) if can_manage else None,
            "new_keys": new_keys or [],
        },
        status=status,
    )
    if new_keys:
        # The one response that ever shows the key must not be kept by any cache.
        response["Cache-Control"] = "no-store"
    return response


# POST → redirect → GET: a reload of the page that shows a new key must not create (or rotate)
# another. Each key waits in the session, encrypted, under its integration's id, for the one
# GET of its service's page that shows it: keys of several integrations (another tab, another
# service) wait side by side, none lost.
_NEW_KEYS = "tocsin.new_ingest_keys"
_OLD_NEW_KEY = "tocsin.new_ingest_key"  # the single slot of before: dropped when met
# A second "Add integration" of the same kind and name on a service this soon after the first
# is a double click (or a resent form): it answers with the first one instead of a twin.
DUPLICATE_INTEGRATION_WINDOW = timedelta(seconds=10)
# Keys never fetched (a page never loaded) are dropped, oldest first, beyond this many.
NEW_KEYS_HELD = 20


def _key_page(integration: Integration) -> HttpResponse:
    service = integration.service
    response = redirect("service", team_slug=service.team.slug, service_slug=service.slug)
    response["Location"] += "#new-key-heading"
    return response


def _show_key_once(request: HttpRequest, integration: Integration, key: str) -> HttpResponse:
    held = request.session.get(_NEW_KEYS)
    held = dict(held) if isinstance(held, dict) else {}
    held.pop(str(integration.pk), None)  # a rotated key replaces the one before
    held = dict(list(held.items())[-(NEW_KEYS_HELD - 1) :])
    held[str(integration.pk)] = crypto.encrypt(key)
    request.session[_NEW_KEYS] = held
    return _key_page(integration)


def _pop_new_keys(request: HttpRequest, service: Service) -> list[tuple[Integration, str]]:
    """The new keys of ``service``'s integrations waiting in the session (taken out of it),
    oldest integration first; other services' keys keep waiting."""
    request.session.pop(_OLD_NEW_KEY, None)
    held = request.session.get(_NEW_KEYS)
    if not isinstance(held, dict) or not held:
        return []
    ids = [int(pk) for pk in held if str(pk).isdecimal()]
    integrations = service.integrations.filter(pk__in=ids).order_by("pk")
    shown = []
    for integration in integrations:
        try:
            shown.append((integration, crypto.decrypt(held[str(integration.pk)])))
        except crypto.DecryptionError:
            continue  # a key sealed with a retired secret: rotate to get a new one
    if integrations:
        mine = {str(integration.pk) for integration in integrations}
        request.session[_NEW_KEYS] = {pk: key for pk, key in held.items() if pk not in mine}
    return shown


@login_required
def service_detail(request: HttpRequest, team_slug: str, service_slug: str) -> HttpResponse:
    service = service_or_404(request, team_slug, service_slug)
    may_manage = can(request.user, Action.MANAGE, service)
    new_keys = _pop_new_keys(request, service) if may_manage else []
    return _render_service(request, service, new_keys=new_keys)


@login_required
@require_POST
def service_update(request: HttpRequest, team_slug: str, service_slug: str) -> HttpResponse:
    service = service_or_404(request, team_slug, service_slug, Action.MANAGE)
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
    service = service_or_404(request, team_slug, service_slug, Action.MANAGE)
    form = IntegrationForm(request.POST)
    if form.is_valid():
        kind, name = form.cleaned_data["kind"], form.cleaned_data["name"]
        try:
            with transaction.atomic():
                # The service's row lock makes a double click's two requests take turns, so
                # the second finds the first's integration.
                list(Service.objects.select_for_update().filter(pk=service.pk).values_list("pk"))
                twin = _just_created_twin(service, kind, name)
                if twin is None:
                    integration, key = services.create_integration(
                        service, kind, name, actor=request.user
                    )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            if twin is not None:  # its key, if not yet shown, waits in the session
                messages.info(request, f"“{twin.name}” was added moments ago: not added twice.")
                return _key_page(twin)
            return _show_key_once(request, integration, key)
    return _render_service(request, service, status=400, integration_form=form)


def _just_created_twin(service: Service, kind: str, name: str) -> Integration | None:
    """An integration of this kind and name added to ``service`` moments ago, if any."""
    name = (name or "").strip() or IntegrationKind(kind).label
    since = timezone.now() - DUPLICATE_INTEGRATION_WINDOW
    twins = service.integrations.filter(
        kind=kind, name=name, revoked_at=None, created_at__gte=since
    )
    return twins.select_related("service__team").order_by("-pk").first()


def _integration_or_404(service: Service, pk: int) -> Integration:
    return get_object_or_404(Integration.objects.select_related("service"), pk=pk, service=service)


@login_required
@require_POST
def integration_rotate(
    request: HttpRequest, team_slug: str, service_slug: str, pk: int
) -> HttpResponse:
    service = service_or_404(request, team_slug, service_slug, Action.MANAGE)
    integration = _integration_or_404(service, pk)
    try:
        key = services.rotate_key(integration, actor=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("service", team_slug=team_slug, service_slug=service_slug)
    return _show_key_once(request, integration, key)


@login_required
@require_POST
def integration_revoke(
    request: HttpRequest, team_slug: str, service_slug: str, pk: int
) -> HttpResponse:
    service = service_or_404(request, team_slug, service_slug, Action.MANAGE)
    integration = _integration_or_404(service, pk)
    services.revoke_integration(integration, actor=request.user)
    messages.success(request, f"Integration “{integration.name}” revoked; its key is refused now.")
    return redirect("service", team_slug=team_slug, service_slug=service_slug)


@login_required
@require_POST
def integration_test(
    request: HttpRequest, team_slug: str, service_slug: str, pk: int
) -> HttpResponse:
    """Send a test alert through the real pipeline as this integration (responders and up)."""
    service = service_or_404(request, team_slug, service_slug, Action.RESPOND)
    integration = _integration_or_404(service, pk)
    try:
        outcome = send_test_alert(integration, actor=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        alert = outcome.alert
        note = f" (alert #{alert.pk})" if alert is not None else ""
        messages.success(
            request,
            f"Test alert sent through “{integration.name}”{note}: follow the checklist to see "
            "its incident and the page arrive.",
        )
    response = redirect("service", team_slug=team_slug, service_slug=service_slug)
    response["Location"] += "#setup"
    return response
