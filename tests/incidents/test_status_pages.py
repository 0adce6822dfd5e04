"""The public status page: private until published, automatic and manual statuses, 90-day
uptime bars, no JavaScript, and a query count that does not grow with the components."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.statuspages import publishing, services
from incidents.statuspages.models import ComponentStatus, StatusPage
from monitoring.models import MaintenanceWindow, Service
from tests.incidents.status_support import (
    day_rows,
    make_check,
    make_component,
    make_group,
    make_page,
    open_incident,
    set_state,
    today,
)
from tocsin.models import Event


@pytest.fixture
def api_service(crew):
    return Service.objects.create(team=crew.team, name="Checkout API")


@pytest.fixture
def page(crew):
    return make_page(crew.team)


def status_of(client, component) -> str:
    data = client.get("/status/payments/api/v2/components.json").json()
    [found] = [c for c in data["components"] if c["id"] == str(component.pk)]
    return found["status"]


# --- private until published -------------------------------------------------------------------


def test_an_unpublished_page_is_a_404_to_the_public_and_to_other_teams(crew, api, client):
    make_page(crew.team, published=False)
    assert client.get("/status/payments/").status_code == 404
    assert client.get("/status/payments/api/v2/summary.json").status_code == 404
    assert client.get("/status/payments/feed.atom").status_code == 404
    assert client.get("/status/payments/badge/status.svg").status_code == 404
    assert api(crew.outsider).get("/status/payments/").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "responder", "manager"])
def test_team_members_preview_an_unpublished_page_uncached(crew, api, role):
    make_page(crew.team, published=False)
    response = api(crew.by_role(role)).get("/status/payments/")
    assert response.status_code == 200
    assert b"Preview." in response.content
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex"


def test_a_published_page_is_public_and_cacheable(crew, client, page):
    response = client.get("/status/payments/")
    assert response.status_code == 200
    assert "public" in response["Cache-Control"] and "max-age=30" in response["Cache-Control"]
    assert b"Preview." not in response.content
    assert not response.cookies  # no session, no CSRF cookie: caches may keep it


def test_the_page_needs_no_javascript(crew, client, page, api_service):
    make_component(page, "API", service=api_service)
    body = client.get("/status/payments/").content.decode()
    assert "<script" not in body.lower()
    assert 'name="viewport"' in body


def test_pages_feeds_and_json_are_gzipped_for_clients_that_ask(crew, client, page, api_service):
    import gzip

    for n in range(40):
        make_component(page, f"Component {n}", service=api_service)
    plain = client.get("/status/payments/")
    packed = client.get("/status/payments/", HTTP_ACCEPT_ENCODING="gzip")
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) * 5 < len(plain.content)  # forty rows of 90-day bars
    for path in ("history/", "feed.atom", "feed.rss", "api/v2/summary.json"):
        response = client.get(f"/status/payments/{path}", HTTP_ACCEPT_ENCODING="gzip")
        assert response["Content-Encoding"] == "gzip", path
    # The subscription pages carry secret tokens: never compressed (BREACH).
    response = client.get("/status/payments/unsubscribe/nonsense/", HTTP_ACCEPT_ENCODING="gzip")
    assert "Content-Encoding" not in response


def test_an_unknown_page_is_a_404(client, db):
    assert client.get("/status/nope/").status_code == 404


# --- statuses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        ("P1", "major_outage"),
        ("P2", "partial_outage"),
        ("P3", "degraded_performance"),
        ("P4", "operational"),
    ],
)
def test_open_incidents_of_the_service_set_the_status_by_priority(
    crew, client, page, api_service, priority, expected
):
    component = make_component(page, "API", service=api_service)
    open_incident(api_service, priority)
    assert status_of(client, component) == expected


def test_a_resolved_incident_leaves_the_component_operational(crew, client, page, api_service):
    component = make_component(page, "API", service=api_service)
    open_incident(api_service, "P1", status="resolved", resolved_at=timezone.now())
    assert status_of(client, component) == "operational"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("down", "major_outage"),
        ("degraded", "degraded_performance"),
        ("up", "operational"),
        ("unknown", "operational"),
    ],
)
def test_the_probe_check_state_sets_the_status(crew, client, page, api_service, state, expected):
    check = make_check(api_service)
    component = make_component(page, "Web", source_kind="probe", target_id=check.pk)
    set_state(check, state)
    assert status_of(client, component) == expected


def test_an_active_maintenance_window_puts_the_component_under_maintenance(
    crew, client, page, api_service
):
    component = make_component(page, "API", service=api_service)
    now = timezone.now()
    MaintenanceWindow.objects.create(
        service=api_service,
        title="db upgrade",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )
    assert status_of(client, component) == "under_maintenance"
    data = client.get("/status/payments/api/v2/summary.json").json()
    [maintenance] = data["scheduled_maintenances"]
    assert maintenance["status"] == "in_progress"
    assert maintenance["name"] == "Scheduled maintenance"  # the window's title is internal


def test_the_worst_source_wins(crew, client, page, api_service):
    check = make_check(api_service)
    component = make_component(
        page, "API", service=api_service, source_kind="probe", target_id=check.pk
    )
    open_incident(api_service, "P3")
    set_state(check, "down")
    assert status_of(client, component) == "major_outage"


def test_a_manual_status_overrides_until_it_expires_or_is_cleared(crew, client, page, api_service):
    component = make_component(page, "API", service=api_service)
    open_incident(api_service, "P1")
    with transaction.atomic():
        services.set_manual_status(component, "degraded_performance", actor=crew.manager)
    assert status_of(client, component) == "degraded_performance"
    with transaction.atomic():
        services.clear_manual_status(component, actor=crew.manager)
    assert status_of(client, component) == "major_outage"
    services.set_manual_status(
        component, "partial_outage", until=timezone.now() + timedelta(hours=1), actor=None
    )
    assert status_of(client, component) == "partial_outage"
    type(component).objects.filter(pk=component.pk).update(
        manual_until=timezone.now() - timedelta(seconds=1)
    )
    assert status_of(client, component) == "major_outage"
    kinds = list(Event.objects.filter(subject_type="component").values_list("kind", flat=True))
    assert "status_component.status_set" in kinds and "status_component.status_cleared" in kinds


def test_an_open_public_incident_sets_its_components_by_impact(crew, client, page, api_service):
    component = make_component(page, "API")
    publishing.post_update(
        page,
        actor=crew.responder,
        status="investigating",
        body="Looking into it",
        title="Slow checkouts",
        impact="major",
        component_ids=[component.pk],
    )
    assert status_of(client, component) == "partial_outage"


def test_the_banner_says_the_overall_status_in_words_and_colour(crew, client, page, api_service):
    make_component(page, "API", service=api_service)
    assert b"All Systems Operational" in client.get("/status/payments/").content
    open_incident(api_service, "P1")
    body = client.get("/status/payments/").content.decode()
    assert 'class="sp-banner s-major_outage"' in body
    assert "Major Service Outage" in body
    assert "Major outage" in body  # the component's status as text, not colour alone


def test_groups_show_their_worst_component(crew, client, page, api_service):
    group = make_group(page, "Core")
    make_component(page, "API", group=group, service=api_service)
    make_component(page, "Search", group=group)
    open_incident(api_service, "P3")
    body = client.get("/status/payments/").content.decode()
    assert "<details" in body and "Core" in body
    head = body[body.index("<summary>") : body.index("</summary>")]
    assert "Degraded performance" in head


# --- uptime bars -------------------------------------------------------------------------------


def test_probe_components_get_a_bar_per_day_from_the_day_counts(crew, client, page, api_service):
    check = make_check(api_service)
    make_component(page, "Web", source_kind="probe", target_id=check.pk)
    day = today()
    day_rows(
        check,
        {
            day: (1000, 0, 0),
            day - timedelta(days=1): (995, 0, 5),  # 99.5 %
            day - timedelta(days=2): (80, 10, 10),  # 90 %
        },
    )
    body = client.get("/status/payments/").content.decode()
    bars = body[body.index('<div class="bars"') :]
    bars = bars[: bars.index("</div>")]
    assert bars.count("<i ") == 90
    assert bars.count('class="b-none"') == 87
    assert f'class="b-ok" title="{day:%d %b %Y}: 100% uptime"' in bars
    assert f'class="b-minor" title="{day - timedelta(days=1):%d %b %Y}: 99.50% uptime"' in bars
    assert f'class="b-critical" title="{day - timedelta(days=2):%d %b %Y}: 90.00% uptime"' in bars
    assert f'title="{day - timedelta(days=3):%d %b %Y}: no data"' in bars
    # 90 days: (1000 + 995 + 90) good of 2100 runs
    assert "99.29% uptime</span>" in body


def test_service_components_count_minutes_of_p1_and_p2_incidents(crew, client, page):
    service = Service.objects.create(team=crew.team, name="Ledger")
    Service.objects.filter(pk=service.pk).update(created_at=timezone.now() - timedelta(days=30))
    make_component(page, "Ledger", service=service)
    yesterday = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=1
    )
    open_incident(
        service,
        "P1",
        created_at=yesterday + timedelta(hours=10),
        resolved_at=yesterday + timedelta(hours=10, minutes=144),  # 10 % of the day
        status="resolved",
    )
    open_incident(  # P4 is not an outage
        service,
        "P4",
        created_at=yesterday + timedelta(hours=1),
        resolved_at=yesterday + timedelta(hours=5),
        status="resolved",
    )
    body = client.get("/status/payments/").content.decode()
    assert f'title="{yesterday:%d %b %Y}: 90.00% uptime, 144 min of outage"' in body
    assert body.count('class="b-none"') == 90 - 31  # before the service existed


def test_the_page_costs_the_same_queries_with_five_or_fifty_components(
    crew, client, page, api_service
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/status/payments/").status_code == 200
        return len(captured)

    def add(n: int) -> None:
        group = make_group(page, f"Group {n}")
        for i in range(n):
            service = Service.objects.create(team=crew.team, name=f"S{n}-{i}")
            check = make_check(service, f"C{n}-{i}")
            day_rows(check, {today(): (10, 0, 0)})
            make_component(
                page, f"By check {i}", group=group, source_kind="probe", target_id=check.pk
            )
            make_component(page, f"By service {i}", group=group, service=service)
            open_incident(service, "P2")
        publishing.post_update(
            page,
            actor=None,
            status="identified",
            body=f"Update {n}",
            title=f"Incident {n}",
            impact="minor",
            component_ids=[page.components.first().pk],
        )

    add(5)
    few = queries()
    add(20)
    many = queries()
    assert few == many
    assert many <= 12


# --- history and incident pages ----------------------------------------------------------------


def test_history_lists_90_days_of_incidents_twenty_a_page(crew, client, page):
    for n in range(23):
        publishing.post_update(
            page, actor=None, status="resolved", body=f"Fixed {n}", title=f"Outage {n}"
        )
    from incidents.statuspages.models import PublicIncident

    old = PublicIncident.objects.create(page=page, title="Ancient history", status="resolved")
    PublicIncident.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=91))
    first = client.get("/status/payments/history/").content.decode()
    assert first.count('class="sp-row sp-incident"') == 20
    assert "Outage 22" in first and "Page 1 of 2" in first
    second = client.get("/status/payments/history/?page=2").content.decode()
    assert second.count('class="sp-row sp-incident"') == 3
    assert "Ancient history" not in first + second
    assert client.get("/status/payments/history/?page=x'--").status_code == 200


def test_an_incident_page_shows_its_updates_and_404s_elsewhere(crew, client, page):
    update = publishing.post_update(
        page, actor=None, status="investigating", body="We are <looking>", title="Slow"
    )
    publishing.post_update(
        page, actor=None, status="resolved", body="All good", public_incident=update.public_incident
    )
    url = f"/status/payments/incidents/{update.public_incident_id}/"
    body = client.get(url).content.decode()
    assert "We are &lt;looking&gt;" in body and "All good" in body and "Resolved" in body
    other = make_page(crew.team, slug="other", title="Other")
    assert (
        client.get(f"/status/{other.slug}/incidents/{update.public_incident_id}/").status_code
        == 404
    )


def test_a_page_may_not_map_another_teams_service_or_check(crew, page):
    stranger = Service.objects.create(team=crew.other_team, name="Theirs")
    from incidents.statuspages.models import Component
    from tocsin.services import ServiceError

    with pytest.raises(ServiceError, match="another team"):
        make_component(page, "X", service=stranger)
    check = make_check(stranger)
    with pytest.raises(ServiceError, match="no such check"):
        make_component(page, "Y", source_kind="probe", target_id=check.pk)
    assert not Component.objects.exists()


def test_slug_and_colours_are_validated(crew, page):
    from tocsin.services import ServiceError

    with pytest.raises(ServiceError) as caught:
        make_page(crew.team, slug="payments")
    assert caught.value.field == "slug"
    with pytest.raises(ServiceError) as caught:
        services.save_page(page, actor=None, brand_colour="red")
    assert caught.value.field == "brand_colour"
    with pytest.raises(ServiceError) as caught:
        services.save_page(page, actor=None, time_zone="Mars/Olympus")
    assert caught.value.field == "time_zone"
    page.refresh_from_db()
    assert page.brand_colour == "#1f6feb"
    assert StatusPage.objects.count() == 1
    assert ComponentStatus.MAJOR == "major_outage"


def test_summary_json_costs_the_same_queries_with_more_components(crew, client, page):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/status/payments/api/v2/summary.json").status_code == 200
        return len(captured)

    def add(n: int) -> None:
        group = make_group(page, f"G{n}")
        for i in range(n):
            service = Service.objects.create(team=crew.team, name=f"T{n}-{i}")
            make_component(page, f"C{n}-{i}", group=group, service=service)
            open_incident(service, "P3")
        publishing.post_update(page, actor=None, status="identified", body="b", title=f"I{n}")

    add(3)
    few = queries()
    add(15)
    assert queries() == few


def test_a_recurring_window_shows_its_next_occurrence(crew, client, page, api_service):
    from datetime import time

    make_component(page, "API", service=api_service)
    now = timezone.now()
    soon = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    MaintenanceWindow.objects.create(
        service=api_service,
        title="weekly",
        weekdays=[soon.weekday()],
        start_time=time(soon.hour, soon.minute),
        duration=timedelta(minutes=30),
        time_zone="UTC",
    )
    data = client.get("/status/payments/api/v2/scheduled-maintenances/upcoming.json").json()
    [found] = data["scheduled_maintenances"]
    assert found["scheduled_for"] == soon.isoformat().replace("+00:00", "Z")
    assert found["status"] == "scheduled"


def test_uptime_is_cached_and_warmed_ahead_of_visitors(crew, client, page, api_service):
    from django.core.cache import cache

    from incidents.statuspages import snapshot

    check = make_check(api_service)
    make_component(page, "Web", source_kind="probe", target_id=check.pk)
    day_rows(check, {today(): (1000, 0, 0)})
    make_page(crew.team, slug="draft", title="Draft", published=False)
    assert snapshot.warm_uptimes() == 1  # published pages only

    def queries() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            body = client.get("/status/payments/").content.decode()
        return len(captured), body

    warm, _ = queries()
    cache.clear()
    cold, _ = queries()
    assert warm < cold  # the probe counts and the incidents are not read again
    day_rows(check, {today() - timedelta(days=1): (900, 0, 100)})
    _, stale = queries()
    assert "90.00% uptime" not in stale  # cached: bars lag up to five minutes
    snapshot.warm_uptimes()
    _, fresh = queries()
    assert f"{today() - timedelta(days=1):%d %b %Y}: 90.00% uptime" in fresh
