"""Subscribers: double opt-in through a real SMTP server, mail on each public update of their
components, one-click unsubscribe, webhooks with retries, nothing lost silently."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from incidents.notifications.channels.webhook import sign
from incidents.statuspages import publishing, subscribers
from incidents.statuspages.models import DeliveryState, StatusDelivery, StatusSubscriber
from monitoring.models import MaintenanceWindow, Service
from tests.incidents.status_support import make_component, make_page, open_incident
from tocsin.models import Event

pytestmark = pytest.mark.usefixtures("fresh_throttles")  # the subscribe form counts per address


@pytest.fixture
def page(crew):
    return make_page(crew.team)


@pytest.fixture
def service(crew):
    return Service.objects.create(team=crew.team, name="Checkout API")


def mail_text(message) -> str:
    return message.get_payload(decode=True).decode()


def link_in(message, word: str) -> str:
    [url] = [u for u in re.findall(r"https?://\S+", mail_text(message)) if f"/{word}/" in u]
    return urlsplit(url).path


def subscribe(client, email: str, **extra) -> None:
    response = client.post("/status/payments/subscribe/", {"email": email, **extra})
    assert response.status_code == 200 and b"Check your inbox" in response.content


def test_double_opt_in_then_a_mail_per_update_then_one_click_unsubscribe(
    crew, client, smtp, page, service
):
    component = make_component(page, "Checkout", service=service)
    subscribe(client, "Reader@Example.org")
    subscriber = StatusSubscriber.objects.get()
    assert subscriber.email == "reader@example.org" and not subscriber.is_confirmed

    # Nothing is sent to an unconfirmed address but the confirmation itself.
    publishing.post_update(page, actor=None, status="investigating", body="Early", title="Early")
    assert subscribers.send_due() == 1
    [(to, confirmation)] = smtp.messages
    assert to == ["reader@example.org"]
    assert "Confirm your subscription" in confirmation["Subject"]
    assert confirmation["List-Unsubscribe"] is None

    # Following the link only asks (mail scanners follow links); the button POSTs.
    response = client.get(link_in(confirmation, "confirm"))
    assert response.status_code == 200 and b"Confirm your subscription" in response.content
    subscriber.refresh_from_db()
    assert not subscriber.is_confirmed
    response = client.post(link_in(confirmation, "confirm"))
    assert response.status_code == 200 and b"Subscribed" in response.content
    subscriber.refresh_from_db()
    assert subscriber.is_confirmed

    incident = open_incident(service, "P1", title="internal only")
    page.services.add(service)
    publishing.post_update(
        page,
        actor=crew.responder,
        incident=incident,
        status="identified",
        body="The payment provider is down; we are switching.",
        title="Payments failing",
        impact="critical",
    )
    assert subscribers.send_due() == 1
    (to, update) = smtp.messages[-1]
    assert to == ["reader@example.org"]
    assert update["Subject"] == "[Payments status] Payments failing: Identified"
    text = mail_text(update)
    assert "The payment provider is down" in text and "internal only" not in text
    assert update["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    leave = re.fullmatch(r"<(.+)>", "".join(update["List-Unsubscribe"].split())).group(1)
    assert urlsplit(leave).path == link_in(update, "unsubscribe")
    assert component.pk

    # A link scanner's GET does not unsubscribe; the mail client's one-click POST does.
    assert client.get(urlsplit(leave).path).status_code == 200
    assert StatusSubscriber.objects.exists()
    response = client.post(urlsplit(leave).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and b"Unsubscribed" in response.content
    assert not StatusSubscriber.objects.exists()
    publishing.post_update(
        page,
        actor=None,
        status="resolved",
        body="Done",
        public_incident=incident.public_incidents.get(),
    )
    assert subscribers.send_due() == 0
    assert len(smtp.messages) == 2
    assert client.post(urlsplit(leave).path).status_code == 400  # the link is spent


def test_subscribers_of_one_component_hear_only_of_it(crew, client, smtp, page):
    api_c = make_component(page, "API")
    web_c = make_component(page, "Web")
    subscribe(client, "api-only@example.org", component=[api_c.pk])
    subscribe(client, "everything@example.org")
    for s in StatusSubscriber.objects.all():
        subscribers.confirm(subscribers.token_for(s, "confirm"))
    publishing.post_update(
        page,
        actor=None,
        status="investigating",
        body="Web is slow",
        title="Web",
        component_ids=[web_c.pk],
    )
    publishing.post_update(
        page,
        actor=None,
        status="investigating",
        body="API errors",
        title="API",
        component_ids=[api_c.pk],
    )
    subscribers.send_due()
    received = sorted(
        (to[0], m["Subject"]) for to, m in smtp.messages if "Confirm" not in m["Subject"]
    )
    assert received == [
        ("api-only@example.org", "[Payments status] API: Investigating"),
        ("everything@example.org", "[Payments status] API: Investigating"),
        ("everything@example.org", "[Payments status] Web: Investigating"),
    ]


def test_asking_again_does_not_flood_an_inbox(crew, client, smtp, page):
    for _ in range(5):
        subscribe(client, "victim@example.org")
    subscribers.send_due()
    assert len(smtp.messages) == 1
    assert client.post("/status/payments/subscribe/", {"email": "nope"}).status_code == 400
    assert (
        client.post(
            "/status/payments/subscribe/", {"email": "a@b.org", "component": ["x"]}
        ).status_code
        == 400
    )
    assert StatusSubscriber.objects.count() == 1


def test_forged_or_reused_tokens_are_refused(crew, client, page):
    subscribe(client, "reader@example.org")
    subscriber = StatusSubscriber.objects.get()
    token = subscribers.token_for(subscriber, "confirm")
    assert client.post(f"/status/payments/confirm/{token[:-2]}xx/").status_code == 400
    leave = subscribers.token_for(subscriber, "leave")
    assert client.post(f"/status/payments/confirm/{leave}/").status_code == 400  # wrong purpose
    assert client.get(f"/status/payments/confirm/{leave}/").status_code == 400
    assert not StatusSubscriber.objects.get().is_confirmed
    assert client.post(f"/status/payments/confirm/{token}/").status_code == 200
    assert StatusSubscriber.objects.get().is_confirmed


def test_a_maintenance_notice_is_mailed(crew, client, smtp, page, service):
    make_component(page, "Checkout", service=service)
    subscribe(client, "reader@example.org")
    subscribers.confirm(subscribers.token_for(StatusSubscriber.objects.get(), "confirm"))
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        service=service,
        title="internal",
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1),
    )
    publishing.save_maintenance_notice(
        page, window, actor=crew.manager, title="Database upgrade", note="Two minutes of errors."
    )
    subscribers.send_due()
    (_to, message) = smtp.messages[-1]
    assert message["Subject"] == "[Payments status] Database upgrade"
    assert "Two minutes of errors." in mail_text(message) and "internal" not in mail_text(message)


def test_webhooks_get_signed_json_and_failures_retry_until_given_up(crew, receiver, page):
    component = make_component(page, "API")
    hook = subscribers.add_webhook(page, receiver.url, secret="s" * 20, actor=crew.manager)
    assert hook.webhook["url"] == receiver.url
    update = publishing.post_update(
        page, actor=None, status="investigating", body="Errors", title="API down", impact="major"
    )
    assert subscribers.send_due() == 1
    [hit] = receiver.requests
    ts = hit.headers["X-Tocsin-Timestamp"]
    assert hit.headers["X-Tocsin-Signature"] == sign("s" * 20, ts, hit.body)
    document = json.loads(hit.body)
    assert document["incident"]["name"] == "API down"
    assert document["incident"]["incident_updates"][0]["body"] == "Errors"
    assert document["page"]["status_indicator"] == "major"
    assert document["meta"]["unsubscribe"].startswith("http")

    receiver.codes = [500]
    publishing.post_update(
        page, actor=None, status="resolved", body="Fixed", public_incident=update.public_incident
    )
    assert subscribers.send_due() == 0
    delivery = StatusDelivery.objects.get(topic="incident", state=DeliveryState.PENDING)
    assert delivery.attempts == 1 and "500" in delivery.last_error
    assert delivery.next_attempt_at > timezone.now()
    for _ in range(StatusDelivery.MAX_ATTEMPTS):
        subscribers.send_due(now=timezone.now() + timedelta(days=30))
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED  # kept, with its error: not lost silently
    assert delivery.attempts == StatusDelivery.MAX_ATTEMPTS
    assert component.pk


def test_a_claimed_delivery_is_not_sent_twice(crew, smtp, page):
    make_component(page, "API")
    subscriber = StatusSubscriber.objects.create(
        page=page, kind="email", email="r@example.org", confirmed_at=timezone.now()
    )
    publishing.post_update(page, actor=None, status="investigating", body="x", title="y")
    now = timezone.now()
    first = subscribers.claim_one(now)
    assert first is not None
    assert subscribers.claim_one(now) is None  # another worker finds it claimed
    # A worker that died holding it: the lease runs out and another takes it over.
    assert subscribers.claim_one(now + subscribers.LEASE + timedelta(seconds=1)) is not None
    assert subscriber.pk


def test_subscriptions_are_in_the_event_log(crew, client, page):
    subscribe(client, "reader@example.org")
    subscriber = StatusSubscriber.objects.get()
    subscribers.confirm(subscribers.token_for(subscriber, "confirm"))
    kinds = list(Event.objects.filter(team=crew.team).values_list("kind", flat=True))
    assert "status_subscriber.created" in kinds and "status_subscriber.confirmed" in kinds
    # The address itself is not written to the event log.
    assert not Event.objects.filter(subject_label__contains="reader@").exists()


def test_the_public_form_offers_each_component(crew, client, page):
    one = make_component(page, "API")
    make_component(page, "Web")
    body = client.get("/status/payments/").content.decode()
    assert f'name="component" value="{one.pk}"' in body
    subscribe(client, "picky@example.org", component=[one.pk])
    assert list(StatusSubscriber.objects.get().components.all()) == [one]


def test_deleting_a_component_does_not_turn_its_followers_into_everything_followers(crew, page):
    from incidents.statuspages import services

    api_c = make_component(page, "API")
    web_c = make_component(page, "Web")
    only_api = StatusSubscriber.objects.create(page=page, kind="email", email="a@example.org")
    only_api.components.set([api_c])
    both = StatusSubscriber.objects.create(page=page, kind="email", email="b@example.org")
    both.components.set([api_c, web_c])
    everything = StatusSubscriber.objects.create(page=page, kind="email", email="c@example.org")
    services.delete_component(api_c, actor=crew.manager)
    assert set(StatusSubscriber.objects.values_list("email", flat=True)) == {
        "b@example.org",
        "c@example.org",
    }
    assert list(both.components.all()) == [web_c] and everything.pk


def test_the_outbox_and_the_uptime_warmer_are_scheduled(db):
    from tocsin.scheduling import registered

    tasks = {t.name: t for t in registered()}
    assert tasks["incidents.status_deliveries"].func == "incidents.statuspages.subscribers.send_due"
    assert tasks["incidents.status_deliveries"].minutes == 1
    assert tasks["incidents.status_uptime"].func == "incidents.statuspages.snapshot.warm_uptimes"


def test_one_address_cannot_send_confirmations_without_end(crew, client, page):
    from incidents.statuspages.public import SUBSCRIBE_PER_HOUR

    for n in range(SUBSCRIBE_PER_HOUR):
        subscribe(client, f"reader{n}@example.org")
    response = client.post("/status/payments/subscribe/", {"email": "one-more@example.org"})
    assert response.status_code == 429 and b"Too many subscriptions" in response.content
    assert StatusSubscriber.objects.count() == SUBSCRIBE_PER_HOUR
