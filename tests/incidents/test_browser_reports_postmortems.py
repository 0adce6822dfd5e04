"""The Reports page and the postmortem page in a real browser against a real daphne server.

Reports: Chromium draws the two uPlot charts from the figures the server put in the page (the
chart's legend, read under the cursor, shows the server's weekly numbers), the tables show the
exact figures of a known data set, the filter form reloads with filtered figures and the CSV
link downloads the same rows.

Postmortems: a responder starts one on a resolved incident, sees the prefilled timeline, edits
the summary, adds an action item (owner, due date), sees the items table re-fetch itself (htmx)
when an item is added elsewhere, marks an item done and downloads the Markdown export; a viewer
sees the same page read-only.

Both tests save full-page screenshots in their pytest tmp dir and print the paths.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from incidents.lifecycle import services
from incidents.models import ActionItemStatus, Incident, Postmortem
from incidents.postmortems import services as postmortems
from monitoring.models import Service
from tests.incidents.core_support import fire
from tests.incidents.report_support import _incident
from tests.incidents.report_support import build as build_report_data
from tests.live import WebServer

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000  # generous: a loaded 2-core CI machine runs the server and Chromium


@pytest.fixture
def expect() -> Any:
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=WAIT_MS)
    return sync_api.expect


class Problems:
    """Console errors, uncaught page errors and failed documents/resources seen by a page."""

    def __init__(self, page: Any) -> None:
        self.items: list[str] = []
        page.on(
            "console",
            lambda msg: (
                self.items.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: self.items.append(f"page error: {error}"))
        page.on(
            "response",
            lambda r: (
                self.items.append(f"HTTP {r.status} {r.request.method} {r.url}")
                if r.status >= 400
                else None
            ),
        )

    def assert_none(self) -> None:
        assert self.items == []


def open_page(
    browser: Any, server: WebServer, user: Any, path: str, zone: str = "UTC"
) -> tuple[Any, Any, Problems]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, timezone_id=zone
    )
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS * 2)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": server.session_cookie(user),
                "url": server.url,
            }
        ]
    )
    page = context.new_page()
    problems = Problems(page)
    page.goto(server.url + path)
    return context, page, problems


def screenshot(page: Any, path: Path) -> None:
    page.mouse.move(0, 0)  # no hover state (chart cursor, button) in the picture
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def download_text(page: Any, link: Any) -> tuple[str, str]:
    with page.expect_download(timeout=WAIT_MS) as info:
        link.click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


# -- reports -----------------------------------------------------------------------------------
SINCE, UNTIL = "2025-01-13", "2025-02-09"  # four weeks, Monday to Sunday
WEEKS = ["2025-01-13", "2025-01-20", "2025-01-27", "2025-02-03"]


def report_data(crew: Any) -> None:
    """report_support's two weeks, plus a third and a fourth week of Payments incidents.

    Payments per week (incidents, acknowledged, MTTA, resolved, MTTR, missed ack / resolve):
      W1: 3, 2, 7.0, 2, 60.0, 1/1    W2: 1, 1, 2.0, 1, 20.0, 0/0
      W3: 1, 1, 6.0, 1, 40.0, 0/0    W4: 2, 2, 5.5, 1, 61.0, 0/1
    Search has one incident in W1: ack 1 min, resolved 5 min.
    """
    data = build_report_data(crew)
    _incident(data.checkout, datetime(2025, 1, 29, 8, 0, tzinfo=UTC), ack=6, resolved=40)
    late = datetime(2025, 2, 4, 16, 30, tzinfo=UTC)
    _incident(data.ledger, late, ack=8, resolved=61, resolve_breached_at=late + timedelta(hours=1))
    _incident(data.checkout, datetime(2025, 2, 6, 3, 15, tzinfo=UTC), ack=3)


def table_rows(page: Any, which: str) -> list[list[str]]:
    return page.locator(f'[data-report-table="{which}"] tbody tr').evaluate_all(
        "rows => rows.map(r => Array.from(r.cells,"
        " c => c.textContent.replace(/\\s+/g, ' ').trim()))"
    )


def figures(page: Any) -> dict[str, str]:
    return dict(
        page.locator("[data-report-total] [data-figure]").evaluate_all(
            "els => els.map(e => [e.dataset.figure, e.textContent.trim()])"
        )
    )


def chart_legend_at(page: Any, chart: str, week_index: int, weeks: list[str]) -> dict[str, str]:
    """Hover the week's point in a chart; uPlot's legend then shows that week's values."""
    over = page.locator(f'[data-chart="{chart}"] .u-over')
    box = over.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    # The x scale runs from -0.5 to weeks - 0.5: week i sits in the middle of slot i.
    x = box["x"] + box["width"] * (week_index + 0.5) / len(weeks)
    page.mouse.move(x, box["y"] + box["height"] / 2)
    legend = page.locator(f'[data-chart="{chart}"] .u-legend')
    head = legend.locator(".u-series").first.locator(".u-value")
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect(head).to_have_text(weeks[week_index], timeout=WAIT_MS)
    return dict(
        legend.locator(".u-series").evaluate_all(
            "rows => rows.map(r => [r.querySelector('.u-label').textContent.trim(),"
            " r.querySelector('.u-value').textContent.trim()])"
        )
    )


