"""Lists at any size: keyset pages walk every row once, counts stop at the cap, and the Alerts
page and the alerts API cost the same queries whatever the row count or the page depth."""

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

from monitoring.models import Alert, Service
from tests.tocsin.api_support import assert_error
from tocsin.keyset import BadCursor, Cursor, capped_count, keyset_page

pytestmark = pytest.mark.usefixtures("fresh_throttles")


def make_alerts(service: Service, n: int, *, tie: int = 7, status: str = "firing") -> list[Alert]:
    """``n`` alerts, newest first by construction; every ``tie`` of them share a timestamp,
    as alerts stored by one batch do."""
    now = timezone.now().replace(microsecond=0)
    start = Alert.objects.count()
    alerts = []
    for i in range(n):
        at = now - timedelta(seconds=(start + i) // tie)
        alerts.append(
            Alert(
                team_id=service.team_id,
                service=service,
                source="test",
                fingerprint=f"fp-{start + i}",
                status=status,
                summary=f"Alert {start + i}",
                labels={"alertname": f"A{start + i}", "instance": "web-1"},
                content_hash=f"{start + i:064x}",
                starts_at=at,
                ends_at=None if status == "firing" else at,
                last_change_at=at,
            )
        )
    return Alert.objects.bulk_create(alerts)


def newest_first(queryset) -> list[int]:
    return list(queryset.order_by("-last_change_at", "-id").values_list("id", flat=True))


def walk(queryset, size: int) -> tuple[list[list[int]], list[Cursor | None]]:
    pages, cursors, cursor = [], [None], None
    while True:
        page = keyset_page(queryset, "last_change_at", size, cursor)
        pages.append([a.pk for a in page.rows])
        if page.next is None:
            return pages, cursors
        cursor = page.next
        cursors.append(cursor)


# -- the cursor ----------------------------------------------------------------------------------
def test_keyset_walks_every_row_once_in_order_under_ties(crew, service):
    make_alerts(service, 57, tie=7)
    everything = Alert.objects.all()

    pages, _ = walk(everything, 10)

    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 7]
    assert [pk for page in pages for pk in page] == newest_first(everything)


def test_previous_links_walk_back_through_the_same_pages(crew, service):
    make_alerts(service, 45, tie=9)
    pages, _ = walk(Alert.objects.all(), 10)

    back, page = [], keyset_page(Alert.objects.all(), "last_change_at", 10, None)
    while page.next is not None:  # to the last page
        page = keyset_page(Alert.objects.all(), "last_change_at", 10, page.next)
    back.append([a.pk for a in page.rows])
    while page.previous is not None:
        page = keyset_page(Alert.objects.all(), "last_change_at", 10, page.previous)
        back.append([a.pk for a in page.rows])

    assert back[::-1] == pages


def test_rows_arriving_meanwhile_shift_no_page_not_yet_read(crew, service):
    first = make_alerts(service, 30, tie=4)
    before = newest_first(Alert.objects.all())
    page = keyset_page(Alert.objects.all(), "last_change_at", 10, None)
    seen = [a.pk for a in page.rows]
    later = Alert.objects.filter(pk__in=[a.pk for a in first[:3]])
    later.update(last_change_at=timezone.now() + timedelta(hours=1))  # changed: now the newest
    arrived = make_alerts(service, 5, tie=1)  # and new ones arrive
    Alert.objects.filter(pk__in=[a.pk for a in arrived]).update(
        last_change_at=timezone.now() + timedelta(hours=2)
    )
    while page.next is not None:
        page = keyset_page(Alert.objects.all(), "last_change_at", 10, page.next)
        seen += [a.pk for a in page.rows]

    assert len(seen) == len(set(seen)) == 30
    assert seen == before


@pytest.mark.parametrize("token", ["", "garbage", "YXxub3QgYSBkYXRlfDE", "Ynwy" * 3])
def test_a_cursor_this_code_did_not_write_is_refused(token):
    with pytest.raises(BadCursor):
        Cursor.decode(token or "%%%")


@pytest.mark.parametrize(
    "raw",
    [
        "a|0001-01-01T00:00:00+01:00|5",
        "a|9999-12-31T23:59:59-01:00|5",
        "a|" + "2026-01-01T00:00:00+00:00|" + "9" * 30,
    ],
)
def test_a_cursor_outside_what_the_database_holds_is_refused(raw, crew, service):
    import base64

    token = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    with pytest.raises(BadCursor):
        Cursor.decode(token)
    client = Client()
    client.force_login(crew.viewer)
    assert client.get(f"/alerts/?cursor={token}").status_code == 400


def test_counts_stop_at_the_cap(crew, service):
    make_alerts(service, 15)

    assert capped_count(Alert.objects.all(), cap=10) == (10, False)
    assert capped_count(Alert.objects.all(), cap=15) == (15, True)


# -- the Alerts page -------------------------------------------------------------------------------
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


