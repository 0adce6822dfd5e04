"""Postmortem sections are Markdown, shown as HTML on the page: a safe subset, nothing raw."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from incidents.models import Postmortem
from incidents.postmortems.rendering import render_markdown
from tests.incidents.notify_support import make_incident


def test_the_subset_becomes_markup():
    html = str(
        render_markdown(
            "# Cause\nThe **cache** was *cold*, see `redis-cli info`.\n\n"
            "- one\n- two\n\n1. first\n2. second\n\n> quoted\n\n"
            "```\nSELECT 1 < 2;\n```\n[runbook](https://wiki.example.org/r?a=1&b=2) and https://x.example.org/p."
        )
    ).replace("\n", "")
    assert "<h3>Cause</h3>" in html
    assert "<strong>cache</strong>" in html and "<em>cold</em>" in html
    assert "<code>redis-cli info</code>" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert "<ol><li>first</li><li>second</li></ol>" in html
    assert "<blockquote><p>quoted</p></blockquote>" in html
    assert "<pre><code>SELECT 1 &lt; 2;</code></pre>" in html
    wiki = "https://wiki.example.org/r?a=1&amp;b=2"
    assert f'<a href="{wiki}" rel="nofollow noopener noreferrer">runbook</a>' in html
    assert '<a href="https://x.example.org/p" rel="nofollow noopener noreferrer">' in html


@pytest.mark.parametrize(
    "evil",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        '[x](https://a.example.org/" onmouseover="alert(1))',
        "**<b onclick=alert(1)>**",
        "`</code><script>x</script>`",
        'https://a.example.org/"><script>alert(1)</script>',
    ],
)
def test_nothing_the_author_types_becomes_a_tag_or_a_script(evil):
    """Raw HTML, event handlers and javascript: links: whatever Markdown lets through, nh3
    removes (the attribute checks below parse the output as a browser would)."""
    tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, attrs))

    Collect().feed(str(render_markdown(evil)))
    allowed = {"p", "br", "a", "code", "pre", "strong", "em", "ul", "ol", "li", "blockquote"}
    assert "<script" not in str(render_markdown(evil))
    for tag, attrs in tags:
        assert tag in allowed
        for name, value in attrs:
            assert name in ("href", "rel")
            if name == "href":
                assert value.startswith(("https://", "http://", "mailto:"))
                assert "<" not in value


def test_the_page_renders_the_sections(crew):
    incident = make_incident(crew.team)
    Postmortem.objects.create(
        incident=incident,
        team=crew.team,
        summary="**Bold** claim\nsecond line",
        root_cause="<script>alert(1)</script> and `<script>` in backticks",
    )
    client = Client()
    client.force_login(crew.viewer)
    text = client.get(f"/incidents/{incident.pk}/postmortem/").content.decode()
    assert "<p><strong>Bold</strong> claim<br>\nsecond line</p>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and" in text  # shown as typed, inert
    assert "<script>alert(1)" not in text
    assert "<code>&lt;script&gt;</code> in backticks" in text  # code shows as written


def test_tables_and_nested_lists_render_as_engineers_write_them():
    html = str(render_markdown("| when | what |\n|---|---|\n| 10:02 | paged |\n\n- a\n    - b\n"))
    assert "<table>" in html and "<td>10:02</td>" in html
    assert html.count("<ul>") == 2  # the nested list is a list inside the item
