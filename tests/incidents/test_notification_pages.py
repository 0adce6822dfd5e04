"""/account/notifications/: contact methods, rules, the explanation, send-test, isolation."""

from __future__ import annotations

import pytest
from django.db import connection

from incidents.models import ContactMethod, Delivery, NotificationRule

URL = "/account/notifications/"
SECRET = "hmac-shared-secret-0123456789"


def login(client, user):
    client.force_login(user)
    return client


def add_method(client, **data):
    data.setdefault("label", "")
    data.setdefault("secret", "")
    return client.post(f"{URL}methods/", data)


def make_method(user, kind="email", config=None, label=""):
    config = config if config is not None else {"to": [f"{user.username}.pager@example.net"]}
    return ContactMethod.objects.create(user=user, kind=kind, config=config, label=label)


def counts():
    return ContactMethod.objects.count(), NotificationRule.objects.count()


def test_anonymous_is_sent_to_login(client, crew):
    method = make_method(crew.responder)
    response = client.get(URL)
    assert response.status_code == 302 and "/login" in response["Location"]
    assert client.post(f"{URL}methods/", {"kind": "email", "address": "a@b.org"}).status_code == 302
    assert client.post(f"{URL}methods/{method.pk}/delete/").status_code == 302
    assert client.post(f"{URL}methods/{method.pk}/test/").status_code == 302
    assert ContactMethod.objects.count() == 1 and not Delivery.objects.exists()


def test_page_renders_and_explains_the_account_email_fallback(client, crew):
    response = login(client, crew.responder).get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "You have no notification rules" in body
    assert "responder@example.org" in body  # the account address pages go to
    assert 'href="/account/notifications/"' in body  # the user menu link
    assert "no-store" in response["Cache-Control"]


def test_add_email_method_then_rule_and_explanation(client, crew):
    login(client, crew.responder)
    response = add_method(client, kind="email", label="Work", address="alice.pager@example.net")
    assert response.status_code == 302
    method = ContactMethod.objects.get(user=crew.responder)
    assert method.config == {"to": ["alice.pager@example.net"]}
    body = client.get(URL).content.decode()
    assert "a…@example.net" in body
    assert "alice.pager" not in body

    response = client.post(
        f"{URL}rules/", {"contact_method": method.pk, "delay_minutes": 0, "urgency": "any"}
    )
    assert response.status_code == 302
    rule = NotificationRule.objects.get(user=crew.responder)
    assert (rule.contact_method, rule.delay_minutes, rule.urgency) == (method, 0, "any")
    body = client.get(URL).content.decode()
    assert "For any incident:" in body
    assert "immediately by Work (Email), a…@example.net" in body
    assert "You have no notification rules" not in body


def test_explanation_orders_steps_and_warns_about_uncovered_urgency(client, crew):
    email = make_method(crew.responder, label="Mail")
    hook = make_method(
        crew.responder, kind="slack", config={"url": "https://hooks.slack.com/services/T/B/xyz"}
    )
    NotificationRule.objects.create(
        user=crew.responder, contact_method=hook, delay_minutes=5, urgency="high"
    )
    NotificationRule.objects.create(
        user=crew.responder, contact_method=email, delay_minutes=0, urgency="high"
    )
    body = login(client, crew.responder).get(URL).content.decode()
    immediately = body.index("immediately by Mail (Email)")
    later = body.index("after 5 minutes by Slack (incoming webhook), https://hooks.slack.com/…")
    assert body.index("For a high-urgency incident:") < immediately < later
    assert "For a low-urgency incident:" in body and "nothing is sent" in body
    assert "/services/T/B/xyz" not in body


def test_webhook_secrets_are_not_shown_nor_stored_in_clear(client, crew, receiver):
    login(client, crew.responder)
    response = add_method(
        client, kind="webhook", label="Phone", address=receiver.url, secret=SECRET
    )
    assert response.status_code == 302
    method = ContactMethod.objects.get(user=crew.responder)
    assert method.config == {"url": receiver.url, "secret": SECRET}
    body = client.get(URL).content.decode()
    assert "s3cr3t-token" not in body and SECRET not in body
    port = receiver.url.split(":")[2].split("/")[0]
    assert f"http://127.0.0.1:{port}/…" in body
    with connection.cursor() as cursor:
        cursor.execute("SELECT config FROM incidents_contactmethod WHERE id = %s", [method.pk])
        raw = str(cursor.fetchone()[0])
    assert "s3cr3t-token" not in raw and SECRET not in raw


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "email", "address": "not-an-address"}, "address", "valid email"),
        ({"kind": "slack", "address": "ftp://example.org/x"}, "address", "URL"),
        ({"kind": "webhook", "address": "https://example.org/h", "secret": ""}, "secret", ""),
        ({"kind": "webhook", "address": "https://example.org/h", "secret": "short"}, "secret", ""),
        ({"kind": "pagerduty", "address": "routing-key-123"}, "kind", ""),
        ({"kind": "email", "address": ""}, "address", "required"),
    ],
)
def test_invalid_method_shows_errors_and_changes_nothing(client, crew, data, field, message):
    before = counts()
    response = add_method(login(client, crew.responder), **data)
    assert response.status_code == 400
    body = response.content.decode()
    assert f'id="id_{field}"' in body
    # The error sits in the field's own block.
    block = body[body.index(f'for="id_{field}"') :]
    block = block[: block.index("</div>\n", block.index("errorlist"))]
    assert "errorlist" in block and message in block
    assert counts() == before


