"""The web UI shell: sign-in, sign-out, password change, dashboard, live page, static assets."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.conftest import PASSWORD, declared_payload, make_user
from tocsin import views
from tocsin.events import record
from tocsin.models import Team

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_from(response: Any) -> str:
    match = CSRF_INPUT.search(response.content.decode())
    assert match, "the page has no CSRF token field"
    return match.group(1)


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def write_event(kind: str = "team.test", team: Team | None = None, label: str = "") -> Any:
    with transaction.atomic():
        return record(
            kind, team=team, subject=team, subject_label=label, payload=declared_payload(kind)
        )


# -- signing in and out ----------------------------------------------------------------------
def test_login_works_with_the_real_form_and_csrf(crew):
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("login"))
    assert page.status_code == 200
    response = client.post(
        reverse("login"),
        {"username": "viewer", "password": PASSWORD, "csrfmiddlewaretoken": csrf_from(page)},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert int(client.session[SESSION_KEY]) == crew.viewer.pk


def test_login_without_csrf_token_is_refused(crew):
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("login"))
    response = client.post(reverse("login"), {"username": "viewer", "password": PASSWORD})
    assert response.status_code == 403
    assert "The form expired" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_login_with_a_wrong_password_shows_an_error(crew):
    client = Client()
    response = client.post(reverse("login"), {"username": "viewer", "password": "nope"})
    assert response.status_code == 200
    assert "e-mail or username and password do not match" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_login_redirects_to_next(crew):
    client = Client()
    response = client.post(
        reverse("login") + "?next=/live/",
        {"username": "viewer", "password": PASSWORD, "next": "/live/"},
    )
    assert response["Location"] == "/live/"


def test_pages_redirect_anonymous_users_to_login(db):
    for name in ("dashboard", "alerts", "incidents", "probes", "slos", "backups", "live"):
        response = Client().get(reverse(name))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_logout_is_post_only(crew):
    client = logged_in(crew.viewer)
    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("dashboard")).status_code == 200


def test_logout_by_post_signs_out(crew):
    client = logged_in(crew.viewer)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("dashboard")).status_code == 302


def test_logout_button_is_a_post_form_with_csrf(crew):
    html = logged_in(crew.viewer).get(reverse("dashboard")).content.decode()
    form = re.search(r'<form method="post" action="/accounts/logout/">(.*?)</form>', html, re.S)
    assert form and "csrfmiddlewaretoken" in form.group(1)


def test_password_change_with_a_wrong_old_password_is_refused(crew):
    client = logged_in(crew.viewer)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "wrong",
            "new_password1": "n3w-Pass-phrase!",
            "new_password2": "n3w-Pass-phrase!",
        },
    )
    assert response.status_code == 200
    assert 'id="id_old_password_error"' in response.content.decode()
    crew.viewer.refresh_from_db()
    assert crew.viewer.check_password(PASSWORD)


def test_password_change_works_and_keeps_the_session(crew):
    client = Client(enforce_csrf_checks=True)
    client.force_login(crew.viewer)
    page = client.get(reverse("password_change"))
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "n3w-Pass-phrase!",
            "new_password2": "n3w-Pass-phrase!",
            "csrfmiddlewaretoken": csrf_from(page),
        },
    )
    assert response["Location"] == reverse("password_change_done")
    assert client.get(reverse("password_change_done")).status_code == 200
    assert client.get(reverse("dashboard")).status_code == 200
    crew.viewer.refresh_from_db()
    assert crew.viewer.check_password("n3w-Pass-phrase!")


# -- dashboard -------------------------------------------------------------------------------
# The dashboard's tiles, scoping and queries: tests/tocsin/test_dashboard*.py.
def test_dashboard_has_an_honest_empty_state_for_a_user_without_teams(db):
    loner = make_user("loner")
    html = logged_in(loner).get(reverse("dashboard")).content.decode()
    assert "not a member of any team" in html


def test_dashboard_shows_admin_link_only_to_those_who_may_use_admin(crew):
    assert 'href="/admin/"' in logged_in(crew.manager).get("/").content.decode()
    assert 'href="/admin/"' in logged_in(crew.admin).get("/").content.decode()
    assert 'href="/admin/"' not in logged_in(crew.responder).get("/").content.decode()


# -- upcoming feature pages ------------------------------------------------------------------
def test_no_feature_page_is_a_placeholder_any_more(crew):
    # SLOs (#12) were the last placeholder; tests/monitoring/test_slo_pages.py covers the page.
    response = logged_in(crew.viewer).get(reverse("slos"))
    assert response.status_code == 200
    assert "Nothing here yet" not in response.content.decode()


# -- live page -------------------------------------------------------------------------------
def test_live_page_shows_recent_events_visible_to_the_user(crew):
    mine = write_event(team=crew.team, label="payments-db")
    theirs = write_event(team=crew.other_team, label="search-index")
    html = logged_in(crew.viewer).get(reverse("live")).content.decode()
    assert f'data-event-id="{mine.pk}"' in html
    assert f'data-event-id="{theirs.pk}"' not in html
    assert 'id="live-events"' in html
    assert 'id="live-notice"' in html
    assert 'ws-connect="/ws/live/"' in html
    assert f'data-last-event-id="{mine.pk}"' in html


def test_live_page_shows_the_last_50_events_newest_first(crew):
    events = [write_event(team=crew.team) for _ in range(55)]
    html = logged_in(crew.viewer).get(reverse("live")).content.decode()
    ids = [int(i) for i in re.findall(r'data-event-id="(\d+)"', html)]
    assert ids == [e.pk for e in reversed(events)][:50]


def test_live_page_filters_by_team(crew):
    payments = write_event(team=crew.team)
    search = write_event(team=crew.other_team)
    html = logged_in(crew.admin).get(reverse("live") + "?team=search").content.decode()
    assert f'data-event-id="{search.pk}"' in html
    assert f'data-event-id="{payments.pk}"' not in html
    assert f'data-team-id="{crew.other_team.pk}"' in html


def test_live_page_with_an_unknown_team_is_404(crew):
    assert logged_in(crew.viewer).get(reverse("live") + "?team=nope").status_code == 404


def test_live_page_with_no_events_has_an_empty_state(crew):
    html = logged_in(crew.viewer).get(reverse("live")).content.decode()
    assert "No events yet" in html
    assert 'data-last-event-id="0"' in html


def test_live_page_query_count_does_not_grow_with_events(crew, django_assert_max_num_queries):
    for _ in range(60):
        write_event(team=crew.team)
    client = logged_in(crew.viewer)
    with django_assert_max_num_queries(5):
        response = client.get(reverse("live"))
    assert response.content.decode().count("data-event-id=") == 50


# -- error pages -----------------------------------------------------------------------------
def test_unknown_ui_path_renders_the_404_page(crew):
    response = logged_in(crew.viewer).get("/no/such/page/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
    assert response["Content-Type"].startswith("text/html")


def test_unknown_api_path_answers_json(db):
    response = Client().get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_server_error_handler_renders_html_for_pages_and_json_for_api(db):
    page = views.server_error(RequestFactory().get("/live/"))
    assert page.status_code == 500
    assert b"Server error" in page.content
    api = views.server_error(RequestFactory().get("/api/v1/x"))
    assert api.status_code == 500
    assert b'"server_error"' in api.content


# -- assets ----------------------------------------------------------------------------------
class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "action", "ws-connect"} and value:
                self.refs.append(value)


def page_refs(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    return parser.refs


def test_pages_reference_only_local_assets_that_resolve(crew):
    write_event(team=crew.team)
    client = logged_in(crew.manager)
    pages = [
        reverse("dashboard"),
        reverse("live"),
        reverse("teams"),
        reverse("team", args=["payments"]),
        reverse("tokens"),
        reverse("password_change"),
        reverse("alerts"),
        "/no/such/page/",
    ]
    static_refs: set[str] = set()
    for url in pages:
        html = client.get(url).content.decode()
        refs = page_refs(html)
        external = [r for r in refs if re.match(r"^(https?:)?//", r)]
        assert not external, f"{url} references external URLs: {external}"
        static_refs |= {r for r in refs if r.startswith(settings.STATIC_URL)}
    static_refs |= {
        r
        for r in page_refs(Client().get(reverse("login")).content.decode())
        if r.startswith(settings.STATIC_URL)
    }
    assert any("htmx.min" in r for r in static_refs)
    assert any("/ws." in r for r in static_refs)
    assert any("tocsin." in r and r.endswith(".css") for r in static_refs)
    assert any("tocsin." in r and r.endswith(".js") for r in static_refs)
    for ref in sorted(static_refs):
        response = Client().get(ref)
        assert response.status_code == 200, ref
        if hasattr(response, "close"):
            response.close()


def test_base_template_sends_csrf_token_with_htmx_requests(crew):
    client = logged_in(crew.viewer)
    html = client.get(reverse("dashboard")).content.decode()
    match = re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", html)
    assert match and match.group(1)
