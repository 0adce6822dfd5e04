"""What machines read: the Statuspage-shaped JSON (key by key), the RSS and Atom feeds, the SVG
badges."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.statuspages import publishing
from monitoring.models import MaintenanceWindow, Service
from tests.feeds import assert_valid_atom
from tests.incidents.status_support import (
    day_rows,
    make_check,
    make_component,
    make_group,
    make_page,
    open_incident,
    today,
)

ATOM = "{http://www.w3.org/2005/Atom}"

PAGE_KEYS = {"id", "name", "url", "time_zone", "updated_at"}
COMPONENT_KEYS = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
}
INCIDENT_KEYS = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "impact",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
}
UPDATE_KEYS = {
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "custom_tweet",
    "tweet_id",
}
MAINTENANCE_KEYS = INCIDENT_KEYS | {"scheduled_for", "scheduled_until"}


@pytest.fixture
def page(crew):
    service = Service.objects.create(team=crew.team, name="Checkout API")
    page = make_page(crew.team, title="Acme", slug="acme", time_zone="Europe/Berlin")
    group = make_group(page, "Core", position=1)
    api = make_component(page, "API", group=group, service=service, description="Our API")
    make_component(page, "Web", position=2)
    open_incident(service, "P2")
    first = publishing.post_update(
        page,
        actor=crew.responder,
        status="investigating",
        body="Errors on checkout",
        title="Checkout errors",
        impact="major",
        component_ids=[api.pk],
    )
    publishing.post_update(
        page,
        actor=crew.responder,
        status="monitoring",
        body="A fix is out",
        public_incident=first.public_incident,
    )
    old = publishing.post_update(
        page, actor=None, status="investigating", body="Slow search", title="Slow search"
    )
    publishing.post_update(
        page, actor=None, status="resolved", body="Fixed", public_incident=old.public_incident
    )
    now = timezone.now()
    MaintenanceWindow.objects.create(
        service=service,
        title="internal",
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=2),
    )
    return page


def test_summary_json_has_statuspages_shape_key_by_key(client, page):
    response = client.get("/status/acme/api/v2/summary.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    data = response.json()
    assert set(data) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert set(data["page"]) == PAGE_KEYS
    assert data["page"]["id"] == str(page.pk)
    assert data["page"]["name"] == "Acme"
    assert data["page"]["url"].endswith("/status/acme/")
    assert data["page"]["time_zone"] == "Europe/Berlin"
    assert data["status"] == {"indicator": "major", "description": "Partial System Outage"}

    components = data["components"]
    members = [c for c in components if not c["group"]]
    groups = [c for c in components if c["group"]]
    for component in members:
        assert set(component) == COMPONENT_KEYS
        assert isinstance(component["id"], str) and isinstance(component["position"], int)
    [group] = groups
    assert set(group) == COMPONENT_KEYS | {"components"}
    [api] = [c for c in members if c["name"] == "API"]
    assert group["components"] == [api["id"]]
    assert api["group_id"] == group["id"]
    assert api["status"] == "partial_outage"
    assert api["description"] == "Our API"
    assert group["status"] == "partial_outage"

    [incident] = data["incidents"]  # unresolved only
    assert set(incident) == INCIDENT_KEYS
    assert incident["name"] == "Checkout errors"
    assert incident["status"] == "monitoring"
    assert incident["impact"] == "major"
    assert incident["monitoring_at"] is not None and incident["resolved_at"] is None
    assert incident["shortlink"].endswith(f"/status/acme/incidents/{incident['id']}/")
    assert [u["status"] for u in incident["incident_updates"]] == ["monitoring", "investigating"]
    for update in incident["incident_updates"]:
        assert set(update) == UPDATE_KEYS
        assert update["incident_id"] == incident["id"]
    assert [c["name"] for c in incident["components"]] == ["API"]
    assert set(incident["components"][0]) == COMPONENT_KEYS

    [maintenance] = data["scheduled_maintenances"]
    assert set(maintenance) == MAINTENANCE_KEYS
    assert maintenance["status"] == "scheduled"
    assert maintenance["impact"] == "maintenance"
    assert maintenance["scheduled_for"] < maintenance["scheduled_until"]
    assert [c["name"] for c in maintenance["components"]] == ["API"]


def test_the_sibling_endpoints_answer_their_parts(client, page):
    base = "/status/acme/api/v2/"
    status = client.get(base + "status.json").json()
    assert set(status) == {"page", "status"}
    assert set(status["status"]) == {"indicator", "description"}
    assert set(client.get(base + "components.json").json()) == {"page", "components"}
    every = client.get(base + "incidents.json").json()
    assert [i["name"] for i in every["incidents"]] == ["Slow search", "Checkout errors"]
    unresolved = client.get(base + "incidents/unresolved.json").json()
    assert [i["name"] for i in unresolved["incidents"]] == ["Checkout errors"]
    for name in ("scheduled-maintenances", "scheduled-maintenances/upcoming"):
        data = client.get(base + name + ".json").json()
        assert set(data) == {"page", "scheduled_maintenances"}
        assert len(data["scheduled_maintenances"]) == 1
    active = client.get(base + "scheduled-maintenances/active.json").json()
    assert active["scheduled_maintenances"] == []


def test_all_is_well_reads_none(crew, client):
    make_page(crew.team, slug="calm")
    data = client.get("/status/calm/api/v2/status.json").json()
    assert data["status"] == {"indicator": "none", "description": "All Systems Operational"}


def test_the_atom_feed_validates(client, page):
    response = client.get("/status/acme/feed.atom")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    assert_valid_atom(response.content)  # RFC 4287's RELAX NG grammar
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{required}") is not None, required
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [
        "Slow search (Resolved)",
        "Checkout errors (Monitoring)",
    ]
    for entry in entries:
        for required in ("id", "title", "updated"):
            assert (entry.findtext(f"{ATOM}{required}") or "").strip(), required
        link = entry.find(f"{ATOM}link").get("href")
        assert link.startswith("http") and "/status/acme/incidents/" in link
    summary = entries[1].findtext(f"{ATOM}summary")
    assert "A fix is out" in summary and "Errors on checkout" in summary


def test_the_rss_feed_is_rss_2(client, page):
    response = client.get("/status/acme/feed.rss")
    assert response["Content-Type"].startswith("application/rss+xml")
    root = ET.fromstring(response.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel.findtext("title") == "Acme"
    items = channel.findall("item")
    assert len(items) == 2
    assert all(i.findtext("guid") and i.findtext("pubDate") for i in items)


def test_the_status_badge_is_svg_with_text_and_caching(client, page):
    response = client.get("/status/acme/badge/status.svg")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    assert "max-age=30" in response["Cache-Control"] and "public" in response["Cache-Control"]
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["status", "partial outage"]


def test_the_uptime_badge_of_the_page_and_of_a_component(crew, client):
    service = Service.objects.create(team=crew.team, name="Web")
    page = make_page(crew.team, slug="up")
    check = make_check(service)
    web = make_component(page, "Web", source_kind="probe", target_id=check.pk)
    day_rows(check, {today(): (999, 0, 1), today() - timedelta(days=1): (1000, 0, 0)})

    def texts(r):
        return [t.text for t in ET.fromstring(r.content).iter("{http://www.w3.org/2000/svg}text")]

    assert texts(client.get("/status/up/badge/uptime.svg")) == ["uptime 90d", "99.95%"]
    one = client.get(f"/status/up/badge/uptime.svg?component={web.pk}")
    assert texts(one) == ["uptime 90d", "99.95%"]
    assert client.get("/status/up/badge/uptime.svg?component=999999").status_code == 404
    assert client.get("/status/up/badge/uptime.svg?component=x").status_code == 404
    assert page.pk
