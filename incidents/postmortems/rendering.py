"""Postmortem Markdown shown as HTML, safely.

The sections are written as Markdown (the form says so, the export keeps it). Python-Markdown
(the reference implementation in Python) renders them — tables, nested lists, fenced code and
all — with raw HTML treated as text, and nh3 (Rust's ammonia) then keeps only the tags and
attributes below, with links to http(s) and mailto only: whatever the author types, no script,
event handler or ``javascript:`` link survives. Headings are moved two levels down, under
the section's own. Bare ``https://…`` addresses become links, as people expect from an
incident write-up.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from typing import Any

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown.inlinepatterns import InlineProcessor

TAGS = {
    "p", "br", "hr", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code",
    "strong", "em", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
_BARE_URL = r"(?<![\w/\"'=(<])(https?://[^\s<>()\"']*[^\s<>()\"'.,;:!?])"
_HEADING = re.compile(r"<(/?)h([1-6])>")


class _BareLinks(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[Any, int, int]:
        link = etree.Element("a", {"href": m.group(1)})
        link.text = m.group(1)
        return link, m.start(0), m.end(0)


class _Extension(markdown.Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # Raw HTML is text here, shown as typed (a postmortem of an XSS quotes <script>):
        # without these two, Markdown passes it through and a whole block would vanish.
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        # After the real link patterns (priority 160 and up), before emphasis.
        md.inlinePatterns.register(_BareLinks(_BARE_URL, md), "bare_links", 55)


def render_markdown(source: str, *, heading_offset: int = 2) -> SafeString:
    html = markdown.markdown(
        source or "",
        extensions=["fenced_code", "tables", "sane_lists", "nl2br", _Extension()],
        output_format="html",
    )
    html = _HEADING.sub(lambda m: f"<{m[1]}h{min(6, int(m[2]) + heading_offset)}>", html)
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
    )
    return mark_safe(clean)  # sanitised by nh3 just above