def coloured_pixels(page: Any, chart: str, rgb: tuple[int, int, int]) -> int:
    """How many pixels of a chart's canvas are (about) one series' colour."""
    return page.locator(f'[data-chart="{chart}"] canvas').evaluate(
        """(canvas, rgb) => {
            const context = canvas.getContext('2d');
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
                const d = Math.abs(data[i] - rgb[0]) + Math.abs(data[i + 1] - rgb[1])
                    + Math.abs(data[i + 2] - rgb[2]);
                if (data[i + 3] > 200 && d < 40) n++;
            }
            return n;
        }""",
        list(rgb),
    )


BLUE, RED, AMBER, GREEN = (59, 130, 246), (220, 38, 38), (217, 119, 6), (5, 150, 105)


def assert_charts_drawn(page: Any, expect: Any) -> None:
    for chart, colours in (("counts", (BLUE, RED)), ("times", (AMBER, GREEN))):
        canvas = page.locator(f'[data-chart="{chart}"] canvas')
        expect(canvas).to_have_count(1)
        size = canvas.evaluate("c => [c.width, c.height, c.clientWidth, c.clientHeight]")
        assert all(n > 100 for n in size), (chart, size)
        for colour in colours:
            assert coloured_pixels(page, chart, colour) > 20, (chart, colour)


