"""The rows of the Alerts table, written as HTML here rather than by the template engine.

A page holds up to a hundred rows of a dozen cells; through Django templates (variable lookups,
autoescaping, localisation of every number, a ``{% url %}`` and two ``|date`` per row) that cost
more than every query of the page together — most of the page's time at a million alerts. The
markup is the one ``monitoring/_alerts_table.html`` used to loop over; every value is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from monitoring.models import Alert
from monitoring.views.common import since_text, time_cell

SEVERITY_CLASS = {"critical": "badge-critical", "error": "badge-firing", "warning": "badge-warning"}
HIDDEN_LABELS = ("alertname", "severity")
FLAPPING = (
    ' <span class="badge badge-warning" title="Changed state often in the last minutes">'
    "flapping</span>"
)


@dataclass
class RowContext:
    """What every row shares: the clock, who may silence, and the form's fixed parts."""

    now: datetime
    respond_ids: set[int] | None
    page_url: str
    csrf_token: str
    silence_hours: int
    show_team: bool

    def alert_url(self, pk: int) -> str:
        """The alert's page URL, reversed once per page like ``silence_url``."""
        if not hasattr(self, "_alert"):
            self._alert = reverse("alert", args=[0]).rsplit("/0/", 1)
        prefix, suffix = self._alert
        return f"{prefix}/{pk}/{suffix}"

    def silence_url(self, pk: int) -> str:
        """The alert's one-click silence URL: reversed once per page, not once per row."""
        if not hasattr(self, "_silence"):
            self._silence = reverse("alert_silence", args=[0]).rsplit("/0/", 1)
        prefix, suffix = self._silence
        return f"{prefix}/{pk}/{suffix}"


def status_badge(alert: Alert) -> str:
    if not alert.is_firing:
        badge = '<span class="badge badge-ok">resolved</span>'
    elif alert.is_suppressed:
        label = (alert.suppressed_by or {}).get("label", "")
        title = f' title="{escape(str(label))}"' if label else ""
        text = escape(alert.get_suppression_display().lower())
        badge = f'<span class="badge badge-muted"{title}>{text}</span>'
    elif alert.acknowledged_at:
        badge = '<span class="badge badge-acknowledged">acknowledged</span>'
    else:
        badge = '<span class="badge badge-firing">firing</span>'
    return badge + (FLAPPING if alert.is_flapping else "")


def can_silence(alert: Alert, respond_ids: set[int] | None) -> bool:
    return (
        alert.is_firing
        and not alert.is_suppressed
        and (respond_ids is None or alert.team_id in respond_ids)
    )


def alert_row(alert: Alert, ctx: RowContext, service_url: str) -> str:
    moment = alert.starts_at if alert.is_firing else (alert.ends_at or alert.last_change_at)
    labels = sorted((k, v) for k, v in alert.labels.items() if k not in HIDDEN_LABELS)[:4]
    label_html = (
        '<div class="subtle alert-labels">'
        + " ".join(f"<code>{escape(str(k))}={escape(str(v))}</code>" for k, v in labels)
        + "</div>"
        if labels
        else ""
    )
    team = f'<div class="subtle">{escape(alert.team.name)}</div>' if ctx.show_team else ""
    action = ""
    if can_silence(alert, ctx.respond_ids):
        hours = ctx.silence_hours
        action = (
            f'<form method="post" action="{ctx.silence_url(alert.pk)}">'
            f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(ctx.csrf_token)}">'
            f'<input type="hidden" name="next" value="{escape(ctx.page_url)}">'
            f'<button type="submit" class="button button-small button-quiet" '
            f'title="Silence this alert for {hours} hour">Silence {hours} h</button></form>'
        )
    severity = escape(alert.severity)
    return (
        f'<tr id="alert-{alert.pk}" data-alert-id="{alert.pk}" data-status="{escape(alert.status)}"'
        f' data-severity="{severity}">'
        f'<td><span class="badge {SEVERITY_CLASS.get(alert.severity, "badge-muted")}" '
        f'data-severity="{severity}">{escape(alert.get_severity_display())}</span></td>'
        f"<td>{status_badge(alert)}</td>"
        f'<td><a href="{ctx.alert_url(alert.pk)}"><strong>{escape(alert.summary)}</strong></a>'
        f"{label_html}</td>"
        f'<td><a href="{escape(service_url)}">{escape(alert.service.name)}</a>{team}</td>'
        + time_cell(moment, since_text(moment, ctx.now))
        + f'<td class="num hide-narrow">{alert.occurrences}</td>'
        + time_cell(alert.last_seen_at, since_text(alert.last_seen_at, ctx.now), "hide-narrow")
        + f'<td class="actions">{action}</td></tr>'
    )


def alert_rows(alerts: Iterable[Alert], ctx: RowContext) -> SafeString:
    service_urls: dict[int, str] = {}
    rows = []
    for alert in alerts:
        if alert.service_id not in service_urls:
            service_urls[alert.service_id] = reverse(
                "service", args=[alert.team.slug, alert.service.slug]
            )
        rows.append(alert_row(alert, ctx, service_urls[alert.service_id]))
    return mark_safe("\n".join(rows))  # every value above went through escape()
