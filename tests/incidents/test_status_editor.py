"""The editor (managers), the preview (every member) and the incident page's "post a public
update" form (responders), with every permission checked server-side."""

from __future__ import annotations

import pytest

from incidents.statuspages.models import Component, PublicIncident, StatusPage
from monitoring.models import Service
from tests.incidents.status_support import make_component, make_page, open_incident
from tocsin.models import Event

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def service(crew):
    return Service.objects.create(team=crew.team, name="Checkout API")


@pytest.fixture
def page(crew, service):
    page = make_page(crew.team, published=False)
    page.services.add(service)
    return page


def test_members_see_the_list_managers_may_edit(crew, api, page):
    for role in ("viewer", "responder"):
        client = api(crew.by_role(role))
        listing = client.get("/status-pages/")
        assert listing.status_code == 200 and b"Payments status" in listing.content
        assert b"New status page" not in listing.content
        assert client.get(f"/status-pages/{page.pk}/").status_code == 403
        assert client.get("/status/payments/").status_code == 200  # the preview
    manager = api(crew.manager)
    assert b"New status page" in manager.get("/status-pages/").content
    assert manager.get(f"/status-pages/{page.pk}/").status_code == 200
    assert api(crew.outsider).get(f"/status-pages/{page.pk}/").status_code == 404
    assert b"Payments status" not in api(crew.outsider).get("/status-pages/").content
    assert api().get("/status-pages/").status_code == 302  # to the login page


def test_a_manager_creates_a_page_private_until_published(crew, api, client, service):
    response = api(crew.manager).post(
        "/status-pages/new/",
        {
            "team": crew.team.pk,
            "title": "Shop",
            "slug": "shop",
            "brand_colour": "#112233",
            "header_colour": "#000000",
            "time_zone": "UTC",
            "services": [service.pk],
        },
    )
    page = StatusPage.objects.get(slug="shop")
    assert response.status_code == 302 and response["Location"] == f"/status-pages/{page.pk}/"
    assert not page.published and list(page.services.all()) == [service]
    assert client.get("/status/shop/").status_code == 404
    assert Event.objects.filter(kind="status_page.created", subject_id=str(page.pk)).exists()


def test_bad_input_is_a_form_error_not_a_500(crew, api, page):
    manager = api(crew.manager)
    response = manager.post(
        "/status-pages/new/",
        {
            "team": crew.team.pk,
            "title": "Again",
            "slug": "payments",
            "brand_colour": "blue",
            "header_colour": "#000000",
            "time_zone": "UTC",
        },
    )
    assert response.status_code == 400
    assert StatusPage.objects.count() == 1
    response = manager.post(
        f"/status-pages/{page.pk}/",
        {
            "title": "P",
            "slug": "payments",
            "brand_colour": "#000000",
            "header_colour": "#000000",
            "time_zone": "Nowhere/City",
        },
    )
    assert response.status_code == 400 and b"unknown time zone" in response.content
    stranger = Service.objects.create(team=crew.other_team, name="Theirs")
    response = manager.post(
        f"/status-pages/{page.pk}/action/component-add/".replace("action/", ""),
        {"name": "X", "service": stranger.pk},
    )
    assert response.status_code == 302
    assert not Component.objects.exists()


def test_only_managers_change_anything(crew, api, page):
    for role in ("viewer", "responder"):
        response = api(crew.by_role(role)).post(
            f"/status-pages/{page.pk}/component-add/", {"name": "API"}
        )
        assert response.status_code == 403
    assert (
        api(crew.outsider)
        .post(f"/status-pages/{page.pk}/component-add/", {"name": "API"})
        .status_code
        == 404
    )
    assert not Component.objects.exists()
    response = api(crew.manager).post(f"/status-pages/{page.pk}/component-add/", {"name": "API"})
    assert response.status_code == 302
    assert Component.objects.get().name == "API"


def test_a_manager_edits_groups_components_logo_and_manual_status(crew, api, client, page):
    manager = api(crew.manager)
    base = f"/status-pages/{page.pk}/"
    manager.post(base + "group-add/", {"name": "Core", "position": 1})
    group = page.groups.get()
    manager.post(base + "component-add/", {"name": "API", "group": group.pk})
    component = page.components.get()
    assert component.group == group
    manager.post(base + "component-status/", {"id": component.pk, "status": "major_outage"})
    component.refresh_from_db()
    assert component.manual_status == "major_outage"
    manager.post(base + "logo/", {"logo": _upload(PNG)})
    page.refresh_from_db()
    assert page.logo_type == "image/png"
    manager.post(base + "logo/", {"logo": _upload(b"<svg onload=alert(1)>")})
    page.refresh_from_db()
    assert page.logo_type == "image/png"  # refused: not an image type we serve
    response = api(crew.viewer).get("/status/payments/logo")
    assert response.content == PNG and response["Content-Security-Policy"] == "default-src 'none'"
    manager.post(base, _page_post(published="on"))
    assert client.get("/status/payments/").status_code == 200
    assert b"Major outage" in client.get("/status/payments/").content
    manager.post(base + "delete/")
    assert not StatusPage.objects.exists()


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("logo.png", data, content_type="image/png")


