"""The Alerts page, the services pages and their live refresh."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from monitoring.models import Alert, AlertStatus, Integration, Service, Severity, Silence
from monitoring.pipeline import AlertInput, process
from tocsin.models import Event


def fire(
    service, name="HighLatency", severity=Severity.CRITICAL, status=AlertStatus.FIRING, **labels
) -> Alert:
    item = AlertInput(labels={"alertname": name, **labels}, severity=severity, status=status)
    return process(service, [item], source="alertmanager")[0].alert


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows(response) -> list[str]:
    return re.findall(r'data-alert-id="(\d+)"', response.content.decode())


def test_alerts_page_shows_firing_alerts_by_default(crew, service, other_service):
    latency = fire(service, "HighLatency", instance="api-1")
    fire(service, "Gone")
    fire(service, "Gone", status=AlertStatus.RESOLVED)
    fire(other_service, "Elsewhere")
    response = logged_in(crew.viewer).get(reverse("alerts"))
    assert response.status_code == 200
    html = response.content.decode()
    assert rows(response) == [str(latency.pk)]
    assert "instance=api-1" in html and "badge-critical" in html and "badge-firing" in html
    assert 'aria-current="page"' in html
    assert "Nothing here yet" not in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=resolved", {"Gone"}),
        ("status=all", {"Gone", "HighLatency", "DiskFull"}),
        ("severity=warning", {"DiskFull"}),
        ("severity=warning&severity=critical", {"HighLatency", "DiskFull"}),
        ("suppressed=yes", set()),
        ("suppressed=no", {"HighLatency", "DiskFull"}),
        ("team=payments", {"HighLatency", "DiskFull"}),
    ],
)
def test_alerts_page_filters(crew, service, query, expected):
    names = {
        "HighLatency": fire(service, "HighLatency"),
        "DiskFull": fire(service, "DiskFull", Severity.WARNING),
        "Gone": fire(service, "Gone"),
    }
    fire(service, "Gone", status=AlertStatus.RESOLVED)
    response = logged_in(crew.viewer).get(reverse("alerts") + "?" + query)
    assert set(rows(response)) == {str(names[n].pk) for n in expected}


def test_alerts_page_filters_by_service(crew, service):
    other = Service.objects.create(team=crew.team, name="Cart")
    mine = fire(service, "A")
    fire(other, "B")
    response = logged_in(crew.viewer).get(reverse("alerts") + f"?service={service.pk}")
    assert rows(response) == [str(mine.pk)]


def test_unknown_team_or_service_is_404_and_bad_values_400(crew, service, other_service):
    client = logged_in(crew.viewer)
    assert client.get(reverse("alerts") + "?team=search").status_code == 404
    assert client.get(reverse("alerts") + f"?service={other_service.pk}").status_code == 404
    assert client.get(reverse("alerts") + "?status=burning").status_code == 400


def test_silence_button_only_for_responders_on_unsuppressed_firing_alerts(crew, service):
    fire(service)
    assert "Silence 1 h" not in logged_in(crew.viewer).get(reverse("alerts")).content.decode()
    assert "Silence 1 h" in logged_in(crew.responder).get(reverse("alerts")).content.decode()


def test_one_click_silence_suppresses_the_alert(crew, service):
    alert = fire(service)
    response = logged_in(crew.responder).post(
        reverse("alert_silence", args=[alert.pk]), {"next": "/alerts/?status=all"}
    )
    assert response.status_code == 302 and response["Location"] == "/alerts/?status=all"
    silence = Silence.objects.get()
    assert silence.created_by == crew.responder
    assert (silence.ends_at - silence.starts_at).total_seconds() == 3600
    assert silence.comment
    alert.refresh_from_db()
    assert alert.suppression == "silenced"
    assert alert.suppressed_by["id"] == silence.pk
    kinds = list(
        Event.objects.exclude(kind__startswith="incident.")
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds[-2:] == ["silence.created", "alert.suppressed"]


def test_a_viewer_cannot_silence(crew, service):
    alert = fire(service)
    response = logged_in(crew.viewer).post(reverse("alert_silence", args=[alert.pk]))
    assert response.status_code == 403
    assert not Silence.objects.exists()
    alert.refresh_from_db()
    assert alert.suppression == ""


def test_silence_ignores_an_offsite_next(crew, service):
    alert = fire(service)
    response = logged_in(crew.responder).post(
        reverse("alert_silence", args=[alert.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("alerts")


def test_table_partial_refreshes_itself_on_live_alert_events(crew, service):
    fire(service)
    client = logged_in(crew.viewer)
    page = client.get(reverse("alerts") + "?severity=critical").content.decode()
    # The page holds the live socket (hidden) and the table listens for alert events.
    assert 'ws-connect="/ws/live/"' in page and 'id="live-events"' in page
    last = Event.objects.visible_to(crew.viewer).order_by("-id").first().pk
    assert f'data-last-event-id="{last}"' in page
    assert 'hx-trigger="tocsin:live-alert from:body delay:750ms"' in page
    assert 'hx-get="/alerts/table/?status=firing&amp;severity=critical"' in page
    partial = client.get(reverse("alerts_table") + "?severity=critical")
    assert partial.status_code == 200
    html = partial.content.decode()
    assert html.lstrip().startswith('<section id="alerts-table"') and "<html" not in html


def test_team_filter_narrows_the_live_subscription(crew, service):
    page = logged_in(crew.viewer).get(reverse("alerts") + "?team=payments").content.decode()
    assert f'data-team-id="{crew.team.pk}"' in page


def test_alerts_page_query_count_is_flat(crew, service, django_assert_max_num_queries):
    process(
        service,
        [AlertInput(labels={"alertname": f"A{i}"}, severity=Severity.WARNING) for i in range(150)],
        source="alertmanager",
    )
    client = logged_in(crew.responder)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("alerts"))
    assert len(rows(response)) == 100
    older = re.search(r'href="([^"]*cursor=[^"]*)" rel="next"', response.content.decode())
    assert older, "an Older link with a cursor"
    with django_assert_max_num_queries(10):
        response = client.get(html.unescape(older.group(1)))
    assert len(rows(response)) == 50


def test_tocsin_js_announces_live_events_by_area():
    from pathlib import Path

    js = (Path(__file__).resolve().parents[2] / "static/js/tocsin.js").read_text()
    assert '"tocsin:live-" + area' in js


# -- services ----------------------------------------------------------------------------------
def test_services_page_lists_visible_services_with_counts(crew, service, other_service, doors):
    fire(service)
    html = logged_in(crew.viewer).get(reverse("services")).content.decode()
    assert "Checkout API" in html and "Search API" not in html
    assert "Create a service" not in html  # viewers do not manage
    assert "Create a service" in logged_in(crew.manager).get(reverse("services")).content.decode()


def test_manager_creates_a_service_from_the_ui(crew):
    response = logged_in(crew.manager).post(
        reverse("service_create"), {"team": crew.team.pk, "name": "Cart", "tags": "a, b"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("service", args=["payments", "cart"])
    assert Service.objects.get().tags == ["a", "b"]


def test_duplicate_service_shows_an_error(crew, service):
    response = logged_in(crew.manager).post(
        reverse("service_create"), {"team": crew.team.pk, "name": "Checkout API"}
    )
    assert response.status_code == 400
    assert "already has a service" in response.content.decode()


def test_service_page_shows_alerts_integrations_and_setup_without_keys(crew, service, doors):
    firing = fire(service, "HighLatency")
    fire(service, "Gone")
    fire(service, "Gone", status=AlertStatus.RESOLVED)
    response = logged_in(crew.viewer).get(reverse("service", args=["payments", "checkout-api"]))
    html = response.content.decode()
    assert f'id="alert-{firing.pk}"' in html and "Recently resolved" in html
    for door in doors.values():
        assert door.key not in html
        assert f"{door.integration.key_prefix}…" in html
    assert "/ingest/alertmanager/&lt;your key&gt;/" in html
    assert "webhook_configs" in html and "send_resolved: true" in html
    assert "path_prefix: &quot;/ingest/prometheus/&lt;your key&gt;/&quot;" in html
    assert "/ingest/grafana/&lt;your key&gt;/" in html
    assert "http://127.0.0.1:8000/ingest/pagerduty" in html and "routing_key" in html
    assert "curl -X POST" in html and "/ingest/generic/&lt;your key&gt;/" in html
    assert "Rotate key" not in html  # viewers


def test_creating_an_integration_shows_its_key_once(crew, service):
    client = logged_in(crew.manager)
    url = reverse("integration_create", args=["payments", "checkout-api"])
    response = client.post(url, {"kind": "alertmanager", "name": "prod"})
    # POST → redirect → GET: reloading the page that shows the key creates nothing more.
    service_url = reverse("service", args=["payments", "checkout-api"])
    assert response.status_code == 302 and response["Location"] == service_url + "#new-key-heading"
    shown = client.get(service_url)
    assert shown["Cache-Control"] == "no-store"
    html = shown.content.decode()
    integration = Integration.objects.get()
    [key] = re.findall(r'id="new-key-value" value="([0-9a-f]{32})"', html)
    assert Integration.by_key(key) == integration
    assert f"/ingest/alertmanager/{key}/" in html  # the setup snippet is ready to paste
    again = client.get(service_url).content.decode()
    assert key not in again
    assert Integration.objects.count() == 1


def test_a_new_key_waits_in_the_session_encrypted_and_only_its_service_shows_it(crew, service):
    from django.contrib.sessions.models import Session

    client = logged_in(crew.manager)
    client.post(
        reverse("integration_create", args=["payments", "checkout-api"]),
        {"kind": "generic", "name": "n"},
    )
    [session] = Session.objects.all()
    held = session.get_decoded()["tocsin.new_ingest_keys"]
    integration = Integration.objects.get()
    assert list(held) == [str(integration.pk)]
    assert integration.key_prefix not in held[str(integration.pk)]
    other = Service.objects.create(team=service.team, name="Other")
    html = client.get(reverse("service", args=["payments", other.slug])).content.decode()
    assert 'id="new-key-value"' not in html  # another service's page does not show it


def test_rotating_from_the_ui_shows_the_new_key_and_kills_the_old(crew, service, doors):
    door = doors["grafana"]
    url = reverse("integration_rotate", args=["payments", "checkout-api", door.integration.pk])
    client = logged_in(crew.manager)
    response = client.post(url)
    assert response.status_code == 302
    response = client.get(response["Location"])
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    [key] = re.findall(r'id="new-key-value" value="([0-9a-f]{32})"', response.content.decode())
    assert Integration.by_key(key) == door.integration
    assert Integration.by_key(door.key) is None


def test_revoking_from_the_ui(crew, service, doors):
    door = doors["generic"]
    url = reverse("integration_revoke", args=["payments", "checkout-api", door.integration.pk])
    assert logged_in(crew.manager).post(url).status_code == 302
    assert Integration.by_key(door.key) is None


def test_manager_edits_the_service(crew, service):
    url = reverse("service_update", args=["payments", "checkout-api"])
    response = logged_in(crew.manager).post(url, {"name": "Checkout", "tags": "x"})
    assert response.status_code == 302
    service.refresh_from_db()
    assert (service.name, service.slug, service.tags) == ("Checkout", "checkout-api", ["x"])
