"""Screenshots of the dashboard, a service page, an alert page and an incident page at 1366 px
and 390 px, from a real daphne server and Debian's chromium (issue #13); none of those pages
scrolls sideways at 390 px.

The images go to pytest's temporary directory; with ``TOCSIN_WRITE_SCREENSHOTS=1`` (``make
screenshots``) to ``docs/screenshots/<page>-<width>.png``. The data are fixed (names, labels,
notes), so regenerated images differ only in ages, clocks and an ingest key's prefix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from incidents.escalation.engine import advance_escalations
from incidents.lifecycle import services as incidents
from incidents.models import (
    EscalationPolicy,
    EscalationStep,
    Incident,
    ServiceIncidentSettings,
)
from incidents.notifications import outbox
from incidents.oncall import services as oncall
from incidents.oncall.models import Rotation
from monitoring import services as monitoring
from monitoring.inputs import AlertInput
from monitoring.models import Alert
from monitoring.pipeline import process
from probes.checks.models import Check
from probes.heartbeats.models import Heartbeat
from tests.conftest import PASSWORD
from tests.live import ROOT
from tocsin.models import Membership, Role, Team

pytestmark = [pytest.mark.browser, pytest.mark.live]

DOCS = ROOT / "docs" / "screenshots"
VIEWPORTS = {1366: {"width": 1366, "height": 900}, 390: {"width": 390, "height": 844}}
PEOPLE = [  # username, first name, last name, role
    ("alice", "Alice", "Martin", Role.MANAGER),
    ("bob", "Bob", "Chen", Role.RESPONDER),
    ("carol", "Carol", "Diaz", Role.RESPONDER),
]


@dataclass
class Shown:
    """What the screenshots show: each page's path and heading, and who looks at them."""

    user: Any
    pages: dict[str, tuple[str, str]]


def fire(service: Any, name: str, severity: str, summary: str, ago: timedelta, **labels: str):
    """An Alertmanager-like alert that says it started ``ago``, through the real pipeline (which
    receives it now: the event log's times are the real ones)."""
    now = timezone.now()
    item = AlertInput(
        labels={"alertname": name, "service": service.slug, **labels},
        severity=severity,
        summary=summary,
        description=f"{summary}. See the runbook before restarting anything.",
        annotations={
            "summary": summary,
            "runbook_url": f"https://runbooks.example.org/{service.slug}/{name.lower()}",
        },
        generator_url=f"https://prometheus.example.org/graph?g0.expr={name}",
        starts_at=now - ago,
    )
    process(service, [item], source="alertmanager")
    return Alert.objects.get(service=service, labels__alertname=name)


@pytest.fixture
def shown(transactional_db: None) -> Shown:
    """A small team's afternoon: three services, alerts firing, an incident being worked on,
    a schedule and an escalation policy."""
    User = get_user_model()
    team = Team.objects.create(name="Payments", description="Checkout, card vault, ledger")
    people = {}
    for username, first, last, role in PEOPLE:
        people[username] = User.objects.create_user(
            username=username,
            email=f"{username}@example.org",
            password=PASSWORD,
            first_name=first,
            last_name=last,
        )
        Membership.objects.create(team=team, user=people[username], role=role)
    alice, bob, carol = people["alice"], people["bob"], people["carol"]

    checkout = monitoring.create_service(
        team,
        "Checkout API",
        description="Takes orders and payments from the web shop and the mobile apps.",
        tags=["tier-1", "eu-west"],
        runbook_url="https://runbooks.example.org/checkout-api",
    )
    vault = monitoring.create_service(team, "Card vault", tags=["pci"])
    ledger = monitoring.create_service(team, "Ledger", tags=["tier-2"])
    monitoring.create_integration(checkout, "alertmanager", name="Prometheus")
    Check.objects.create(
        service=checkout,
        name="Checkout health",
        kind="http",
        config={"url": "https://checkout.example.org/health"},
        state="up",
    )
    Heartbeat.objects.create(
        service=ledger, name="Nightly ledger export", slug="ledger-export", status="down"
    )

    schedule = oncall.create_schedule(team, "Payments primary", time_zone="Europe/Paris")
    monday = datetime(2026, 1, 5, 9, tzinfo=UTC)  # a fixed start: a stable rotation
    oncall.add_layer(
        schedule,
        name="Weekly",
        participants=[bob, carol, alice],
        rotation=Rotation.WEEKLY,
        starts_at=monday,
    )
    policy = EscalationPolicy.objects.create(team=team, name="Payments on call")
    EscalationStep.objects.create(policy=policy, position=0, schedule=schedule)
    EscalationStep.objects.create(policy=policy, position=1, delay_minutes=10, user_ids=[alice.pk])
    for service in (checkout, vault, ledger):
        ServiceIncidentSettings.objects.create(service=service, escalation_policy=policy)

    errors = fire(
        checkout,
        "CheckoutHighErrorRate",
        "critical",
        "Checkout API: 7.4% of requests fail with 5xx",
        timedelta(minutes=23),
        cluster="eu-west-1",
        route="/v2/orders",
    )
    fire(
        checkout,
        "CheckoutLatencyP99",
        "warning",
        "Checkout API: p99 latency 1.8 s (SLO 800 ms)",
        timedelta(minutes=17),
        cluster="eu-west-1",
    )
    fire(
        vault,
        "VaultCertificateExpiry",
        "warning",
        "Card vault: TLS certificate expires in 6 days",
        timedelta(hours=3),
    )
    fire(
        ledger,
        "LedgerReplicationLag",
        "error",
        "Ledger: replica 42 s behind the primary",
        timedelta(minutes=48),
        instance="ledger-db-2",
    )
    advance_escalations()
    outbox.send_due_deliveries()  # the test settings' mail backend: sent

    incident = Incident.objects.get(alert_links__alert=errors)
    incidents.acknowledge(incident, actor=bob)
    incidents.set_commander(incident, bob, actor=alice)
    incidents.add_note(
        incident,
        "Errors started with the 14:02 deploy of checkout 2.31; rolling back to 2.30.",
        actor=bob,
    )
    incidents.post_status_update(
        incident,
        "Some card payments fail; we are rolling back the last release.",
        actor=alice,
    )
    incidents.add_note(incident, "Rollback done; error rate back under 1%.", actor=carol)
    return Shown(
        user=alice,
        pages={
            "dashboard": (reverse("dashboard"), "Dashboard"),
            "service": (reverse("service", args=[team.slug, checkout.slug]), "Checkout API"),
            "alert": (reverse("alert", args=[errors.pk]), errors.summary),
            "incident": (incident.get_absolute_url(), f"#{incident.pk} {incident.title}"),
        },
    )


