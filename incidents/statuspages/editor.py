"""The team's status page editor, and the incident page's "post a public update" form.

Thin views over ``services``, ``publishing`` and ``subscribers``. Who may do what is asked of
``tocsin.permissions``: every member of the team sees the list and the preview (it shows only
what the public will see); the editor and every change need the manager role (403 otherwise);
a page of a team you are not in is a 404. Posting a public update from an incident needs the
responder role on the incident's team.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from incidents.lifecycle.models import Incident
from incidents.statuspages import maintenance, publishing, services, subscribers
from incidents.statuspages.forms import (
    ComponentForm,
    GroupForm,
    MaintenanceNoticeForm,
    ManualStatusForm,
    PageForm,
    PublicUpdateForm,
    WebhookForm,
)
from incidents.statuspages.models import (
    Component,
    ComponentGroup,
    MaintenanceNotice,
    StatusPage,
    StatusSubscriber,
)
from monitoring.models import MaintenanceWindow
from tocsin.permissions import Action, can, scope, team_ids_for
from tocsin.services import ServiceError


def _page_or_404(request: HttpRequest, pk: int, action: Action = Action.MANAGE) -> StatusPage:
    page = scope(StatusPage.objects.select_related("team"), request.user, Action.VIEW)
    page = page.filter(pk=pk).first()
    if page is None:
        raise Http404("no such status page")
    if not can(request.user, action, page):
        raise PermissionDenied(f"your role in {page.team} does not allow this")
    return page


def _first_error(form: Any) -> str:
    for field, errors in form.errors.items():
        label = "" if field == "__all__" else f"{field.replace('_', ' ')}: "
        return f"{label}{errors[0]}"
    return "check the form"


@login_required
def page_list(request: HttpRequest) -> HttpResponse:
    pages = scope(StatusPage.objects.select_related("team"), request.user, Action.VIEW)
    managed = team_ids_for(request.user, Action.MANAGE)
    rows = list(pages.order_by("team__name", "title", "id"))
    for page in rows:
        page.may_edit = managed is None or page.team_id in managed
    context = {"pages": rows, "may_create": managed is None or bool(managed)}
    return render(request, "statuspages/editor_list.html", context)


def _save_page(request: HttpRequest, form: PageForm, page: StatusPage) -> StatusPage:
    data = dict(form.cleaned_data)
    chosen = data.pop("services")
    data.pop("team", None)
    with transaction.atomic():
        return services.save_page(page, actor=request.user, services=list(chosen), **data)


@login_required
@require_http_methods(["GET", "POST"])
def page_create(request: HttpRequest) -> HttpResponse:
    managed = team_ids_for(request.user, Action.MANAGE)
    if managed is not None and not managed:
        raise PermissionDenied("you manage no team")
    form = PageForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        team = form.cleaned_data["team"]
        if not can(request.user, Action.MANAGE, team):
            raise PermissionDenied("you do not manage this team")
        try:
            page = _save_page(request, form, StatusPage(team=team))
        except ServiceError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, "Status page created. It stays private until published.")
            return redirect("statuspage_edit", page.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "statuspages/editor_new.html", {"form": form}, status=status)


def _edit_context(request: HttpRequest, page: StatusPage, form: PageForm) -> dict[str, Any]:
    components = list(
        Component.objects.filter(page=page)
        .select_related("group", "service")
        .order_by("position", "id")
    )
    service_ids = {c.service_id for c in components if c.service_id}
    service_ids |= set(page.services.values_list("pk", flat=True))
    windows = list(
        MaintenanceWindow.objects.filter(service_id__in=service_ids).select_related("service")
    )
    notices = {n.window_id: n for n in MaintenanceNotice.objects.filter(page=page)}
    for window in windows:
        window.notice = notices.get(window.pk)
        window.occurrence = maintenance.occurrence_of(window, request.now)
    return {
        "page": page,
        "form": form,
        "groups": list(ComponentGroup.objects.filter(page=page).order_by("position", "id")),
        "components": components,
        "component_form": ComponentForm(page=page),
        "group_form": GroupForm(),
        "status_form": ManualStatusForm(),
        "windows": windows,
        "webhooks": list(StatusSubscriber.objects.filter(page=page, kind="webhook")),
        "email_count": StatusSubscriber.objects.filter(
            page=page, kind="email", confirmed_at__isnull=False
        ).count(),
        "public_path": reverse("statuspage", args=[page.slug]),
    }


@login_required
@require_http_methods(["GET", "POST"])
def page_edit(request: HttpRequest, pk: int) -> HttpResponse:
    from django.utils import timezone

    request.now = timezone.now()
    page = _page_or_404(request, pk)
    form = PageForm(request.POST or None, instance=page, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            _save_page(request, form, page)
        except ServiceError as error:
            page.refresh_from_db()
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, "Saved.")
            return redirect("statuspage_edit", page.pk)
    status = 400 if request.method == "POST" else 200
    context = _edit_context(request, page, form)
    return render(request, "statuspages/editor.html", context, status=status)


def _row(model: Any, page: StatusPage, raw: str | None) -> Any:
    raw = raw or ""
    found = (
        model.objects.filter(page=page, pk=int(raw)).first()
        if raw.isascii() and raw.isdecimal() and len(raw) <= 18  # a primary key, not 5,000 digits
        else None
    )
    if found is None:
        raise ServiceError(f"no such {model._meta.verbose_name} on this page")
    return found


def _act(request: HttpRequest, page: StatusPage, action: str) -> str:
    post, user = request.POST, request.user
    if action == "delete":
        services.delete_page(page, actor=user)
        return "Status page deleted."
    if action == "logo":
        upload = request.FILES.get("logo")
        data = upload.read(services.MAX_LOGO_BYTES + 1) if upload else None
        services.set_logo(page, data, actor=user)
        return "Logo uploaded." if data else "Logo removed."
    if action in ("group-add", "group-save"):
        form = GroupForm(post)
        if not form.is_valid():
            raise ServiceError(_first_error(form))
        group = ComponentGroup(page=page)
        if action == "group-save":
            group = _row(ComponentGroup, page, post.get("id"))
        data = form.cleaned_data | {"position": form.cleaned_data.get("position") or 0}
        services.save_group(group, actor=user, **data)
        return "Group saved."
    if action == "group-delete":
        services.delete_group(_row(ComponentGroup, page, post.get("id")), actor=user)
        return "Group deleted; its components are ungrouped."
    if action in ("component-add", "component-save"):
        form = ComponentForm(post, page=page)
        if not form.is_valid():
            raise ServiceError(_first_error(form))
        component = Component(page=page)
        if action == "component-save":
            component = _row(Component, page, post.get("id"))
        services.save_component(component, actor=user, **form.changes())
        return "Component saved."
    if action == "component-delete":
        services.delete_component(_row(Component, page, post.get("id")), actor=user)
        return "Component deleted."
    if action == "component-status":
        component = _row(Component, page, post.get("id"))
        form = ManualStatusForm(post)
        if not form.is_valid():
            raise ServiceError(_first_error(form))
        services.set_manual_status(
            component, form.cleaned_data["status"], until=form.cleaned_data["until"], actor=user
        )
        return f"{component.name} is set by hand."
    if action == "component-clear":
        services.clear_manual_status(_row(Component, page, post.get("id")), actor=user)
        return "Back to automatic."
    if action == "maintenance":
        form = MaintenanceNoticeForm(post)
        if not form.is_valid():
            raise ServiceError(_first_error(form))
        data = form.cleaned_data
        window = MaintenanceWindow.objects.select_related("service").filter(pk=data["window"])
        window = window.first()
        if window is None:
            raise ServiceError("no such maintenance window")
        publishing.save_maintenance_notice(
            page, window, actor=user, title=data["title"], note=data["note"], hidden=data["hidden"]
        )
        return "Maintenance notice saved."
    if action == "webhook-add":
        form = WebhookForm(post)
        if not form.is_valid():
            raise ServiceError(_first_error(form))
        subscribers.add_webhook(
            page, form.cleaned_data["url"], secret=form.cleaned_data["secret"], actor=user
        )
        return "Webhook added."
    if action == "subscriber-delete":
        subscribers.remove(_row(StatusSubscriber, page, post.get("id")), actor=user)
        return "Subscriber removed."
    raise Http404("no such action")


ACTIONS = (
    "delete",
    "logo",
    "group-add",
    "group-save",
    "group-delete",
    "component-add",
    "component-save",
    "component-delete",
    "component-status",
    "component-clear",
    "maintenance",
    "webhook-add",
    "subscriber-delete",
)


@login_required
@require_POST
def page_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404("no such action")
    page = _page_or_404(request, pk)
    try:
        with transaction.atomic():
            message = _act(request, page, action)
    except ServiceError as error:
        messages.error(request, error.message[:1].upper() + error.message[1:])
        return redirect("statuspage_edit", page.pk)
    messages.success(request, message)
    if action == "delete":
        return redirect("statuspages")
    return redirect("statuspage_edit", page.pk)


@login_required
@require_POST
def incident_public_update(request: HttpRequest, pk: int) -> HttpResponse:
    incident = scope(Incident.objects.select_related("team"), request.user, Action.VIEW)
    incident = incident.filter(pk=pk).first()
    if incident is None:
        raise Http404("no such incident")
    if not can(request.user, Action.RESPOND, incident):
        raise PermissionDenied(f"your role in {incident.team} does not allow this")
    form = PublicUpdateForm(request.POST)
    try:
        if not form.is_valid():
            raise ServiceError(_first_error(form))
        data = form.cleaned_data
        page = publishing.pages_for_incident(incident).filter(pk=data["page"]).first()
        if page is None:
            raise ServiceError("choose a status page that covers this incident's service")
        publishing.post_update(
            page,
            actor=request.user,
            incident=incident,
            status=data["status"],
            body=data["body"],
            title=data["title"] or None,
            impact=data["impact"] or None,
            component_ids=data["components"] or None,
        )
    except ServiceError as error:
        messages.error(request, error.message[:1].upper() + error.message[1:])
    else:
        messages.success(request, f"Public update posted on {page.title}.")
    return redirect(incident.get_absolute_url())
