"""Response SLAs: due times from targets, breaches recorded once, on the timeline, with an alert."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from incidents.escalation import engine as escalation
from incidents.lifecycle import services
from incidents.models import Incident, IncidentStatus, ResponseTarget
from incidents.slas import services as slas
from incidents.slas.services import due_breaches, record_breach, record_due_breaches
from monitoring.models import Alert, AlertStatus, Service
from tests.incidents.core_support import NOON, clear, fire, policy, settings_for
from tocsin.models import Event
from tocsin.services import ServiceError

M = timedelta(minutes=1)


@pytest.fixture
def targets(crew):
    """P1: acknowledge in 5 min, resolve in 60; P3: acknowledge in 15 min, resolve in 240."""
    ResponseTarget.objects.create(team=crew.team, priority="P1", ack_minutes=5, resolve_minutes=60)
    ResponseTarget.objects.create(
        team=crew.team, priority="P3", ack_minutes=15, resolve_minutes=240
    )


def breaches(incident: Incident) -> list[dict]:
    return [
        e.payload
        for e in Event.objects.filter(
            kind="incident.sla_breached", subject_type="incident", subject_id=str(incident.pk)
        ).order_by("id")
    ]


def open_incident(service: Service, now=NOON, **labels) -> Incident:
    """A critical alert (priority P1 by the default map) opens an incident at ``now``."""
    fire(service, now, **labels)
    return Incident.objects.exclude(service__slug=slas.SLA_SERVICE_SLUG).latest("id")


# --- Due times ---------------------------------------------------------------------------------


def test_an_incident_gets_due_times_from_its_priority_target(crew, service, targets):
    incident = open_incident(service)
    assert incident.priority == "P1"
    assert incident.ack_due_at == NOON + 5 * M
    assert incident.resolve_due_at == NOON + 60 * M
    assert incident.ack_breached_at is None and incident.resolve_breached_at is None


def test_a_priority_without_target_has_no_due_times(crew, service, targets):
    incident = open_incident(service, alertname="Disk", _severity="info")  # P4: no target
    assert incident.priority == "P4"
    assert (incident.ack_due_at, incident.resolve_due_at) == (None, None)
    assert due_breaches(NOON + 1000 * M) == []


def test_a_service_target_overrides_the_team_target_and_blank_means_none(crew, service, targets):
    ResponseTarget.objects.create(team=crew.team, service=service, priority="P1", ack_minutes=2)
    incident = open_incident(service)
    assert incident.ack_due_at == NOON + 2 * M
    assert incident.resolve_due_at is None  # the override replaces the team's target whole


def test_a_priority_change_recomputes_due_times_from_the_start(crew, service, targets):
    incident = open_incident(service)
    services.set_priority(incident, "P3", actor=crew.responder)
    incident.refresh_from_db()
    assert incident.ack_due_at == NOON + 15 * M
    assert incident.resolve_due_at == NOON + 240 * M
    services.set_priority(incident, "P5", actor=crew.responder)  # no target for P5
    incident.refresh_from_db()
    assert (incident.ack_due_at, incident.resolve_due_at) == (None, None)


def test_a_priority_change_after_acknowledging_keeps_the_acknowledge_verdict(
    crew, service, targets
):
    incident = open_incident(service)
    services.acknowledge(incident, actor=crew.responder, now=NOON + 3 * M)
    services.set_priority(incident, "P3", actor=crew.responder)
    incident.refresh_from_db()
    assert incident.ack_due_at == NOON + 5 * M  # judged already: met in time
    assert incident.resolve_due_at == NOON + 240 * M  # still running: re-counted


def test_reopening_starts_both_clocks_again_and_forgets_old_breaches(crew, service, targets):
    incident = open_incident(service)
    assert record_due_breaches(NOON + 61 * M) == 2
    services.resolve(incident, actor=crew.responder, now=NOON + 70 * M)
    services.reopen(incident, actor=crew.responder, now=NOON + 120 * M)
    incident.refresh_from_db()
    assert incident.reopened_at == NOON + 120 * M
    assert incident.ack_due_at == NOON + 125 * M
    assert incident.resolve_due_at == NOON + 180 * M
    assert incident.ack_breached_at is None and incident.resolve_breached_at is None
    assert record_due_breaches(NOON + 124 * M) == 0
    assert record_due_breaches(NOON + 125 * M) == 1


def test_an_alert_refiring_within_the_reopen_window_restarts_the_clocks(crew, service, targets):
    settings_for(service, reopen_window_minutes=30)
    incident = open_incident(service)
    clear(service, NOON + 10 * M)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    fire(service, NOON + 20 * M)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.TRIGGERED
    assert incident.ack_due_at == NOON + 25 * M
    assert incident.resolve_due_at == NOON + 80 * M


def test_an_acknowledgement_that_times_out_restarts_only_the_acknowledge_clock(
    crew, service, targets
):
    p = policy(crew.team, {"delay_minutes": 0, "user_ids": [crew.responder.pk]})
    p.ack_timeout_minutes = 10
    p.save()
    settings_for(service, escalation_policy=p)
    incident = open_incident(service)
    services.acknowledge(incident, actor=crew.responder, now=NOON + 2 * M)
    assert escalation.expire_acknowledgements(NOON + 12 * M) == 1
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.TRIGGERED
    assert incident.ack_due_at == NOON + 17 * M
    assert incident.resolve_due_at == NOON + 60 * M
    assert record_due_breaches(NOON + 16 * M) == 0
    assert record_due_breaches(NOON + 17 * M) == 1
    assert breaches(incident)[0]["target"] == "acknowledge"


def test_a_split_off_incident_gets_its_own_due_times(crew, service, targets):
    settings_for(service, grouping_mode="time_window", window_minutes=10)
    fire(service, NOON, alertname="A")
    fire(service, NOON + M, alertname="B")
    incident = Incident.objects.get()
    alert = Alert.objects.get(labels__alertname="B")
    new = services.split(incident, [alert], actor=crew.responder)
    new.refresh_from_db()
    assert new.ack_due_at == new.created_at + 5 * M
    assert new.resolve_due_at == new.created_at + 60 * M


# --- Breaches ----------------------------------------------------------------------------------


def test_acknowledging_in_time_means_no_acknowledge_breach(crew, service, targets):
    incident = open_incident(service)
    services.acknowledge(incident, actor=crew.responder, now=NOON + 4 * M)
    assert record_due_breaches(NOON + 30 * M) == 0
    assert breaches(incident) == []
    incident.refresh_from_db()
    assert incident.ack_breached_at is None
    assert slas.state(incident, NOON + 30 * M)[0]["status"] == "met"


def test_resolving_in_time_means_no_breach_at_all(crew, service, targets):
    incident = open_incident(service)
    services.resolve(incident, actor=crew.responder, now=NOON + 4 * M)
    assert record_due_breaches(NOON + 1000 * M) == 0
    assert breaches(incident) == []


def test_a_breach_is_on_the_timeline_with_target_and_lateness(crew, service, targets):
    incident = open_incident(service)
    assert record_due_breaches(NOON + 4 * M) == 0
    assert record_due_breaches(NOON + 7 * M) == 1
    [payload] = breaches(incident)
    assert payload["target"] == "acknowledge"
    assert payload["target_minutes"] == 5
    assert payload["late_seconds"] == 120
    assert payload["priority"] == "P1"
    assert payload["alerted"] is True
    incident.refresh_from_db()
    assert incident.ack_breached_at == NOON + 7 * M
    response = _client(crew.viewer).get(reverse("incident", args=[incident.pk]))
    body = response.content.decode()
    assert 'data-sla-target="acknowledge" data-sla-status="breached"' in body
    assert "Acknowledge target (5 min)" in body
    assert "Not acknowledged within the 5 min target (2 min late)" in body  # the timeline


def test_a_breach_raises_an_alert_on_the_teams_sla_service(crew, service, targets):
    incident = open_incident(service)
    record_due_breaches(NOON + 6 * M)
    sla_service = Service.objects.get(team=crew.team, slug=slas.SLA_SERVICE_SLUG)
    alert = Alert.objects.get(service=sla_service)
    assert alert.status == AlertStatus.FIRING
    assert alert.fingerprint == f"sla-incident-{incident.pk}-acknowledge"
    assert alert.severity == "critical"
    assert f"#{incident.pk}" in alert.summary
    # The alert opened an incident of its own there (which pages by that service's policy).
    meta = Incident.objects.get(service=sla_service)
    assert meta.status == IncidentStatus.TRIGGERED


def test_the_breach_alert_resolves_when_the_incident_is_acknowledged(crew, service, targets):
    incident = open_incident(service)
    record_due_breaches(NOON + 6 * M)
    services.acknowledge(incident, actor=crew.responder, now=NOON + 8 * M)
    alert = Alert.objects.get(service__slug=slas.SLA_SERVICE_SLUG)
    assert alert.status == AlertStatus.RESOLVED
    meta = Incident.objects.get(service__slug=slas.SLA_SERVICE_SLUG)
    assert meta.status == IncidentStatus.RESOLVED  # auto-resolved with its alert


def test_a_breach_alert_never_breaches_in_turn(crew, service, targets):
    """Breach alerts are P1 incidents too; if they were held to the P1 target, each breach
    would raise another alert, forever."""
    open_incident(service)
    record_due_breaches(NOON + 6 * M)
    meta = Incident.objects.get(service__slug=slas.SLA_SERVICE_SLUG)
    assert meta.priority == "P1"
    assert (meta.ack_due_at, meta.resolve_due_at) == (None, None)
    later = meta.created_at + timedelta(days=30)
    record_due_breaches(later)
    # One alert (and incident) per breach of the original: acknowledge, then resolve; the
    # breach incidents themselves, a month old and untouched, add nothing.
    assert Alert.objects.filter(service__slug=slas.SLA_SERVICE_SLUG).count() == 2
    assert Incident.objects.filter(service__slug=slas.SLA_SERVICE_SLUG).count() == 2
    assert Event.objects.filter(kind="incident.sla_breached").count() == 2
    assert record_due_breaches(later + timedelta(days=30)) == 0


def test_the_loop_records_each_breach_once(crew, service, targets):
    incident = open_incident(service)
    assert record_due_breaches(NOON + 6 * M) == 1
    assert record_due_breaches(NOON + 7 * M) == 0
    assert record_due_breaches(NOON + 61 * M) == 1  # the resolve target
    assert record_due_breaches(NOON + 1000 * M) == 0
    assert [b["target"] for b in breaches(incident)] == ["acknowledge", "resolve"]


def test_two_workers_claiming_the_same_breach_record_it_once(crew, service, targets):
    """Both workers saw the breach due; only the first conditional UPDATE matches."""
    incident = open_incident(service)
    now = NOON + 6 * M
    seen_by_a, seen_by_b = due_breaches(now), due_breaches(now)
    assert seen_by_a == seen_by_b == [(incident.pk, "acknowledge")]
    assert [record_breach(pk, t, now) for pk, t in seen_by_a] == [True]
    assert [record_breach(pk, t, now + M) for pk, t in seen_by_b] == [False]
    assert len(breaches(incident)) == 1
    assert Alert.objects.filter(service__slug=slas.SLA_SERVICE_SLUG).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_loop_at_once_record_the_breach_once(crew, service, targets):
    """Real threads, each with its own database connection, released together."""
    import threading

    from django.db import connection

    incident = open_incident(service)
    now = NOON + 6 * M
    start = threading.Barrier(2)
    counts: list[int] = []

    def worker() -> None:
        try:
            start.wait(timeout=10)
            counts.append(record_due_breaches(now))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(counts) == [0, 1]
    assert len(breaches(incident)) == 1
    assert Alert.objects.filter(service__slug=slas.SLA_SERVICE_SLUG).count() == 1


def test_a_worker_killed_while_recording_a_breach_loses_nothing(
    crew, service, targets, monkeypatch
):
    incident = open_incident(service)
    real = slas._raise_breach_alert

    def crash(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(slas, "_raise_breach_alert", crash)
    with pytest.raises(SystemExit):
        record_due_breaches(NOON + 6 * M)
    incident.refresh_from_db()
    assert incident.ack_breached_at is None  # the claim rolled back with the event
    assert breaches(incident) == []
    monkeypatch.setattr(slas, "_raise_breach_alert", real)
    assert record_due_breaches(NOON + 7 * M) == 1


def test_a_late_acknowledgement_records_the_breach_even_before_the_loop_runs(
    crew, service, targets
):
    incident = open_incident(service)
    services.acknowledge(incident, actor=crew.responder, now=NOON + 9 * M)
    [payload] = breaches(incident)
    assert payload["target"] == "acknowledge"
    assert payload["late_seconds"] == 240
    assert payload["alerted"] is False  # over already: nobody is paged about it
    assert not Alert.objects.filter(service__slug=slas.SLA_SERVICE_SLUG).exists()
    assert record_due_breaches(NOON + 10 * M) == 0


def test_resolving_late_without_acknowledging_breaches_both_targets(crew, service, targets):
    incident = open_incident(service)
    services.resolve(incident, actor=crew.responder, now=NOON + 90 * M)
    assert [b["target"] for b in breaches(incident)] == ["acknowledge", "resolve"]


def test_the_incident_page_shows_when_the_targets_are_due(crew, service, targets):
    incident = open_incident(service)
    soon = incident.created_at + timedelta(days=3650)
    Incident.objects.filter(pk=incident.pk).update(ack_due_at=soon, resolve_due_at=soon)
    body = _client(crew.viewer).get(reverse("incident", args=[incident.pk])).content.decode()
    assert 'data-sla-target="acknowledge" data-sla-status="due"' in body
    assert 'data-sla-target="resolve" data-sla-status="due"' in body


def test_an_incident_without_targets_shows_no_sla(crew, service):
    incident = open_incident(service)
    body = _client(crew.viewer).get(reverse("incident", args=[incident.pk])).content.decode()
    assert "data-sla-target" not in body


# --- Targets: validation -----------------------------------------------------------------------


def test_a_team_has_one_target_per_priority(crew, service, targets):
    with pytest.raises(IntegrityError), transaction.atomic():
        ResponseTarget.objects.create(team=crew.team, priority="P1", ack_minutes=9)
    ResponseTarget.objects.create(team=crew.team, service=service, priority="P1", ack_minutes=9)
    with pytest.raises(IntegrityError), transaction.atomic():
        ResponseTarget.objects.create(team=crew.team, service=service, priority="P1")


def test_target_minutes_must_be_positive(crew):
    with pytest.raises(IntegrityError), transaction.atomic():
        ResponseTarget.objects.create(team=crew.team, priority="P2", ack_minutes=0)
    with pytest.raises(ServiceError) as error:
        slas.create_target(crew.team, actor=crew.manager, priority="P2", resolve_minutes=0)
    assert error.value.field == "resolve_minutes"


def test_a_target_for_another_teams_service_is_refused(crew):
    elsewhere = Service.objects.create(team=crew.other_team, name="Search API")
    with pytest.raises(ServiceError) as error:
        slas.create_target(crew.team, actor=crew.manager, service=elsewhere, priority="P1")
    assert error.value.field == "service"


def test_creating_a_target_is_an_event(crew):
    target = slas.create_target(crew.team, actor=crew.manager, priority="P2", ack_minutes=10)
    event = Event.objects.get(kind="response_target.created")
    assert event.team_id == crew.team.pk and event.actor == crew.manager
    assert event.payload["ack_minutes"] == 10 and event.payload["id"] == target.pk


def _client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_the_incident_api_shows_due_times_and_breaches(api, crew, service, targets):
    incident = open_incident(service)
    record_due_breaches(NOON + 6 * M)
    body = api(crew.viewer).get(f"/api/v1/incidents/{incident.pk}/").json()
    assert body["ack_due_at"].startswith("2025-01-15T12:05:00")
    assert body["resolve_due_at"].startswith("2025-01-15T13:00:00")
    assert body["ack_breached_at"].startswith("2025-01-15T12:06:00")
    assert body["resolve_breached_at"] is None


def test_merging_a_duplicate_late_records_no_breach_and_resolves_its_alerts(crew, service, targets):
    first = open_incident(service, alertname="A")
    duplicate = open_incident(service, alertname="B")
    assert record_due_breaches(NOON + 6 * M) == 2  # both missed the acknowledge target
    services.merge(first, [Incident.objects.get(pk=duplicate.pk)], actor=crew.responder)
    duplicate.refresh_from_db()
    assert duplicate.resolve_breached_at is None
    alerts = dict(
        Alert.objects.filter(service__slug=slas.SLA_SERVICE_SLUG).values_list(
            "fingerprint", "status"
        )
    )
    assert alerts[f"sla-incident-{duplicate.pk}-acknowledge"] == AlertStatus.RESOLVED
    assert alerts[f"sla-incident-{first.pk}-acknowledge"] == AlertStatus.FIRING
