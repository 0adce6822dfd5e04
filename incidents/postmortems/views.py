"""The postmortem pages: one incident's postmortem (edit, review, publish, action items), its
Markdown export, and the list of postmortems with their open action items.

Thin views over ``incidents.postmortems.services``. Same rules as the incident pages: someone who
may not
view the incident's team gets 404, a viewer who tries to write gets 403, whatever the templates
show. The action items table re-fetches itself when ``postmortem.*`` events arrive live.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST

from incidents.lifecycle.views import STATUS_CLASS as INCIDENT_STATUS_CLASS
from incidents.models import (
    ActionItem,
    ActionItemStatus,
    Incident,
    Postmortem,
    PostmortemStatus,
)
from incidents.postmortems import markdown
from incidents.postmortems import services as postmortems
from incidents.postmortems.rendering import render_markdown
from tocsin.forms import add_service_error
from tocsin.models import Event
from tocsin.permissions import Action, can, scope
from tocsin.services import ServiceError

PAGE_SIZE = 100
STATUS_CLASS = {"draft": "badge-muted", "in_review": "badge-warning", "published": "badge-ok"}
# The buttons offered for each status: (target status, label).
NEXT_STEPS = {
    PostmortemStatus.DRAFT: [("in_review", "Send for review"), ("published", "Publish")],
    PostmortemStatus.IN_REVIEW: [("draft", "Back to draft"), ("published", "Publish")],
    PostmortemStatus.PUBLISHED: [("draft", "Reopen for editing")],
}
_TEXTAREA = {"rows": 6, "class": "input-wide"}


# -- forms -------------------------------------------------------------------------------------
class PostmortemForm(forms.Form):
    summary = forms.CharField(
        required=False, max_length=postmortems.MAX_TEXT, widget=forms.Textarea(attrs=_TEXTAREA)
    )
    impact = forms.CharField(
        required=False,
        max_length=postmortems.MAX_TEXT,
        widget=forms.Textarea(attrs=_TEXTAREA),
        help_text="Who and what was affected, for how long.",
    )
    root_cause = forms.CharField(
        required=False, max_length=postmortems.MAX_TEXT, widget=forms.Textarea(attrs=_TEXTAREA)
    )
    contributing_factors = forms.CharField(
        required=False, max_length=postmortems.MAX_TEXT, widget=forms.Textarea(attrs=_TEXTAREA)
    )
    timeline = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "class": "input-wide", "spellcheck": "false"}),
        help_text="One line per entry: the time in UTC (YYYY-MM-DD HH:MM:SS), then what happened. "
        "Delete lines to trim, edit them to annotate, add your own.",
    )


class ActionItemForm(forms.Form):
    title = forms.CharField(max_length=postmortems.TITLE_MAX, label="Action")
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False, empty_label="Unassigned"
    )
    due_date = forms.DateField(
        required=False, label="Due", widget=forms.DateInput(attrs={"type": "date"})
    )
    tracker_url = forms.URLField(
        required=False, max_length=postmortems.URL_MAX, label="Tracker link", assume_scheme="https"
    )

    def __init__(self, *args: Any, owners: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["owner"]
        field.queryset = get_user_model().objects.filter(pk__in=[u.pk for u in owners])
        field.choices = [("", "Unassigned"), *((u.pk, u.get_username()) for u in owners)]
        field.help_text = "A member of the incident's team."


# -- lookups -----------------------------------------------------------------------------------
def _incident_or_404(request: HttpRequest, pk: int, action: Action = Action.VIEW) -> Incident:
    incident = (
        scope(Incident.objects.all(), request.user, Action.VIEW)
        .select_related("team", "service")
        .filter(pk=pk)
        .first()
    )
    if incident is None:
        raise Http404("no such incident")
    if not can(request.user, action, incident):
        raise PermissionDenied(f"your role in {incident.team} does not allow this")
    return incident


def _postmortem_of(incident: Incident) -> Postmortem | None:
    found = Postmortem.objects.select_related("author").filter(incident=incident).first()
    if found is not None:
        found.incident = incident
    return found


def _postmortem_or_404(request: HttpRequest, pk: int, action: Action) -> Postmortem:
    postmortem = _postmortem_of(_incident_or_404(request, pk, action))
    if postmortem is None:
        raise Http404("this incident has no postmortem yet")
    return postmortem


def _item_or_404(postmortem: Postmortem, item_id: int) -> ActionItem:
    item = ActionItem.objects.filter(postmortem=postmortem, pk=item_id).first()
    if item is None:
        raise Http404("no such action item")
    item.postmortem = postmortem
    return item


def _items(postmortem: Postmortem) -> list[ActionItem]:
    today = timezone.now().date()
    items = list(postmortem.action_items.select_related("owner").order_by("position", "id"))
    for item in items:
        item.overdue = item.is_overdue(today)
    return items


# -- the postmortem page -----------------------------------------------------------------------
def _page_context(
    request: HttpRequest,
    incident: Incident,
    postmortem: Postmortem | None,
    *,
    form: PostmortemForm | None = None,
    item_form: ActionItemForm | None = None,
    edit_item: tuple[int, ActionItemForm] | None = None,
) -> dict[str, Any]:
    may_write = can(request.user, Action.RESPOND, incident)
    incident.status_class = INCIDENT_STATUS_CLASS.get(incident.status, "badge-muted")
    context: dict[str, Any] = {
        "incident": incident,
        "postmortem": postmortem,
        "may_write": may_write,
    }
    if postmortem is None:
        return context
    editable = may_write and not postmortem.is_published
    owners = postmortems.owner_choices(postmortem) if may_write else []
    items = _items(postmortem)
    if may_write:
        for item in items:
            if edit_item and edit_item[0] == item.pk:
                item.form = edit_item[1]
            else:
                item.form = ActionItemForm(
                    owners=owners,
                    prefix=f"item-{item.pk}",
                    initial={
                        "title": item.title,
                        "owner": item.owner_id,
                        "due_date": item.due_date,
                        "tracker_url": item.tracker_url,
                    },
                )
    if editable and form is None:
        form = PostmortemForm(
            initial={
                **{f: getattr(postmortem, f) for f in postmortems.TEXT_FIELDS},
                "timeline": postmortems.timeline_to_text(postmortem.timeline),
            }
        )
    rows = []
    for row in postmortem.timeline:
        rows.append({**row, "when": parse_datetime(row.get("at") or "")})
    context.update(
        {
            "status_class": STATUS_CLASS.get(postmortem.status, "badge-muted"),
            "editable": editable,
            "form": form if editable else None,
            "items": items,
            "open_count": sum(1 for i in items if i.is_open),
            "item_form": (item_form or ActionItemForm(owners=owners)) if may_write else None,
            "next_steps": NEXT_STEPS.get(postmortem.status, []) if may_write else [],
            "rows": rows,
            "sections": [
                (heading, render_markdown(text))
                for heading, text in (
                    ("Summary", postmortem.summary),
                    ("Impact", postmortem.impact),
                    ("Root cause", postmortem.root_cause),
                    ("Contributing factors", postmortem.contributing_factors),
                )
            ],
        }
    )
    return context


def _render_page(
    request: HttpRequest, incident: Incident, status: int = 200, **kw: Any
) -> HttpResponse:
    postmortem = kw.pop("postmortem", None) or _postmortem_of(incident)
    last_event_id = kw.pop("last_event_id", 0)
    context = _page_context(request, incident, postmortem, **kw)
    context["last_event_id"] = last_event_id
    return render(request, "incidents/postmortem.html", context, status=status)


@login_required
def postmortem_page(request: HttpRequest, pk: int) -> HttpResponse:
    """GET shows it; POST (responders) starts it, prefilled from the incident's timeline."""
    if request.method == "POST":
        incident = _incident_or_404(request, pk, Action.RESPOND)
        try:
            postmortems.create(incident, actor=request.user)
        except ServiceError as error:
            messages.info(request, error.message[:1].upper() + error.message[1:] + ".")
        else:
            messages.success(request, "Postmortem started from the incident's timeline.")
        return redirect("postmortem", pk=incident.pk)
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    incident = _incident_or_404(request, pk)
    return _render_page(request, incident, last_event_id=Event.objects.newest_id_for(request.user))


