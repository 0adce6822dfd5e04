"""The resolved notice is a per-rule choice (``notify_on_resolve``): sent through the real outbox
and SMTP to those who kept it, never to those who turned it off; set from the settings page and
the API alike."""

from __future__ import annotations

import re

import pytest

from incidents.lifecycle import services
from incidents.models import ContactMethod, Delivery, NotificationRule
from incidents.notifications import outbox
from tests.incidents.test_resolved_notice import paged_incident
from tocsin.models import Event

URL = "/account/notifications/"
RULES = "/api/v1/notification-rules/"


def email_rule(user, address, **fields):
    method = ContactMethod.objects.create(user=user, kind="email", config={"to": [address]})
    return NotificationRule.objects.create(user=user, contact_method=method, **fields)


def resolved_mail(smtp, start):
    return sorted(to for to, _ in smtp.messages[start:])


# -- sending ---------------------------------------------------------------------------------
def test_a_user_who_turned_it_off_hears_nothing_while_another_still_does(crew, service, smtp):
    email_rule(crew.responder, "responder.pager@example.net")
    email_rule(crew.manager, "manager.pager@example.net", notify_on_resolve=False)
    incident = paged_incident(crew, service, crew.responder, crew.manager)
    # Both were paged: the opt-out is about the resolved notice only.
    assert resolved_mail(smtp, 0) == [
        ["manager.pager@example.net"],
        ["responder.pager@example.net"],
    ]

    services.resolve(incident, actor=crew.viewer, reason="fixed")
    notices = Delivery.objects.filter(event_kind="resolved")
    assert [(d.recipient_id, d.kind) for d in notices] == [(crew.responder.pk, "email")]
    assert outbox.send_due_deliveries() == 1
    # Nothing to the manager: not the rule's address, and no fallback to the account address.
    assert resolved_mail(smtp, 2) == [["responder.pager@example.net"]]
    assert "(resolved)" in smtp.messages[2][1]["Subject"]


def test_a_later_rule_that_kept_it_carries_the_notice(crew, service, smtp):
    email_rule(crew.responder, "first@example.net", delay_minutes=0, notify_on_resolve=False)
    email_rule(crew.responder, "later@example.net", delay_minutes=10)
    email_rule(crew.responder, "latest@example.net", delay_minutes=20)
    incident = paged_incident(crew, service, crew.responder)
    already = len(smtp.messages)

    services.resolve(incident, actor=crew.manager)
    assert outbox.send_due_deliveries() == 1
    assert resolved_mail(smtp, already) == [["later@example.net"]]


def test_rules_for_another_urgency_do_not_count_and_no_rules_keeps_the_account_email(
    crew, service, smtp
):
    # The incident is high urgency: the responder's only rule with the notice on is for low.
    email_rule(crew.responder, "high@example.net", urgency="high", notify_on_resolve=False)
    email_rule(crew.responder, "low@example.net", urgency="low")
    incident = paged_incident(crew, service, crew.responder, crew.manager)  # manager: no rules
    assert incident.urgency == "high"
    already = len(smtp.messages)

    services.resolve(incident, actor=crew.viewer)
    assert outbox.send_due_deliveries() == 1
    assert resolved_mail(smtp, already) == [["manager@example.org"]]


# -- the settings page -----------------------------------------------------------------------
def test_the_rule_form_offers_it_checked_and_saves_either_way(client, crew):
    method = ContactMethod.objects.create(
        user=crew.responder, kind="email", config={"to": ["me@example.net"]}
    )
    client.force_login(crew.responder)
    body = client.get(URL).content.decode()
    checkbox = re.search(r'<input [^>]*name="notify_on_resolve"[^>]*>', body).group(0)
    assert 'type="checkbox"' in checkbox and " checked" in checkbox
    assert "When an incident you were paged for resolves" in body  # the help text

    rule = {"contact_method": method.pk, "delay_minutes": 0, "urgency": "any"}
    assert client.post(f"{URL}rules/", {**rule, "notify_on_resolve": "on"}).status_code == 302
    assert client.post(f"{URL}rules/", {**rule, "delay_minutes": 5}).status_code == 302  # unticked
    assert list(
        NotificationRule.objects.order_by("delay_minutes").values_list(
            "delay_minutes", "notify_on_resolve"
        )
    ) == [(0, True), (5, False)]
    body = client.get(URL).content.decode()
    assert body.count('data-notify-on-resolve="true"') == 1
    assert body.count('data-notify-on-resolve="false"') == 1
    explained = body.split("data-resolved-notice>", 1)[1].split("</span>", 1)[0]
    assert "a notice by Email, m…@example.net" in explained


