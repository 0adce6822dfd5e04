"""A published page on its own domain: the Host header picks the page, served at /."""

from __future__ import annotations

import pytest
from django.test import override_settings

from incidents.statuspages import services
from tests.incidents.status_support import make_component, make_page

HOSTS = ["testserver", "status.acme.example", "other.example"]


@pytest.fixture(autouse=True)
def _no_cached_domains():
    """The middleware caches host → page; another test's rolled-back page must not linger."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def page(crew):
    page = make_page(crew.team, custom_domain="Status.Acme.Example")
    make_component(page, "API")
    return page


@override_settings(ALLOWED_HOSTS=HOSTS)
def test_the_page_and_its_api_answer_at_the_root_of_its_domain(client, page):
    assert page.custom_domain == "status.acme.example"
    response = client.get("/", HTTP_HOST="status.acme.example")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Payments status" in body and 'href="/history/"' in body
    data = client.get("/api/v2/summary.json", HTTP_HOST="status.acme.example").json()
    assert data["page"]["url"] == "http://status.acme.example/"
    assert client.get("/history/", HTTP_HOST="status.acme.example").status_code == 200
    atom = client.get("/feed.atom", HTTP_HOST="status.acme.example")
    assert atom.status_code == 200
    assert client.get("/badge/status.svg", HTTP_HOST="status.acme.example").status_code == 200


@override_settings(ALLOWED_HOSTS=HOSTS)
def test_the_domain_serves_nothing_but_the_page(client, page):
    for path in ("/admin/", "/api/v1/teams/", "/incidents/", "/status-pages/", "/login/"):
        assert client.get(path, HTTP_HOST="status.acme.example").status_code == 404, path
    # Tocsin's own host is unchanged, and an unknown host is not a status page.
    assert client.get("/status/payments/").status_code == 200
    assert client.get("/", HTTP_HOST="other.example").status_code != 200 or (
        b"Payments status" not in client.get("/", HTTP_HOST="other.example").content
    )


@override_settings(ALLOWED_HOSTS=HOSTS)
def test_unpublishing_or_moving_the_page_takes_effect_at_once(client, page):
    assert client.get("/", HTTP_HOST="status.acme.example").status_code == 200
    services.save_page(page, actor=None, published=False)
    response = client.get("/", HTTP_HOST="status.acme.example")
    assert b"Payments status" not in response.content
    services.save_page(page, actor=None, published=True, custom_domain="other.example")
    assert b"Payments status" in client.get("/", HTTP_HOST="other.example").content
    assert b"Payments status" not in client.get("/", HTTP_HOST="status.acme.example").content


def test_a_domain_must_look_like_a_host_name_and_be_unique(crew, page):
    from tocsin.services import ServiceError

    for bad in ("http://x.example", "x.example:8080", "not a domain", "localhost"):
        with pytest.raises(ServiceError) as caught:
            services.save_page(page, actor=None, custom_domain=bad)
        assert caught.value.field == "custom_domain"
        page.refresh_from_db()
    other = make_page(crew.team, slug="two", title="Two")
    with pytest.raises(ServiceError) as caught:
        services.save_page(other, actor=None, custom_domain="status.acme.example")
    assert caught.value.code == "duplicate"


@override_settings(ALLOWED_HOSTS=HOSTS)
def test_the_async_path_routes_the_domain_too(page):
    """Under ASGI the middleware runs as a coroutine; own-host requests skip the look-up."""
    from asgiref.sync import async_to_sync
    from django.http import HttpResponse
    from django.test import RequestFactory

    from incidents.statuspages.domains import CustomDomainMiddleware

    seen = []

    async def view(request):
        seen.append(getattr(request, "urlconf", None))
        return HttpResponse("ok")

    middleware = CustomDomainMiddleware(view)
    factory = RequestFactory()
    for host in ("status.acme.example", "testserver", "other.example"):
        async_to_sync(middleware)(factory.get("/", HTTP_HOST=host))
    assert seen == ["incidents.statuspages.domains", None, None]


@override_settings(TOCSIN_BASE_URL="https://tocsin.acme.example/")
def test_tocsins_own_host_cannot_be_a_pages_domain(crew, page):
    from tocsin.services import ServiceError

    for own in ("tocsin.acme.example", "Tocsin.Acme.Example.", "127.0.0.1"):
        with pytest.raises(ServiceError) as caught:
            services.save_page(page, actor=None, custom_domain=own)
        assert caught.value.field == "custom_domain"
        assert "Tocsin's own address" in caught.value.message
        page.refresh_from_db()
        assert page.custom_domain == "status.acme.example"