@login_required
@require_GET
def postmortem_items(request: HttpRequest, pk: int) -> HttpResponse:
    """The action items table alone, re-fetched when postmortem events arrive live."""
    incident = _incident_or_404(request, pk)
    postmortem = _postmortem_of(incident)
    if postmortem is None:
        raise Http404("this incident has no postmortem yet")
    context = _page_context(request, incident, postmortem)
    return render(request, "incidents/_postmortem_items.html", context)


@login_required
@require_POST
def postmortem_edit(request: HttpRequest, pk: int) -> HttpResponse:
    postmortem = _postmortem_or_404(request, pk, Action.RESPOND)
    incident = postmortem.incident
    form = PostmortemForm(request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        try:
            data["timeline"] = postmortems.timeline_from_text(data["timeline"], postmortem.timeline)
            postmortems.update(postmortem, actor=request.user, **data)
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Postmortem saved.")
            return redirect("postmortem", pk=incident.pk)
    return _render_page(request, incident, status=400, postmortem=postmortem, form=form)


@login_required
@require_POST
def postmortem_status(request: HttpRequest, pk: int) -> HttpResponse:
    postmortem = _postmortem_or_404(request, pk, Action.RESPOND)
    try:
        postmortems.set_status(postmortem, request.POST.get("status", ""), actor=request.user)
    except ServiceError as error:
        messages.error(request, error.message[:1].upper() + error.message[1:] + ".")
        return _render_page(request, postmortem.incident, status=400, postmortem=postmortem)
    messages.success(request, f"Postmortem {postmortem.get_status_display().lower()}.")
    return redirect("postmortem", pk=pk)


@login_required
@require_POST
def action_item_add(request: HttpRequest, pk: int) -> HttpResponse:
    postmortem = _postmortem_or_404(request, pk, Action.RESPOND)
    form = ActionItemForm(request.POST, owners=postmortems.owner_choices(postmortem))
    if form.is_valid():
        try:
            postmortems.add_action_item(postmortem, actor=request.user, **form.cleaned_data)
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Action item added.")
            return redirect(reverse("postmortem", args=[pk]) + "#action-items")
    return _render_page(
        request, postmortem.incident, status=400, postmortem=postmortem, item_form=form
    )


ITEM_ACTIONS = ("edit", "done", "reopen", "delete")


@login_required
@require_POST
def action_item_action(request: HttpRequest, pk: int, item_id: int, action: str) -> HttpResponse:
    if action not in ITEM_ACTIONS:
        raise Http404("no such action")
    postmortem = _postmortem_or_404(request, pk, Action.RESPOND)
    item = _item_or_404(postmortem, item_id)
    done = redirect(reverse("postmortem", args=[pk]) + "#action-items")
    if action == "done":
        postmortems.complete_action_item(item, actor=request.user)
        messages.success(request, f"“{item.title}” is done.")
        return done
    if action == "reopen":
        postmortems.update_action_item(item, actor=request.user, status=ActionItemStatus.OPEN)
        messages.success(request, f"“{item.title}” is open again.")
        return done
    if action == "delete":
        postmortems.delete_action_item(item, actor=request.user)
        messages.success(request, f"“{item.title}” removed.")
        return done
    form = ActionItemForm(
        request.POST, owners=postmortems.owner_choices(postmortem), prefix=f"item-{item.pk}"
    )
    if form.is_valid():
        try:
            postmortems.update_action_item(item, actor=request.user, **form.cleaned_data)
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Action item saved.")
            return done
    return _render_page(
        request, postmortem.incident, status=400, postmortem=postmortem, edit_item=(item.pk, form)
    )


@login_required
@require_GET
def postmortem_markdown(request: HttpRequest, pk: int) -> HttpResponse:
    postmortem = _postmortem_or_404(request, pk, Action.VIEW)
    return markdown_response(postmortem)


def markdown_response(postmortem: Postmortem) -> HttpResponse:
    """The export as a download (also served by the API)."""
    response = HttpResponse(
        markdown.render_markdown(postmortem), content_type="text/markdown; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(
        True, markdown.markdown_filename(postmortem)
    )
    return response


# -- the list ----------------------------------------------------------------------------------
class PostmortemFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *PostmortemStatus.choices], required=False
    )
    mine = forms.BooleanField(required=False)
    page = forms.IntegerField(required=False, min_value=1)


