"""The service page's paging setup: the checklist computed from the data, the paging panel
(grouping rule, policy, who would be paged now) and "Send test alert" through the real
pipeline, up to a page arriving at a real SMTP server."""

from __future__ import annotations

import re
from datetime import timedelta
from email.header import decode_header, make_header
from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from incidents.escalation import engine as escalation
from incidents.models import (
    Delivery,
    DeliveryStatus,
    EscalationPolicy,
    EscalationStep,
    GroupingMode,
    Incident,
    ServiceIncidentSettings,
)
from incidents.notifications import outbox
from monitoring.alert_tests import send_test_alert
from monitoring.models import Alert, Service
from tests.incidents.core_support import settings_form
from tests.incidents.notify_support import smtp_server
from tests.incidents.test_policy_admin import new_policy
from tests.monitoring.conftest import make_integration
from tests.monitoring.page_support import logged_in
from tocsin.models import Event
from tocsin.services import ServiceError


def page_url(service: Service) -> str:
    return reverse("service", args=[service.team.slug, service.slug])


def sending_url(service: Service, integration: Any) -> str:
    return reverse("integration_test", args=[service.team.slug, service.slug, integration.pk])


def steps_done(html: str) -> list[str]:
    return re.findall(r'data-step="\d" data-done="(true|false)"', html)


def with_policy(service: Service, crew: Any) -> EscalationPolicy:
    policy = EscalationPolicy.objects.create(team=crew.team, name="Daytime")
    EscalationStep.objects.create(policy=policy, position=0, user_ids=[crew.responder.pk])
    ServiceIncidentSettings.objects.create(service=service, escalation_policy=policy)
    return policy


@pytest.mark.django_db
def test_a_new_service_shows_every_step_to_do(crew, service):
    html = logged_in(crew.manager).get(page_url(service)).content.decode()
    assert steps_done(html) == ["false"] * 5
    assert "Alerts have no way in yet." in html
    assert "the service has no escalation policy" in html
    # The defaults are shown, with a link to where they are changed.
    assert '<strong>fingerprint</strong> <span class="subtle">(the default)</span>' in html
    assert reverse("admin:incidents_serviceincidentsettings_add") + f"?service={service.pk}" in html
    assert reverse("admin:incidents_escalationpolicy_add") in html


@pytest.mark.django_db
def test_the_page_shows_the_rule_the_policy_and_who_would_be_paged(crew, service):
    make_integration(service, "alertmanager")
    policy = with_policy(service, crew)
    ServiceIncidentSettings.objects.filter(service=service).update(
        grouping_mode=GroupingMode.LABELS, group_labels=["cluster", "alertname"]
    )
    html = logged_in(crew.viewer).get(page_url(service)).content.decode()
    assert steps_done(html) == ["true", "true", "true", "false", "false"]
    assert "labels: alertname, cluster" in html
    assert reverse("admin:incidents_escalationpolicy_change", args=[policy.pk]) in html
    assert 'responder <small class="subtle">(account e-mail (no notification rules))' in html
    # A viewer sees the panel but gets no button to send a test alert.
    assert ">Send test alert</button>" not in html


@pytest.mark.django_db
def test_a_schedule_step_pages_whoever_is_on_call(crew, service):
    from incidents.models import Schedule, ScheduleLayer, ScheduleLayerMember

    schedule = Schedule.objects.create(team=crew.team, name="Primary")
    layer = ScheduleLayer.objects.create(schedule=schedule, name="Week")
    ScheduleLayerMember.objects.create(layer=layer, user=crew.manager, position=0)
    policy = EscalationPolicy.objects.create(team=crew.team, name="On call")
    EscalationStep.objects.create(policy=policy, position=0, schedule=schedule)
    ServiceIncidentSettings.objects.create(service=service, escalation_policy=policy)
    crew.manager.email = ""
    crew.manager.save()
    html = logged_in(crew.manager).get(page_url(service)).content.decode()
    assert "on call in “Primary”" in html
    assert 'manager <small class="subtle">(nothing: no e-mail and no notification rule)' in html
    # Someone is paged, but nobody can be reached: the third step is not done.
    assert steps_done(html)[2] == "false"


@pytest.mark.django_db
def test_sending_a_test_alert_opens_an_incident_and_queues_a_page(crew, service):
    door = make_integration(service, "alertmanager", "prod Alertmanager")
    with_policy(service, crew)
    client = logged_in(crew.responder)
    response = client.post(sending_url(service, door.integration))
    assert response.status_code == 302
    assert response["Location"] == page_url(service) + "#setup"
    alert = Alert.objects.get(service=service)
    assert alert.labels["tocsin_test"] == "true"
    assert alert.summary.startswith("Test alert from Tocsin via “prod Alertmanager”")
    event = Event.objects.get(kind="integration.test_sent")
    assert event.actor_id == crew.responder.pk
    assert event.payload["alert_id"] == alert.pk
    incident = Incident.objects.get(service=service)
    assert incident.alert_links.filter(alert=alert).exists()
    # The first step (delay 0) runs and queues the page to the responder.
    escalation.advance_escalations()
    delivery = Delivery.objects.get(incident=incident)
    assert delivery.recipient_id == crew.responder.pk
    assert delivery.status == DeliveryStatus.PENDING
    html = client.get(response["Location"]).content.decode()
    assert "Test alert sent through “prod Alertmanager”" in html
    assert steps_done(html) == ["true", "true", "true", "true", "false"]
    assert "A page is waiting to be sent" in html
    assert incident.get_absolute_url() in html


