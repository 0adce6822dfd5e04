"""The outbound guard (issue #14): notification channels, contact methods, status-page webhooks.

Every path is tried against 127.0.0.1, [::1], 169.254.169.254, 10.0.0.1 and ``localhost``
with the guard as shipped (no allow-list), and must refuse before any connection is opened;
the loopback ones point at a real receiver, so a guard that let them through would be seen
delivering. Then an allow-listed address goes through.
"""

# ruff: noqa: F401, F811  (pytest fixtures imported from tests.tocsin.outbound_support)
from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from incidents.models import ContactMethod, Delivery, NotificationChannel
from incidents.notifications import outbox
from incidents.notifications.channels import post_json
from incidents.statuspages import publishing, subscribers
from incidents.statuspages.models import DeliveryState, StatusDelivery
from tests.incidents.status_support import make_page
from tests.tocsin.outbound_support import (
    GUARD,
    REFUSED,
    connections,
    guarded,
    left_loopback,
    receiver,
    touched,
)
from tocsin import outbound

SECRET = "a-shared-secret-of-some-length"


# ---- the guard itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("100.64.0.1", "shared address space (carrier-grade NAT)"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),
        ("2002:7f00:1::", "loopback"),
        ("93.184.215.14", ""),
        ("2606:4700::1111", ""),
    ],
)
def test_it_classifies_addresses(address: str, reason: str) -> None:
    import ipaddress

    assert outbound.reason_for(ipaddress.ip_address(address)) == reason


def test_it_refuses_a_name_if_any_of_its_addresses_is_refused(guarded) -> None:
    with pytest.raises(outbound.Refused) as caught:
        outbound.resolve("localhost", 80)
    assert str(caught.value).startswith(GUARD) and "is loopback" in str(caught.value)
    assert outbound.is_refusal(str(caught.value))
    assert outbound.resolve("93.184.215.14") == ["93.184.215.14"]  # a literal: no lookup


def test_the_allow_list_lets_named_networks_through(guarded) -> None:
    guarded.TOCSIN_OUTBOUND_ALLOW = ["10.0.0.0/8", "::1"]
    assert outbound.resolve("10.0.0.1") == ["10.0.0.1"]
    assert outbound.resolve("[::1]") == ["::1"]
    with pytest.raises(outbound.Refused):
        outbound.resolve("169.254.169.254")
    with pytest.raises(outbound.Refused):  # the probes' own list is for probes only
        guarded.TOCSIN_PROBE_ALLOW = ["169.254.0.0/16"]
        outbound.resolve("169.254.169.254")
    assert outbound.resolve("169.254.169.254", probe=True) == ["169.254.169.254"]


def test_a_bad_allow_list_entry_stops_the_start(monkeypatch) -> None:
    from tocsin.env import env_networks

    monkeypatch.setenv("TOCSIN_OUTBOUND_ALLOW", "10.0.0.0/8, nonsense")
    with pytest.raises(ImproperlyConfigured, match="nonsense"):
        env_networks("TOCSIN_OUTBOUND_ALLOW")
    monkeypatch.setenv("TOCSIN_OUTBOUND_ALLOW", "10.0.0.0/8, ::1/128 ,")
    assert env_networks("TOCSIN_OUTBOUND_ALLOW") == ["10.0.0.0/8", "::1/128"]


def test_the_client_connects_to_the_checked_address_keeping_the_name(
    guarded, receiver, connections
) -> None:
    guarded.TOCSIN_OUTBOUND_ALLOW = ["127.0.0.0/8", "::1/128"]
    with outbound.client(timeout=5) as client:
        response = client.get(receiver.url("localhost", "/named"))
    assert response.status_code == 200
    assert str(response.url) == receiver.url("localhost", "/named")  # the name, not the address
    assert receiver.requests == [("GET", "/named", f"localhost:{receiver.port}")]
    assert touched(connections, "localhost", receiver.port)
    assert left_loopback(connections) == []


# ---- notification channels (webhook, Slack, Teams, PagerDuty: one HTTP sender) ----------