def test_the_page_turns_it_off_and_on_for_an_existing_rule(client, crew):
    rule = email_rule(crew.responder, "me@example.net")
    client.force_login(crew.responder)
    url = f"{URL}rules/{rule.pk}/resolve-notice/"
    response = client.post(url, {"notify_on_resolve": "false"}, follow=True)
    assert response.redirect_chain == [(URL, 302)]
    rule.refresh_from_db()
    assert rule.notify_on_resolve is False
    body = response.content.decode()
    assert "no longer sends resolved notices" in body
    assert "no notice (the rules that apply have it turned off)" in body
    assert client.post(url, {"notify_on_resolve": "true"}).status_code == 302
    rule.refresh_from_db()
    assert rule.notify_on_resolve is True
    # The change is in the person's own audit trail.
    updated = Event.objects.filter(kind="notification_rule.updated").order_by("id")
    assert [e.payload["notify_on_resolve"] for e in updated] == [False, True]


@pytest.mark.parametrize("value", [None, "", "maybe"])
def test_the_page_refuses_a_bad_value_and_changes_nothing(client, crew, value):
    rule = email_rule(crew.responder, "me@example.net", notify_on_resolve=False)
    client.force_login(crew.responder)
    data = {} if value is None else {"notify_on_resolve": value}
    response = client.post(f"{URL}rules/{rule.pk}/resolve-notice/", data)
    assert response.status_code == 400
    assert "The rule was not changed" in response.content.decode()
    rule.refresh_from_db()
    assert rule.notify_on_resolve is False
    assert not Event.objects.filter(kind="notification_rule.updated").exists()


def test_another_users_rule_is_a_404_and_get_is_refused(client, crew):
    rule = email_rule(crew.outsider, "them@example.net")
    client.force_login(crew.responder)
    url = f"{URL}rules/{rule.pk}/resolve-notice/"
    assert client.post(url, {"notify_on_resolve": "false"}).status_code == 404
    assert client.get(url).status_code == 405
    rule.refresh_from_db()
    assert rule.notify_on_resolve is True


# -- the API ---------------------------------------------------------------------------------
def test_the_api_round_trips_it(crew, api):
    client = api(crew.responder)
    method = ContactMethod.objects.create(
        user=crew.responder, kind="email", config={"to": ["me@example.net"]}
    )
    default = client.post(RULES, {"contact_method": method.pk}, format="json")
    assert default.status_code == 201, default.content
    assert default.json()["notify_on_resolve"] is True
    created = client.post(
        RULES, {"contact_method": method.pk, "notify_on_resolve": False}, format="json"
    )
    assert created.status_code == 201, created.content
    rule_url = f"{RULES}{created.json()['id']}/"
    assert client.get(rule_url).json()["notify_on_resolve"] is False
    patched = client.patch(rule_url, {"notify_on_resolve": True}, format="json")
    assert patched.status_code == 200 and patched.json()["notify_on_resolve"] is True
    assert NotificationRule.objects.get(pk=created.json()["id"]).notify_on_resolve is True


@pytest.mark.parametrize("value", ["maybe", None, [True], {"on": 1}])
def test_the_api_refuses_what_is_not_a_boolean(crew, api, value):
    rule = email_rule(crew.responder, "me@example.net")
    response = api(crew.responder).patch(
        f"{RULES}{rule.pk}/", {"notify_on_resolve": value}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "notify_on_resolve" in response.json()["error"]["fields"]
    rule.refresh_from_db()
    assert rule.notify_on_resolve is True