@login_required
def postmortem_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = PostmortemFilterForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    today = timezone.now().date()
    visible: QuerySet[Postmortem] = scope(Postmortem.objects.all(), user, Action.VIEW)
    if data.get("status"):
        visible = visible.filter(status=data["status"])
    open_items = Q(action_items__status=ActionItemStatus.OPEN)
    mine_only = bool(data.get("mine"))
    if mine_only:
        visible = visible.filter(
            pk__in=ActionItem.objects.filter(owner=user, status=ActionItemStatus.OPEN).values(
                "postmortem_id"
            )
        )
    listed = (
        visible.select_related("incident", "incident__service", "team", "author")
        .annotate(
            open_items=Count("action_items", filter=open_items),
            overdue_items=Count(
                "action_items", filter=open_items & Q(action_items__due_date__lt=today)
            ),
        )
        .order_by("-updated_at", "-id")
    )
    page = Paginator(listed, PAGE_SIZE).get_page(data.get("page") or 1)
    for postmortem in page.object_list:
        postmortem.status_class = STATUS_CLASS.get(postmortem.status, "badge-muted")
    my_items = list(
        scope(
            ActionItem.objects.filter(owner=user, status=ActionItemStatus.OPEN),
            user,
            Action.VIEW,
            "postmortem__team",
        )
        .select_related("postmortem__incident")
        .order_by("due_date", "id")[:PAGE_SIZE]
    )
    for item in my_items:
        item.overdue = item.is_overdue(today)
    query = urlencode(
        [
            (k, v)
            for k, v in (("status", data.get("status")), ("mine", "1" if mine_only else ""))
            if v
        ]
    )
    context = {
        "form": form,
        "page": page,
        "postmortems": page.object_list,
        "my_items": my_items,
        "mine": mine_only,
        "status": data.get("status") or "",
        "status_choices": PostmortemStatus.choices,
        "query": query,
    }
    return render(request, "incidents/postmortems.html", context, status=200 if valid else 400)