@pytest.mark.parametrize(("host", "address", "reason"), REFUSED)
def test_a_channel_refuses_and_fails_for_good(
    crew, guarded, receiver, connections, host, address, reason
) -> None:
    port = f":{receiver.port}" if address in ("127.0.0.1", "::1", "localhost") else ""
    url = f"http://{host}{port}/hook"
    channel = NotificationChannel.objects.create(
        team=crew.team, kind="webhook", name="hook", config={"url": url, "secret": SECRET}
    )
    delivery = outbox.send_test(channel=channel, actor=crew.manager)

    assert delivery.status == "failed"  # no retry: the address will not change its class
    assert delivery.attempts == 1
    assert delivery.last_error.startswith(GUARD) and reason in delivery.last_error
    assert delivery.response_code is None and delivery.response_excerpt == ""
    assert receiver.requests == []
    assert not touched(connections, address)
    assert left_loopback(connections) == []


def test_a_channel_to_an_allow_listed_address_delivers(crew, guarded, receiver) -> None:
    guarded.TOCSIN_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    channel = NotificationChannel.objects.create(
        team=crew.team,
        kind="webhook",
        name="hook",
        config={"url": receiver.url(), "secret": SECRET},
    )
    delivery = outbox.send_test(channel=channel, actor=crew.manager)
    assert delivery.status == "sent", delivery.last_error
    assert [r[1] for r in receiver.requests] == ["/hook"]


def test_a_slack_channel_is_refused_too(crew, guarded, connections) -> None:
    result = post_json("https://169.254.169.254/services/T0/B0/xyz", b"{}")
    assert not result.ok and not result.retryable
    assert result.error == GUARD + "169.254.169.254 is a cloud metadata address"
    assert connections == []


# ---- personal contact methods --------------------------------------------------------------


URL = "/account/notifications/"