def test_reports_page_charts_tables_filters_and_csv(crew, web, browser, expect, tmp_path):
    with transaction.atomic():
        report_data(crew)
    payments = crew.team
    context, page, problems = open_page(
        browser, web, crew.admin, f"/reports/?since={SINCE}&until={UNTIL}"
    )
    try:
        expect(page.locator("h1")).to_have_text("Reports")
        assert_charts_drawn(page, expect)

        # All teams (the admin sees Payments and Search).
        assert figures(page) == {
            "incidents": "8",
            "mtta": "4.9 min",  # (4 + 10 + 1 + 2 + 6 + 8 + 3) / 7
            "mttr": "41.0 min",  # (30 + 90 + 5 + 20 + 40 + 61) / 6
            "ack_breaches": "1",
            "resolve_breaches": "2",
        }
        assert table_rows(page, "week") == [
            ["2025-01-13", "4", "3", "5.0", "3", "41.7", "1 / 1"],
            ["2025-01-20", "1", "1", "2.0", "1", "20.0", "0 / 0"],
            ["2025-01-27", "1", "1", "6.0", "1", "40.0", "0 / 0"],
            ["2025-02-03", "2", "2", "5.5", "1", "61.0", "0 / 1"],
        ]
        assert table_rows(page, "team") == [
            ["Payments", "7", "5.5", "48.2", "1 / 2"],
            ["Search", "1", "1.0", "5.0", "0 / 0"],
        ]
        # The charts show the server's weekly figures: uPlot's legend under the cursor.
        assert chart_legend_at(page, "counts", 0, WEEKS) == {
            "Week of": "2025-01-13",
            "Incidents": "4",
            "Missed targets": "2",
        }
        assert chart_legend_at(page, "times", 3, WEEKS) == {
            "Week of": "2025-02-03",
            "MTTA (min)": "5.5",
            "MTTR (min)": "61",
        }
        screenshot(page, tmp_path / "reports-all-teams.png")

        # Filter by team through the form: the page reloads with Payments' figures only.
        page.select_option("#f-team", payments.slug)
        with page.expect_navigation():
            page.get_by_role("button", name="Apply").click()
        expect(page.locator("h1")).to_contain_text("Payments")
        assert f"team={payments.slug}" in page.url
        assert_charts_drawn(page, expect)
        assert figures(page) == {
            "incidents": "7",
            "mtta": "5.5 min",
            "mttr": "48.2 min",
            "ack_breaches": "1",
            "resolve_breaches": "2",
        }
        assert table_rows(page, "week")[0] == ["2025-01-13", "3", "2", "7.0", "2", "60.0", "1 / 1"]
        assert table_rows(page, "team") == [["Payments", "7", "5.5", "48.2", "1 / 2"]]
        assert table_rows(page, "service") == [
            # The admin sees two teams, so services are named with theirs.
            ["Payments / Checkout API", "4", "5.8", "53.3", "1 / 1"],  # (4+10+6+3)/4, (30+90+40)/3
            ["Payments / Ledger", "3", "5.0", "40.5", "0 / 1"],  # (2+8)/2, (20+61)/2
        ]
        assert chart_legend_at(page, "counts", 0, WEEKS)["Incidents"] == "3"

        # The CSV link carries the filters and downloads the same figures, row by row.
        name, text = download_text(page, page.locator("[data-csv-link]"))
        assert name == f"tocsin-incidents-{SINCE}-{UNTIL}.csv"
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:4] == ["week", "team", "service", "incidents"]
        assert rows[1:] == [
            ["2025-01-13", "Payments", "Checkout API", "2", "2", "7.0", "2", "60.0", "1", "1"],
            ["2025-01-13", "Payments", "Ledger", "1", "0", "", "0", "", "0", "0"],
            ["2025-01-20", "Payments", "Ledger", "1", "1", "2.0", "1", "20.0", "0", "0"],
            ["2025-01-27", "Payments", "Checkout API", "1", "1", "6.0", "1", "40.0", "0", "0"],
            ["2025-02-03", "Payments", "Checkout API", "1", "1", "3.0", "0", "", "0", "0"],
            ["2025-02-03", "Payments", "Ledger", "1", "1", "8.0", "1", "61.0", "0", "1"],
        ]
        per_week = {w: 0 for w in WEEKS}
        for row in rows[1:]:
            per_week[row[0]] += int(row[3])
        assert [str(per_week[w]) for w in WEEKS] == [r[1] for r in table_rows(page, "week")]

        # Narrow the date range through the form: two weeks, and the CSV link follows.
        page.fill("#f-since", "2025-01-27")
        with page.expect_navigation():
            page.get_by_role("button", name="Apply").click()
        expect(page.locator("#summary-head")).to_have_text("2025-01-27 to 2025-02-09")
        assert_charts_drawn(page, expect)
        assert figures(page) == {
            "incidents": "3",
            "mtta": "5.7 min",  # (6 + 8 + 3) / 3
            "mttr": "50.5 min",  # (40 + 61) / 2
            "ack_breaches": "0",
            "resolve_breaches": "1",
        }
        assert [r[0] for r in table_rows(page, "week")] == ["2025-01-27", "2025-02-03"]
        assert chart_legend_at(page, "counts", 1, WEEKS[2:])["Incidents"] == "2"
        href = page.locator("[data-csv-link]").get_attribute("href")
        assert re.search(r"since=2025-01-27", href) and f"team={payments.slug}" in href
        _, text = download_text(page, page.locator("[data-csv-link]"))
        assert [r[0] for r in csv.reader(io.StringIO(text))][1:] == [
            "2025-01-27",
            "2025-02-03",
            "2025-02-03",
        ]
        screenshot(page, tmp_path / "reports-payments.png")
        problems.assert_none()
    finally:
        context.close()


# -- postmortems -------------------------------------------------------------------------------
def resolved_incident(crew: Any) -> Incident:
    service = Service.objects.create(team=crew.team, name="Checkout API")
    start = timezone.now() - timedelta(hours=2)
    fire(service, start)
    incident = Incident.objects.get()
    services.acknowledge(incident, actor=crew.responder, now=start + timedelta(minutes=3))
    services.add_note(incident, "rolled back the 14:02 deploy", actor=crew.responder)
    services.resolve(incident, actor=crew.responder, now=start + timedelta(minutes=50))
    return incident