def test_invalid_rules_show_errors_and_change_nothing(client, crew):
    mine = make_method(crew.responder)
    theirs = make_method(crew.outsider)
    login(client, crew.responder)
    before = counts()
    response = client.post(
        f"{URL}rules/", {"contact_method": mine.pk, "delay_minutes": 5000, "urgency": "any"}
    )
    assert response.status_code == 400
    assert "at most 1440 minutes" in response.content.decode()
    for data in (
        {"contact_method": theirs.pk, "delay_minutes": 0, "urgency": "any"},
        {"contact_method": mine.pk, "delay_minutes": -1, "urgency": "any"},
        {"contact_method": mine.pk, "delay_minutes": 0, "urgency": "urgent"},
    ):
        response = client.post(f"{URL}rules/", data)
        assert response.status_code == 400
        assert "errorlist" in response.content.decode()
    assert counts() == before


def test_remove_rule_and_method(client, crew):
    method = make_method(crew.responder)
    other = make_method(crew.responder, label="Second")
    rule = NotificationRule.objects.create(user=crew.responder, contact_method=method)
    kept = NotificationRule.objects.create(user=crew.responder, contact_method=other)
    login(client, crew.responder)
    response = client.post(f"{URL}rules/{kept.pk}/delete/", follow=True)
    assert "Rule removed." in response.content.decode()
    assert not NotificationRule.objects.filter(pk=kept.pk).exists()
    response = client.post(f"{URL}methods/{method.pk}/delete/", follow=True)
    body = response.content.decode()
    assert "with the 1 rule that used it" in body
    assert not ContactMethod.objects.filter(pk=method.pk).exists()
    assert not NotificationRule.objects.filter(pk=rule.pk).exists()
    assert ContactMethod.objects.filter(pk=other.pk).exists()
    assert "You have no notification rules" in body
    assert client.get(f"{URL}methods/{other.pk}/delete/").status_code == 405


def test_another_users_objects_are_404(client, crew):
    theirs = make_method(crew.outsider)
    rule = NotificationRule.objects.create(user=crew.outsider, contact_method=theirs)
    login(client, crew.admin)  # not even a superuser may touch someone else's
    assert client.post(f"{URL}methods/{theirs.pk}/delete/").status_code == 404
    assert client.post(f"{URL}methods/{theirs.pk}/test/").status_code == 404
    assert client.post(f"{URL}rules/{rule.pk}/delete/").status_code == 404
    assert ContactMethod.objects.filter(pk=theirs.pk).exists()
    assert NotificationRule.objects.filter(pk=rule.pk).exists()
    assert not Delivery.objects.exists()
    body = client.get(URL).content.decode()
    assert "outsider.pager" not in body and f'id="method-{theirs.pk}"' not in body


def test_send_test_reaches_a_real_receiver(client, crew, receiver):
    # A manager sees what the destination answered; others a generic result (test_outbound_ui).
    login(client, crew.manager)
    add_method(client, kind="webhook", label="Phone", address=receiver.url, secret=SECRET)
    method = ContactMethod.objects.get(user=crew.manager)
    response = client.post(f"{URL}methods/{method.pk}/test/", follow=True)
    body = response.content.decode()
    assert "message-success" in body
    assert "Test message sent to “Phone (Generic webhook (HMAC-signed))" in body
    assert "(HTTP 200)" in body
    assert len(receiver.requests) == 1
    assert receiver.requests[0].path == "/hook/s3cr3t-token"
    assert receiver.requests[0].json()["event"] == "test"
    assert "s3cr3t-token" not in body and SECRET not in body
    delivery = Delivery.objects.get()
    assert (delivery.contact_method, delivery.status) == (method, "sent")


def test_send_test_failure_is_reported(client, crew, receiver):
    receiver.codes = [400]
    method = make_method(
        crew.manager, kind="webhook", config={"url": receiver.url, "secret": SECRET}
    )
    response = login(client, crew.manager).post(f"{URL}methods/{method.pk}/test/", follow=True)
    body = response.content.decode()
    assert "message-error" in body and "failed (HTTP 400)" in body
    assert "s3cr3t-token" not in body


def test_send_test_without_a_team_says_why(client, db):
    from tests.conftest import make_user

    loner = make_user("loner")
    method = make_method(loner)
    login(client, loner)
    assert "Send test" not in client.get(URL).content.decode()
    response = client.post(f"{URL}methods/{method.pk}/test/", follow=True)
    assert "must belong to a team" in response.content.decode()
    assert not Delivery.objects.exists()