@pytest.mark.parametrize(("host", "address", "reason"), REFUSED)
def test_a_contact_method_test_is_refused(
    api, crew, guarded, receiver, connections, host, address, reason
) -> None:
    port = f":{receiver.port}" if address in ("127.0.0.1", "::1", "localhost") else ""
    method = ContactMethod.objects.create(
        user=crew.manager,
        kind="webhook",
        config={"url": f"http://{host}{port}/hook", "secret": SECRET},
    )
    response = api(crew.manager).post(f"/api/v1/contact-methods/{method.pk}/test/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed" and body["attempts"] == 1
    assert body["last_error"].startswith(GUARD) and reason in body["last_error"]  # a manager
    assert receiver.requests == []
    assert left_loopback(connections) == []


def test_a_non_manager_gets_a_generic_result_without_the_answer(
    api, crew, guarded, receiver
) -> None:
    guarded.TOCSIN_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    method = ContactMethod.objects.create(
        user=crew.responder,
        kind="webhook",
        config={"url": receiver.url(path="/missing"), "secret": SECRET},
    )
    responder = api(crew.responder)
    sent = responder.post(f"/api/v1/contact-methods/{method.pk}/test/").json()
    assert sent["status"] == "sent" and sent["response_code"] is None
    assert sent["response_excerpt"] == "" and sent["last_error"] == ""

    method.config = {"url": "http://10.0.0.1/hook", "secret": SECRET}
    method.save()
    failed = responder.post(f"/api/v1/contact-methods/{method.pk}/test/").json()
    assert failed["status"] == "failed"
    assert failed["last_error"] == "failed — ask a manager to check the delivery log"
    assert "10.0.0.1" not in str(failed)
    # The delivery log keeps the reason, for the team's managers.
    delivery = Delivery.objects.get(pk=failed["id"])
    assert delivery.last_error == GUARD + "10.0.0.1 is private"
    managers_view = api(crew.manager).get(f"/api/v1/deliveries/{delivery.pk}/")
    assert managers_view.json()["last_error"] == GUARD + "10.0.0.1 is private"


def test_the_settings_page_test_is_generic_for_non_managers(client, crew, guarded) -> None:
    method = ContactMethod.objects.create(
        user=crew.responder,
        kind="webhook",
        config={"url": "http://169.254.169.254/latest/meta-data/", "secret": SECRET},
    )
    client.force_login(crew.responder)
    response = client.post(f"{URL}methods/{method.pk}/test/", follow=True)
    body = response.content.decode()
    assert "failed — ask a manager to check the delivery log" in body
    # The label names the person's own destination; what happened there is not said.
    assert "outbound guard" not in body and "metadata address" not in body


@pytest.mark.parametrize("kind", ["webhook", "apprise"])
def test_a_viewer_may_not_have_a_webhook_contact_method(api, crew, kind) -> None:
    config = {"url": "https://hooks.example.net/x", "secret": SECRET}
    if kind == "apprise":
        config = {"urls": ["json://hooks.example.net/x"]}
    response = api(crew.viewer).post(
        "/api/v1/contact-methods/",
        {"kind": kind, "label": "mine", "config": config},
        format="json",
    )
    assert response.status_code == 400
    assert "kind" in str(response.json())
    assert not ContactMethod.objects.filter(user=crew.viewer).exists()


def test_a_viewer_may_have_e_mail_and_chat_contact_methods(api, crew) -> None:
    viewer = api(crew.viewer)
    for kind, config in [
        ("email", {"to": ["viewer@example.net"]}),
        ("slack", {"url": "https://hooks.slack.com/services/T0/B0/abc"}),
    ]:
        response = viewer.post(
            "/api/v1/contact-methods/",
            {"kind": kind, "label": kind, "config": config},
            format="json",
        )
        assert response.status_code == 201, response.content
    # A responder may have a webhook.
    webhook = {"url": "https://e.example.net/h", "secret": SECRET}
    response = api(crew.responder).post(
        "/api/v1/contact-methods/",
        {"kind": "webhook", "label": "w", "config": webhook},
        format="json",
    )
    assert response.status_code == 201, response.content


def test_the_settings_form_names_the_kind_field_for_a_viewer(client, crew) -> None:
    client.force_login(crew.viewer)
    response = client.post(
        f"{URL}methods/",
        {"kind": "webhook", "label": "x", "address": "https://e.example.net/h", "secret": SECRET},
    )
    assert response.status_code == 400
    body = response.content.decode().replace("&#x27;", "'")
    assert "a viewer's contact methods can be email, slack, teams only" in body
    assert not ContactMethod.objects.filter(user=crew.viewer).exists()


# ---- status-page subscriber webhooks (anyone may subscribe to a public page) --------------


@pytest.mark.parametrize(("host", "address", "reason"), REFUSED)
def test_a_status_page_webhook_is_refused_once_not_six_times(
    crew, guarded, receiver, connections, host, address, reason
) -> None:
    page = make_page(crew.team)
    port = f":{receiver.port}" if address in ("127.0.0.1", "::1", "localhost") else ""
    subscribers.add_webhook(page, f"http://{host}{port}/hook", actor=crew.manager)
    publishing.post_update(
        page, actor=None, status="investigating", body="Errors", title="API down", impact="major"
    )
    assert subscribers.send_due() == 0
    delivery = StatusDelivery.objects.get(topic="incident")
    assert delivery.state == DeliveryState.FAILED and delivery.attempts == 1
    assert delivery.last_error.startswith(GUARD) and reason in delivery.last_error
    assert receiver.requests == []
    assert left_loopback(connections) == []


def test_a_status_page_webhook_to_an_allow_listed_address_is_sent(crew, guarded, receiver):
    guarded.TOCSIN_OUTBOUND_ALLOW = ["127.0.0.1"]
    page = make_page(crew.team)
    subscribers.add_webhook(page, receiver.url(), actor=crew.manager)
    publishing.post_update(
        page, actor=None, status="investigating", body="Errors", title="API down", impact="major"
    )
    assert subscribers.send_due() == 1
    assert [r[1] for r in receiver.requests] == ["/hook"]


def test_apprise_urls_are_checked_before_apprise_connects(guarded) -> None:
    from incidents.notifications.channels.apprise import _refused

    assert (
        _refused("json://169.254.169.254/x")
        == GUARD + "169.254.169.254 is a cloud metadata address"
    )
    assert _refused("jsons://localhost:8080/hook").endswith("is loopback")
    assert _refused("discord://webhook-id-abc/token") == ""  # a token where the host would be
    guarded.TOCSIN_OUTBOUND_ALLOW = ["127.0.0.1", "::1"]
    assert _refused("json://127.0.0.1/x") == ""