def test_postmortem_page_for_a_responder_and_read_only_for_a_viewer(
    crew, web, browser, expect, tmp_path
):
    with transaction.atomic():
        incident = resolved_incident(crew)
    path = f"/incidents/{incident.pk}/postmortem/"
    due = (timezone.now() + timedelta(days=14)).date().isoformat()
    # West of UTC: a due date shown as a local time would move to the day before.
    context, page, problems = open_page(browser, web, crew.responder, path, "America/New_York")
    try:
        # Start it: the button posts, the page comes back prefilled from the incident.
        expect(page.locator("#start-head")).to_have_text("No postmortem yet")
        with page.expect_navigation():
            page.get_by_role("button", name="Write postmortem").click()
        expect(page.locator(".messages")).to_contain_text("Postmortem started")
        timeline = page.locator("#id_timeline")
        expect(timeline).to_be_visible()
        expect(timeline).to_have_value(
            re.compile(r"Note by responder: rolled back the 14:02 deploy")
        )
        expect(timeline).to_have_value(re.compile(r"Acknowledged by responder"))
        expect(page.locator("#id_summary")).to_have_value(re.compile(r"after 50 min"))
        expect(page.locator("#live-status")).to_have_attribute("data-state", "connected")

        # Edit the summary and save.
        summary = "The 14:02 deploy doubled checkout latency; rolled back after 50 minutes."
        page.fill("#id_summary", summary)
        with page.expect_navigation():
            page.locator("#postmortem-form").get_by_role("button", name="Save").click()
        expect(page.locator(".messages")).to_contain_text("Postmortem saved.")
        expect(page.locator("#id_summary")).to_have_value(summary)
        assert Postmortem.objects.get(incident=incident).summary == summary

        # Add an action item with an owner and a due date.
        form = page.locator("#add-item-form")
        form.get_by_label("Action").fill("Add a latency canary to the deploy pipeline")
        form.get_by_label("Owner").select_option(label="responder")
        form.get_by_label("Due").fill(due)
        with page.expect_navigation():
            form.get_by_role("button", name="Add action item").click()
        expect(page.locator(".messages")).to_contain_text("Action item added.")
        items = page.locator("#action-items")
        row = items.locator("tr[data-action-item]").filter(has_text="latency canary")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(1)).to_have_text("responder")
        expect(row.locator("td").nth(2)).to_have_text(due)
        expect(row.locator("td").nth(3)).to_have_text("open")
        expect(items.locator(".card-head")).to_contain_text("1 open")

        # An item added elsewhere (another responder, the API) arrives over the live socket,
        # and htmx re-fetches the table in place: no navigation.
        expect(page.locator("#live-status")).to_have_attribute("data-state", "connected")
        page.evaluate("window.__same_page = true")
        pm = Postmortem.objects.get(incident=incident)
        with transaction.atomic():
            postmortems.add_action_item(pm, actor=crew.manager, title="Page on p99 latency")
        expect(items.locator("tr[data-action-item]")).to_have_count(2)
        expect(items.locator(".card-head")).to_contain_text("2 open")
        assert page.evaluate("window.__same_page === true")

        # Mark the first one done.
        row = items.locator("tr[data-action-item]").filter(has_text="latency canary")
        with page.expect_navigation():
            row.get_by_role("button", name="Done").click()
        expect(page.locator(".messages")).to_contain_text("is done")
        row = page.locator("#action-items tr[data-action-item]").filter(has_text="latency canary")
        expect(row.locator("td").nth(3)).to_have_text("done")
        expect(row.get_by_role("button", name="Reopen")).to_be_visible()
        expect(page.locator("#action-items .card-head")).to_contain_text("1 open")
        item = pm.action_items.get(title__contains="latency canary")
        assert item.status == ActionItemStatus.DONE and item.owner == crew.responder

        # "Edit" opens the item's own form in place, prefilled; closing it hides it again.
        other = page.locator("#action-items tr[data-action-item]").filter(has_text="p99")
        other.locator("summary", has_text="Edit").click()
        expect(other.get_by_label("Action")).to_have_value("Page on p99 latency")
        expect(other.get_by_role("button", name="Save")).to_be_visible()
        screenshot(page, tmp_path / "postmortem-item-edit.png")
        other.locator("summary", has_text="Edit").click()
        expect(other.get_by_role("button", name="Save")).to_be_hidden()

        # The Markdown export has the summary and the action item.
        name, text = download_text(page, page.get_by_role("link", name="Export Markdown"))
        assert name.startswith(f"postmortem-{incident.pk}-") and name.endswith(".md")
        assert f"## Summary\n\n{summary}\n" in text
        assert (
            f"| 1 | Add a latency canary to the deploy pipeline | responder | {due} | done | — |"
            in text
        )
        assert "| 2 | Page on p99 latency | _unassigned_ | — | open | — |" in text
        assert "rolled back the 14:02 deploy" in text
        screenshot(page, tmp_path / "postmortem-responder.png")
        problems.assert_none()
    finally:
        context.close()

    # A viewer reads the same page: no forms, no buttons that change anything.
    context, page, problems = open_page(browser, web, crew.viewer, path)
    try:
        expect(page.locator('[data-section="summary"]')).to_contain_text(summary)
        expect(page.locator("[data-postmortem-timeline]")).to_contain_text(
            "rolled back the 14:02 deploy"
        )
        expect(page.locator("#action-items tr[data-action-item]")).to_have_count(2)
        assert page.locator("#postmortem-form, #add-item-form").count() == 0
        assert page.locator("main form").count() == 0
        assert page.locator("main textarea, main select, main input").count() == 0
        assert page.locator("main button").count() == 0
        expect(page.get_by_role("link", name="Export Markdown")).to_be_visible()
        screenshot(page, tmp_path / "postmortem-viewer.png")
        problems.assert_none()
    finally:
        context.close()
