"""Review of the status pages (#12): odd input answers 4xx, not 500; feed text is text; an
unsubscribe racing a delivery in flight does not break the sender."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone

from incidents.statuspages import publishing, subscribers
from incidents.statuspages.models import StatusDelivery, StatusSubscriber
from tests.feeds import assert_valid_atom
from tests.incidents.status_support import make_component, make_page

pytestmark = pytest.mark.usefixtures("fresh_throttles")

ATOM = "{http://www.w3.org/2005/Atom}"
# "²".isdigit() is True, but int("²") raises: such ids must be refused, not crash.
SUPERSCRIPT_TWO = "\u00b2"


@pytest.fixture
def page(crew):
    return make_page(crew.team)


def test_the_uptime_badge_refuses_a_non_ascii_digit_component(page, client):
    make_component(page, "API")
    response = client.get("/status/payments/badge/uptime.svg", {"component": SUPERSCRIPT_TWO})
    assert response.status_code == 404


def test_the_subscribe_form_refuses_a_non_ascii_digit_component(page, client):
    make_component(page, "API")
    response = client.post(
        "/status/payments/subscribe/", {"email": "r@example.org", "component": SUPERSCRIPT_TWO}
    )
    assert response.status_code == 400
    assert not StatusSubscriber.objects.exists()


def test_the_editor_refuses_a_non_ascii_digit_row(crew, api, page):
    make_component(page, "API")
    client = api(crew.manager)
    url = f"/status-pages/{page.pk}/component-delete/"
    response = client.post(url, {"id": SUPERSCRIPT_TWO})
    assert response.status_code == 302  # back to the editor with a message, not a 500


def test_feed_entries_carry_update_text_as_text_not_markup(page, client):
    make_component(page, "API")
    publishing.post_update(
        page,
        actor=None,
        status="investigating",
        body='<img src=x onerror="alert(1)"> & a < b',
        title="API down",
    )
    response = client.get("/status/payments/feed.atom")
    assert_valid_atom(response.content)
    [entry] = ET.fromstring(response.content).findall(f"{ATOM}entry")
    summary = entry.find(f"{ATOM}summary")
    # type="html": readers render the decoded text as HTML, so markup must arrive escaped.
    assert summary.get("type") == "html"
    assert "<img" not in summary.text
    assert "&lt;img src=x" in summary.text and "a &lt; b" in summary.text
    rss = ET.fromstring(client.get("/status/payments/feed.rss").content)
    [description] = rss.find("channel").find("item").iter("description")
    assert "<img" not in description.text and "&lt;img src=x" in description.text


def test_an_unsubscribe_during_a_delivery_does_not_break_the_sender(crew, smtp, page):
    make_component(page, "API")
    gone, stays = (
        StatusSubscriber.objects.create(
            page=page, kind="email", email=address, confirmed_at=timezone.now()
        )
        for address in ("gone@example.org", "stays@example.org")
    )
    publishing.post_update(page, actor=None, status="investigating", body="x", title="y")
    delivery = subscribers.claim_one(timezone.now())
    assert delivery.subscriber == gone
    StatusSubscriber.objects.filter(pk=gone.pk).delete()  # one-click unsubscribe, meanwhile
    subscribers.send_one(delivery)  # no "save did not affect any rows" crash
    assert subscribers.send_due() == 1
    assert StatusDelivery.objects.get().subscriber == stays


def test_a_component_refused_for_its_manual_status_is_not_created_anyway(crew, api, page):
    response = api(crew.manager).post(
        "/api/v1/status-components/",
        {
            "page": page.pk,
            "name": "API",
            "manual_status": "major_outage",
            "manual_until": "2001-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "manual_until" in response.json()["error"]["fields"]
    assert not page.components.exists()  # a retry must not leave two


def _confirmed(page, address: str = "r@example.org") -> StatusSubscriber:
    return StatusSubscriber.objects.create(
        page=page, kind="email", email=address, confirmed_at=timezone.now()
    )


def test_updates_posted_on_an_unpublished_page_are_not_mailed(crew, page):
    make_component(page, "API")
    _confirmed(page)
    page.published = False
    page.save(update_fields=["published"])  # taken private again
    publishing.post_update(
        page, actor=None, status="investigating", body="Internal only", title="Hush"
    )
    assert not StatusDelivery.objects.exists()


def test_a_subscriber_can_unsubscribe_from_a_page_taken_private(crew, client, page):
    subscriber = _confirmed(page)
    token = subscribers.token_for(subscriber, "leave")
    page.published = False
    page.save(update_fields=["published"])
    assert client.get(f"/status/payments/unsubscribe/{token}/").status_code == 200
    # RFC 8058 one-click: a POST from the mail client, no page in between.
    response = client.post(f"/status/payments/unsubscribe/{token}/")
    assert response.status_code == 200
    assert not StatusSubscriber.objects.exists()
    # Without a valid token the private page is still not there.
    assert client.get("/status/payments/unsubscribe/forged/").status_code == 404


def test_unsubscribe_links_work_when_the_custom_domain_no_longer_serves_the_page(
    crew, client, page
):
    page.custom_domain = "status.example.com"
    page.save(update_fields=["custom_domain"])
    subscriber = _confirmed(page)
    link = subscribers.unsubscribe_url(subscriber)
    page.published = False  # the domain now answers nothing for it
    page.save(update_fields=["published"])
    path = link.split("://", 1)[1].split("/", 1)[1]
    host = link.split("://", 1)[1].split("/", 1)[0]
    response = client.post("/" + path, HTTP_HOST=host)
    assert response.status_code == 200
    assert not StatusSubscriber.objects.exists()