# On a phone, these tables show each row as wrapped lines rather than columns cut off in a
# scrolling card (the card whose heading has this id).
STACKED_TABLES = {"service": "firing-heading", "incident": "alerts-head"}

TABLE_FITS = """(id) => {
  const card = document.getElementById(id).closest("section");
  return card.querySelector("table").getBoundingClientRect().right
    <= card.getBoundingClientRect().right + 0.5;
}"""

# How many lines a heading's text takes (a heading squeezed by its neighbour breaks mid-word).
HEADING_LINES = """(id) => {
  const range = document.createRange();
  range.selectNodeContents(document.getElementById(id));
  return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""


def check_page(page: Any, name: str, width: int) -> None:
    """What a look at the screenshots once caught: a squeezed heading, a timeline without its
    times on a phone, alert tables cut off on a phone."""
    if name == "incident":
        assert page.evaluate(HEADING_LINES, "escalation-head") == 1
        assert page.locator(".incident-timeline .event-time").first.is_visible()
        assert page.locator(".incident-timeline .event-actor").first.is_visible()
    if width == 390 and name in STACKED_TABLES:
        assert page.evaluate(TABLE_FITS, STACKED_TABLES[name]), name


def screenshot_dir(tmp_path: Path) -> Path:
    if os.environ.get("TOCSIN_WRITE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        return DOCS
    return tmp_path


def test_the_main_pages_fit_a_phone_and_are_photographed(
    shown: Shown, web: Any, browser: Any, tmp_path: Path
):
    target = screenshot_dir(tmp_path)
    wide = []
    for width, viewport in VIEWPORTS.items():
        context = browser.new_context(viewport=viewport, timezone_id="UTC", locale="en-GB")
        page = context.new_page()
        try:
            page.goto(web.url + "/")
            page.get_by_label("E-mail or username").fill(shown.user.email)
            page.locator("input[name=password]").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(web.url + "/")
            for name, (path, heading) in shown.pages.items():
                response = page.goto(web.url + path)
                assert response is not None and response.status == 200, path
                page.wait_for_load_state("load")
                if page.locator("#live-status").count():
                    page.wait_for_selector('#live-status[data-state="connected"]')
                assert heading in page.locator("h1").inner_text(), path
                check_page(page, name, width)
                excess = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                if width == 390 and excess > 0:
                    wide.append((name, excess))
                page.screenshot(path=str(target / f"{name}-{width}.png"), full_page=True)
        finally:
            context.close()
    assert wide == []
    for name in shown.pages:
        for width in VIEWPORTS:
            assert (target / f"{name}-{width}.png").stat().st_size > 10_000
