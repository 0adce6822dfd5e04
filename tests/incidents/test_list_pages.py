"""The Incidents page, its API list and the dashboard cost the same queries whatever the number of
incidents or the depth of the page; their cursors walk every incident once."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.models import Incident, IncidentAlert
from monitoring.models import Alert, Service

pytestmark = pytest.mark.usefixtures("fresh_throttles")


def make_incidents(service: Service, n: int, *, tie: int = 6, open_every: int = 2) -> None:
    """``n`` incidents, every ``tie`` sharing a creation time, each with two alerts."""
    now = timezone.now().replace(microsecond=0)
    start = Incident.objects.count()
    incidents = Incident.objects.bulk_create(
        Incident(
            team_id=service.team_id,
            service=service,
            title=f"Incident {start + i}",
            status="triggered" if (start + i) % open_every == 0 else "resolved",
            created_at=now - timedelta(seconds=(start + i) // tie),
            resolved_at=None if (start + i) % open_every == 0 else now,
            group_key=f"g-{start + i}",
        )
        for i in range(n)
    )
    alerts = Alert.objects.bulk_create(
        Alert(
            team_id=service.team_id,
            service=service,
            source="test",
            fingerprint=f"fp-{incident.pk}-{k}",
            status="firing",
            summary=f"Alert of {incident.pk}",
            content_hash="0" * 64,
            starts_at=now,
            last_change_at=now,
        )
        for incident in incidents
        for k in range(2)
    )
    IncidentAlert.objects.bulk_create(
        IncidentAlert(incident=incidents[i // 2], alert=alert) for i, alert in enumerate(alerts)
    )


def newest_first(queryset) -> list[int]:
    return list(queryset.order_by("-created_at", "-id").values_list("id", flat=True))


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def older_link(response) -> str | None:
    found = re.search(r'href="([^"]*)" rel="next"', response.content.decode())
    return html.unescape(found.group(1)) if found else None


def query_count(client: Client, url: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries), response


@pytest.mark.parametrize("url", ["/incidents/", "/incidents/?status=all&priority=P3"])
def test_incidents_page_queries_do_not_grow_with_rows_or_depth(crew, service, url):
    client = logged_in(crew.responder)
    make_incidents(service, 5)
    few, _ = query_count(client, url)
    make_incidents(service, 450)
    many, response = query_count(client, url)
    deep, deep_response = query_count(client, older_link(response))

    assert few == many == deep
    rows = re.findall(r'data-incident-id="(\d+)"', deep_response.content.decode())
    assert len(rows) == 100
    # Each row still shows its alert count (two alerts each), from one query for the page.
    assert deep_response.content.decode().count('<td class="num">2</td>') == 100


def test_incidents_page_pages_through_every_incident_once(crew, service):
    make_incidents(service, 230, tie=40)
    client, url, seen = logged_in(crew.viewer), "/incidents/?status=all", []
    while url:
        response = client.get(url)
        seen += [
            int(pk) for pk in re.findall(r'data-incident-id="(\d+)"', response.content.decode())
        ]
        url = older_link(response)

    assert seen == newest_first(Incident.objects.all())


def test_incidents_api_queries_do_not_grow_with_rows_or_depth(crew, service, api):
    client = api(crew.viewer)
    make_incidents(service, 5)
    few, _ = query_count(client, "/api/v1/incidents/")
    make_incidents(service, 120)
    many, response = query_count(client, "/api/v1/incidents/")
    deep, deep_response = query_count(client, response.json()["next"])

    assert few == many == deep
    assert response.json()["count"] == 125 and response.json()["count_exact"] is True
    assert all(len(row["alert_ids"]) == 2 for row in deep_response.json()["results"])


def test_incidents_api_next_links_walk_every_incident_once(crew, service, api):
    make_incidents(service, 90, tie=30)
    client, url, seen = api(crew.viewer), "/api/v1/incidents/?page_size=20", []
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]

    assert seen == newest_first(Incident.objects.all())


def test_dashboard_queries_do_not_grow_with_incidents_and_alerts(crew, service):
    client = logged_in(crew.responder)
    make_incidents(service, 5)
    few, _ = query_count(client, "/")
    make_incidents(service, 200)
    many, _ = query_count(client, "/")

    assert few == many


def test_rows_written_in_python_escape_titles(crew, service):
    make_incidents(service, 1, open_every=1)
    Incident.objects.update(title="<img src=x onerror=alert(1)>")
    body = logged_in(crew.responder).get("/incidents/").content.decode()

    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