def _page_post(**extra):
    return {
        "title": "Payments status",
        "slug": "payments",
        "brand_colour": "#1f6feb",
        "header_colour": "#24292f",
        "time_zone": "UTC",
        **extra,
    }


# --- the incident page's form ------------------------------------------------------------------


def test_a_responder_posts_public_updates_from_the_incident_page(crew, api, client, page, service):
    component = make_component(page, "Checkout", service=service)
    incident = open_incident(service, "P1", title="zz internal title")
    responder = api(crew.responder)
    body = responder.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Post public update" in body and "Payments status" in body
    url = f"/incidents/{incident.pk}/public-update/"
    response = responder.post(
        url,
        {
            "page": page.pk,
            "title": "Checkout is failing",
            "status": "investigating",
            "impact": "critical",
            "body": "We are looking into failed payments.",
        },
    )
    assert response.status_code == 302
    public = PublicIncident.objects.get()
    assert (public.title, public.incident, public.impact) == (
        "Checkout is failing",
        incident,
        "critical",
    )
    assert list(public.components.all()) == [component]  # the service's components by default
    responder.post(url, {"page": page.pk, "status": "resolved", "body": "Fixed."})
    public.refresh_from_db()
    assert public.status == "resolved" and public.resolved_at is not None
    assert public.updates.count() == 2
    kinds = Event.objects.filter(subject_type="incident", subject_id=str(incident.pk))
    assert kinds.filter(kind="status_page.update_posted").count() == 2
    page.published = True
    page.save()
    public_body = client.get(f"/status/payments/incidents/{public.pk}/").content.decode()
    assert "We are looking into failed payments." in public_body
    assert "zz internal title" not in public_body


def test_viewers_cannot_post_and_strangers_get_404(crew, api, page, service):
    incident = open_incident(service, "P1")
    url = f"/incidents/{incident.pk}/public-update/"
    data = {"page": page.pk, "title": "T", "status": "investigating", "body": "B"}
    assert api(crew.viewer).post(url, data).status_code == 403
    assert api(crew.outsider).post(url, data).status_code == 404
    assert b"Post public update" not in api(crew.viewer).get(f"/incidents/{incident.pk}/").content
    assert not PublicIncident.objects.exists()


def test_a_bad_public_update_is_refused_with_a_message(crew, api, page, service):
    incident = open_incident(service, "P1")
    other = make_page(crew.team, slug="elsewhere", title="Elsewhere")  # does not cover it
    url = f"/incidents/{incident.pk}/public-update/"
    responder = api(crew.responder)
    cases = [
        {"page": page.pk, "status": "investigating", "body": "B"},  # no title yet
        {"page": page.pk, "title": "T", "status": "exploded", "body": "B"},
        {"page": other.pk, "title": "T", "status": "investigating", "body": "B"},
        {"page": "x", "title": "T", "status": "investigating", "body": "B"},
        {"page": page.pk, "title": "T", "status": "investigating", "body": "B", "components": [9]},
    ]
    for data in cases:
        response = responder.post(url, data, follow=True)
        assert response.status_code == 200
        assert b"message-error" in response.content, data
    assert not PublicIncident.objects.exists()


def test_the_editor_shows_everything_a_manager_configures(crew, api, page, service):
    from datetime import timedelta

    from django.utils import timezone

    from incidents.statuspages import services, subscribers
    from monitoring.models import MaintenanceWindow
    from tests.incidents.status_support import make_check, make_group

    group = make_group(page, "Core")
    check = make_check(service, "Shop front")
    make_component(
        page, "API", group=group, service=service, source_kind="probe", target_id=check.pk
    )
    manual = make_component(page, "Search")
    services.set_manual_status(manual, "partial_outage", actor=None)
    now = timezone.now()
    MaintenanceWindow.objects.create(
        service=service, title="DB patch", starts_at=now, ends_at=now + timedelta(hours=1)
    )
    subscribers.add_webhook(page, "https://hooks.example.org/x", actor=crew.manager)
    response = api(crew.manager).get(f"/status-pages/{page.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    for text in (
        "Core",
        "API",
        "Search",
        "Partial outage",
        "DB patch",
        "Webhook #",
        "Probe checks: Shop front",
    ):
        assert text in body, text
    response = api(crew.manager).post(
        f"/status-pages/{page.pk}/maintenance/",
        {"window": MaintenanceWindow.objects.get().pk, "title": "Upgrade", "note": "Brief"},
    )
    assert response.status_code == 302
    assert page.maintenances.get().title == "Upgrade"
