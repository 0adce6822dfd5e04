"""A postmortem as a Markdown document: the export a team pastes into its wiki or tracker."""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify

from incidents.models import (
    ActionItem,
    Postmortem,
)
from incidents.postmortems.prefill import _when, duration_text

# --- Markdown ---------------------------------------------------------------------------------

_INLINE_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;"})


def md_inline(text: Any) -> str:
    """One line of user text that can sit in a table cell, a list item or a heading.

    Newlines would end the cell or item, a pipe would split the cell, a trailing backslash
    would escape the next delimiter, and angle brackets could smuggle raw HTML into renderers
    that pass it through; all are neutralised. Emphasis and code spans are left alone.
    """
    return " ".join(str(text or "").split()).translate(_INLINE_ESCAPES)


def md_url(url: str) -> str:
    """A URL for an autolink: characters that would end the link or split a cell, encoded."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")


def md_block(text: str) -> str:
    """A section's own Markdown, kept as written; raw HTML is neutralised, not rendered."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    return text.replace("<", "&lt;").replace(">", "&gt;") if text else "_Not written yet._"


def _cell_time(value: str) -> str:
    when = parse_datetime(value or "")
    if when is None:
        return md_inline(value)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_markdown(postmortem: Postmortem, items: list[ActionItem] | None = None) -> str:
    incident = postmortem.incident
    if items is None:
        items = list(postmortem.action_items.select_related("owner").order_by("position", "id"))
    base = settings.TOCSIN_BASE_URL.rstrip("/")
    lines = [
        f"# Postmortem: #{incident.pk} {md_inline(incident.title)}",
        "",
        f"- **Incident:** [#{incident.pk}]({base}{incident.get_absolute_url()})",
        f"- **Service:** {md_inline(incident.service.name)}",
        f"- **Team:** {md_inline(incident.team.name)}",
        f"- **Priority:** {incident.priority}",
        f"- **Opened:** {_when(incident.created_at)} UTC",
    ]
    if incident.resolved_at:
        took = duration_text(incident.resolved_at - incident.created_at)
        lines.append(f"- **Resolved:** {_when(incident.resolved_at)} UTC (after {took})")
    else:
        lines.append("- **Resolved:** not yet")
    author = postmortem.author.get_username() if postmortem.author else "unknown"
    lines += [
        f"- **Postmortem status:** {postmortem.get_status_display()}"
        + (f" ({_when(postmortem.published_at)} UTC)" if postmortem.published_at else ""),
        f"- **Author:** {md_inline(author)}",
        "",
    ]
    for field, heading in (
        ("summary", "Summary"),
        ("impact", "Impact"),
        ("root_cause", "Root cause"),
        ("contributing_factors", "Contributing factors"),
    ):
        lines += [f"## {heading}", "", md_block(getattr(postmortem, field)), ""]
    lines += ["## Timeline", ""]
    if postmortem.timeline:
        lines += ["| Time (UTC) | Event |", "| --- | --- |"]
        lines += [
            f"| {_cell_time(row.get('at', ''))} | {md_inline(row.get('text', ''))} |"
            for row in postmortem.timeline
        ]
    else:
        lines.append("_No timeline._")
    lines += ["", "## Action items", ""]
    if items:
        lines += [
            "| # | Action | Owner | Due | Status | Tracker |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for n, item in enumerate(items, start=1):
            owner = md_inline(item.owner.get_username()) if item.owner else "_unassigned_"
            due = item.due_date.isoformat() if item.due_date else "—"
            tracker = f"<{md_url(item.tracker_url)}>" if item.tracker_url else "—"
            lines.append(
                f"| {n} | {md_inline(item.title)} | {owner} | {due} | "
                f"{item.get_status_display().lower()} | {tracker} |"
            )
    else:
        lines.append("_No action items._")
    return "\n".join(lines) + "\n"


def markdown_filename(postmortem: Postmortem) -> str:
    slug = slugify(postmortem.incident.title)[:60].strip("-") or "incident"
    return f"postmortem-{postmortem.incident_id}-{slug}.md"
