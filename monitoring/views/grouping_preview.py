"""The grouping preview of a service: paste a payload as a sender would send it, see what each
alert in it would do (a new alert or an update of one already stored, which incident it would
open or join, and why), with nothing stored: a preview, like the silence preview."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from monitoring import service_setup, services
from monitoring.ingest import kinds as integration_kinds
from monitoring.ingest.kinds.base import Invalid, load_json
from monitoring.models import Alert, Service
from monitoring.views.common import service_or_404

MAX_PAYLOAD = 256 * 1024
MAX_SHOWN = 50
PREVIEW_KINDS = [k for k in services.USER_KINDS if hasattr(integration_kinds.get(k), "parse")]


class PreviewForm(forms.Form):
    kind = forms.ChoiceField(
        label="Sent as",
        choices=[(k.value, k.label) for k in PREVIEW_KINDS],
        help_text="The integration kind whose format the payload is in.",
    )
    payload = forms.CharField(
        max_length=MAX_PAYLOAD,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="The JSON body the sender posts (e.g. an Alertmanager webhook). Nothing is "
        "stored.",
    )


@dataclass
class PreviewRow:
    summary: str
    labels: dict[str, str]
    fingerprint: str
    sender_fingerprint: bool
    existing: Alert | None
    status: str
    grouping: service_setup.GroupingPreview | None


def _rows(service: Service, kind: str, payload: str) -> list[PreviewRow]:
    data = load_json(payload.encode())
    items = integration_kinds.parser_for(kind).parse(data, timezone.now())[:MAX_SHOWN]
    fingerprints = [item.get_fingerprint() for item in items]
    existing = {
        a.fingerprint: a
        for a in Alert.objects.filter(service=service, fingerprint__in=fingerprints)
    }
    return [
        PreviewRow(
            summary=item.get_summary(),
            labels=dict(sorted(item.labels.items())),
            fingerprint=item.get_fingerprint(),
            sender_fingerprint=bool(item.fingerprint),
            existing=existing.get(item.get_fingerprint()),
            status=item.status,
            grouping=service_setup.preview_grouping(service, item),
        )
        for item in items
    ]


@login_required
def grouping_preview(request: HttpRequest, team_slug: str, service_slug: str) -> HttpResponse:
    service = service_or_404(request, team_slug, service_slug)
    rows: list[PreviewRow] | None = None
    status = 200
    if request.method == "POST":
        form = PreviewForm(request.POST)
        if form.is_valid():
            try:
                rows = _rows(service, form.cleaned_data["kind"], form.cleaned_data["payload"])
            except ValueError as exc:  # json.JSONDecodeError and the parsers' Invalid
                form.add_error("payload", _message(exc))
        if not form.is_valid():
            status = 400
    else:
        form = PreviewForm()
    return render(
        request,
        "monitoring/grouping_preview.html",
        {"service": service, "form": form, "rows": rows, "shown": MAX_SHOWN},
        status=status,
    )


def _message(exc: Exception) -> str:
    if isinstance(exc, Invalid):
        return f"Not a valid payload for this kind: {exc.message}"
    return f"Not a valid payload: {exc}"