@pytest.mark.parametrize("url", ["/alerts/", "/alerts/?status=all&severity=error"])
def test_alerts_page_queries_do_not_grow_with_rows_or_depth(crew, service, url):
    client = logged_in(crew.responder)
    make_alerts(service, 5)
    few, _ = query_count(client, url)
    make_alerts(service, 245)
    many, response = query_count(client, url)
    deep_url = older_link(response)
    assert deep_url and "cursor=" in deep_url
    deep, deep_response = query_count(client, deep_url)

    assert few == many == deep
    assert len(re.findall(r"data-alert-id=", deep_response.content.decode())) == 100


def test_alerts_page_pages_through_every_alert_once(crew, service):
    make_alerts(service, 230, tie=25)
    client, url, seen = logged_in(crew.viewer), "/alerts/?status=all", []
    while url:
        response = client.get(url)
        seen += [int(pk) for pk in re.findall(r'data-alert-id="(\d+)"', response.content.decode())]
        url = older_link(response)

    assert seen == newest_first(Alert.objects.all())


def test_alerts_page_says_n_plus_instead_of_counting_on(crew, service, monkeypatch):
    monkeypatch.setattr("tocsin.keyset.COUNT_CAP", 20)
    make_alerts(service, 21)
    response = logged_in(crew.viewer).get("/alerts/")

    assert re.search(
        r'<span class="count" title="Counted up to 20\+[^"]*">20\+</span>',
        response.content.decode(),
    )


def test_alerts_page_bad_cursor_is_400(crew, service):
    make_alerts(service, 3)
    response = logged_in(crew.viewer).get("/alerts/?cursor=nonsense")

    assert response.status_code == 400


# -- the alerts API --------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["", "status=firing&severity=error"])
def test_alerts_api_queries_do_not_grow_with_rows_or_depth(crew, service, api, query):
    client = api(crew.viewer)
    url = f"/api/v1/alerts/?{query}"
    make_alerts(service, 5)
    few, _ = query_count(client, url)
    make_alerts(service, 120)
    many, response = query_count(client, url)
    body = response.json()
    deep, deep_response = query_count(client, body["next"])

    assert few == many == deep
    assert body["count"] == 125 and body["count_exact"] is True and body["previous"] is None
    assert len(deep_response.json()["results"]) == 50 and deep_response.json()["previous"]


def test_alerts_api_next_links_walk_every_alert_once(crew, service, api):
    make_alerts(service, 130, tie=30)
    client, url, seen = api(crew.viewer), "/api/v1/alerts/?page_size=25", []
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]

    assert seen == newest_first(Alert.objects.all())


def test_alerts_api_page_numbers_still_work_within_the_count(crew, service, api, monkeypatch):
    monkeypatch.setattr("tocsin.api.pagination.PAGE_NUMBER_ROWS", 60)
    monkeypatch.setattr("tocsin.keyset.COUNT_CAP", 60)
    make_alerts(service, 70)
    client = api(crew.viewer)
    order = newest_first(Alert.objects.all())

    second = client.get("/api/v1/alerts/?page_size=20&page=2").json()
    assert [r["id"] for r in second["results"]] == order[20:40]
    assert second["count"] == 60 and second["count_exact"] is False
    assert "page=1" in second["previous"]
    following = client.get(second["next"]).json()
    assert [r["id"] for r in following["results"]] == order[40:60]
    assert_error(client.get("/api/v1/alerts/?page_size=20&page=4"), 400, None, {"page"})


@pytest.mark.parametrize(
    ("query", "field"),
    [("cursor=nonsense", "cursor"), ("page=0", "page"), ("page=2&cursor=VALID", "page")],
)
def test_alerts_api_bad_paging_is_400_naming_the_parameter(crew, service, api, query, field):
    make_alerts(service, 3)
    query = query.replace("VALID", Cursor(timezone.now(), 1).encode())
    assert_error(api(crew.viewer).get(f"/api/v1/alerts/?{query}"), 400, None, {field})


def test_the_list_indexes_exist_after_migrating(db):
    with connection.cursor() as cursor:
        alert = connection.introspection.get_constraints(cursor, Alert._meta.db_table)
        incident = connection.introspection.get_constraints(cursor, "incidents_incident")

    assert {"alert_recent", "alert_firing_recent", "alert_service_recent"} <= set(alert)
    assert {"incident_recent", "incident_open_recent"} <= set(incident)
    assert alert["alert_recent"]["columns"] == ["last_change_at", "id"]


def test_alerts_of_other_teams_are_not_listed_by_cursor_either(crew, service, other_service, api):
    make_alerts(other_service, 3)
    mine = make_alerts(service, 3)
    body = api(crew.viewer).get("/api/v1/alerts/?page_size=2").json()
    rest = api(crew.viewer).get(body["next"]).json()

    assert {r["id"] for r in body["results"] + rest["results"]} == {a.pk for a in mine}


def test_rows_written_in_python_escape_what_senders_wrote(crew, service):
    (alert,) = make_alerts(service, 1)
    alert.summary = '<script>alert("x")</script>'
    alert.labels = {"alertname": "A", "pod": '"><img src=x onerror=alert(1)>'}
    alert.save()
    Service.objects.filter(pk=service.pk).update(name="<b>Checkout</b>")
    body = logged_in(crew.responder).get("/alerts/").content.decode()

    assert "<script>alert" not in body and "<img src=x" not in body and "<b>Checkout" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert "pod=&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in body