@pytest.mark.django_db
def test_the_last_step_is_done_when_the_page_arrives(crew, service):
    door = make_integration(service, "generic")
    with_policy(service, crew)
    with (
        smtp_server() as smtp,
        override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", **smtp.env()
        ),
    ):
        send_test_alert(door.integration, actor=crew.manager)
        escalation.advance_escalations()
        assert outbox.send_due_deliveries() == 1
    ((to, message),) = smtp.messages
    assert to == ["responder@example.org"]
    subject = str(make_header(decode_header(message["Subject"])))
    assert "Test alert from Tocsin via “generic”" in subject
    html = logged_in(crew.manager).get(page_url(service)).content.decode()
    assert steps_done(html) == ["true"] * 5
    assert "A page about this service was delivered." in html


@pytest.mark.django_db
def test_each_test_alert_is_a_new_alert(crew, service):
    door = make_integration(service, "alertmanager")
    send_test_alert(door.integration, actor=crew.manager)
    a_minute_later = timezone.now() + timedelta(minutes=1, seconds=1)  # the throttle's minute
    send_test_alert(door.integration, actor=crew.manager, now=a_minute_later)
    assert Alert.objects.filter(service=service).count() == 2


@pytest.mark.django_db
def test_a_viewer_cannot_send_a_test_alert(crew, service):
    door = make_integration(service, "alertmanager")
    response = logged_in(crew.viewer).post(sending_url(service, door.integration))
    assert response.status_code == 403
    assert logged_in(crew.outsider).post(sending_url(service, door.integration)).status_code == 404
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_a_revoked_integration_sends_no_test_alert(crew, service):
    door = make_integration(service, "alertmanager")
    from monitoring.services import revoke_integration

    revoke_integration(door.integration, actor=crew.manager)
    with pytest.raises(ServiceError):
        send_test_alert(door.integration, actor=crew.manager)
    response = logged_in(crew.manager).post(sending_url(service, door.integration), follow=True)
    assert "this integration is revoked" in response.content.decode()
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_the_page_costs_the_same_queries_however_many_people_are_paged(crew, service):
    from tests.conftest import make_user
    from tests.monitoring.page_support import queries_for
    from tocsin.models import Membership, Role

    make_integration(service, "alertmanager")
    policy = with_policy(service, crew)
    client = logged_in(crew.manager)
    few = queries_for(client, page_url(service))
    step = policy.steps.get()
    for n in range(6):
        user = make_user(f"pagee{n}")
        Membership.objects.create(team=crew.team, user=user, role=Role.RESPONDER)
        step.user_ids.append(user.pk)
    step.notify_team = True
    step.save()
    make_integration(service, "generic")
    assert queries_for(client, page_url(service)) == few + 1  # notify_team: one more query


def checklist_link(html: str, path: str) -> str:
    """The href of the checklist's link into ``path`` (an admin form), unescaped."""
    found = re.search(rf'href="({re.escape(path)}[^"]*)"', html)
    assert found, f"no link to {path}"
    return found.group(1).replace("&amp;", "&")


@pytest.mark.django_db
def test_picking_a_policy_from_the_checklist_comes_back_to_the_service(crew, service):
    policy = EscalationPolicy.objects.create(team=crew.team, name="Daytime")
    client = logged_in(crew.manager)
    html = client.get(page_url(service)).content.decode()
    link = checklist_link(html, reverse("admin:incidents_serviceincidentsettings_add"))
    assert client.get(link).status_code == 200
    # A refused form keeps the way back (the form posts to its own URL, query included).
    refused = client.post(
        link, settings_form(service, escalation_policy=policy.pk, storm_window_minutes=0)
    )
    assert refused.status_code == 200
    response = client.post(link, settings_form(service, escalation_policy=policy.pk))
    assert response.status_code == 302
    assert response["Location"] == page_url(service)
    assert ServiceIncidentSettings.objects.get(service=service).escalation_policy == policy
    # Back on the service page, the step is done.
    assert steps_done(client.get(page_url(service)).content.decode())[1] == "true"


@pytest.mark.django_db
def test_the_way_back_goes_only_to_this_site_and_not_after_save_and_continue(crew, service):
    policy = EscalationPolicy.objects.create(team=crew.team, name="Daytime")
    client = logged_in(crew.manager)
    add = reverse("admin:incidents_serviceincidentsettings_add")
    elsewhere = client.post(
        f"{add}?next=https://evil.example.org/", settings_form(service, escalation_policy=policy.pk)
    )
    assert elsewhere.status_code == 302
    assert elsewhere["Location"] == reverse("admin:incidents_serviceincidentsettings_changelist")
    ServiceIncidentSettings.objects.all().delete()
    staying = client.post(
        f"{add}?next={page_url(service)}",
        settings_form(service, escalation_policy=policy.pk, _continue="1"),
    )
    assert staying.status_code == 302
    assert "/admin/incidents/serviceincidentsettings/" in staying["Location"]
    assert staying["Location"] != page_url(service)


@pytest.mark.django_db
def test_creating_a_policy_from_the_checklist_comes_back_to_the_service(crew, service):
    client = logged_in(crew.manager)
    html = client.get(page_url(service)).content.decode()
    link = checklist_link(html, reverse("admin:incidents_escalationpolicy_add"))
    assert "next=" in link and f"team={crew.team.pk}" in link
    assert client.get(link).status_code == 200
    response = client.post(link, new_policy(crew.team, user_ids=[crew.responder.pk]))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == page_url(service)
    assert EscalationPolicy.objects.filter(team=crew.team, name="Out of hours").exists()
