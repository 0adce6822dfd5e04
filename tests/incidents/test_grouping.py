"""Grouping alerts into incidents: modes, reopen window, auto-resolve, suppression, races."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from incidents.lifecycle import grouping, groups
from incidents.models import Incident, IncidentAlert, IncidentStatus
from monitoring.models import Silence
from tests.incidents.core_support import (
    NOON,
    GroupingMode,
    clear,
    fire,
    kinds,
    settings_for,
)


def test_a_firing_alert_opens_an_incident(service):
    alert = fire(service)
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.TRIGGERED
    assert (incident.team_id, incident.service_id, incident.title) == (
        service.team_id,
        service.pk,
        "HighLatency",
    )
    assert incident.priority == "P1" and incident.urgency == "high"  # critical
    assert incident.group_key == f"fp:{alert.fingerprint}"
    assert IncidentAlert.objects.get().alert == alert
    assert kinds(incident) == ["incident.triggered"]


def test_priority_follows_the_services_severity_map(service):
    settings_for(service, priority_map={"warning": "P2"}, urgency_map={"warning": "high"})
    fire(service, alertname="Disk", _severity="warning")
    assert Incident.objects.values_list("priority", "urgency").get() == ("P2", "high")


def test_fingerprint_mode_gives_each_alert_its_own_incident(service):
    fire(service, alertname="A")
    fire(service, alertname="B")
    assert Incident.objects.count() == 2


def test_labels_mode_groups_by_the_chosen_labels(service):
    settings_for(service, grouping_mode=GroupingMode.LABELS, group_labels=["cluster"])
    fire(service, alertname="A", cluster="eu")
    fire(service, alertname="B", cluster="eu")
    fire(service, alertname="C", cluster="us")
    eu, us = Incident.objects.order_by("id")
    assert eu.alert_links.count() == 2 and us.alert_links.count() == 1
    assert eu.group_key == "labels:cluster=eu"
    assert kinds(eu) == ["incident.triggered", "incident.alert_added"]


def test_alerts_joining_together_are_one_timeline_line_naming_each(service):
    from incidents.lifecycle.timeline import describe
    from monitoring.pipeline import AlertInput, process
    from tocsin.models import Event

    settings_for(service, grouping_mode=GroupingMode.LABELS, group_labels=["cluster"])
    fire(service, alertname="First", cluster="eu")
    batch = [AlertInput(labels={"alertname": f"Next{i}", "cluster": "eu"}) for i in range(3)]
    outcomes = process(service, batch, source="test", now=NOON)
    [incident] = Incident.objects.all()
    assert kinds(incident) == ["incident.triggered", "incident.alert_added"]
    joined = Event.objects.get(kind="incident.alert_added")
    assert joined.payload["alert_ids"] == [o.alert.pk for o in outcomes]
    assert joined.payload["count"] == 3 and joined.payload["alert_id"] == outcomes[0].alert.pk
    assert "storm" not in joined.payload
    assert describe(joined, {}) == "3 alerts joined the incident: “Next0” and 2 more"
    fire(service, alertname="Alone", cluster="eu")  # one alone reads as before
    last = Event.objects.filter(kind="incident.alert_added").latest("id")
    assert describe(last, {}) == "Alert “Alone” joined the incident"


def test_time_window_mode_groups_alerts_close_in_time(service):
    settings_for(service, grouping_mode=GroupingMode.TIME_WINDOW, window_minutes=10)
    fire(service, NOON, alertname="A")
    fire(service, NOON + timedelta(minutes=9), alertname="B")  # crosses a bucket boundary
    fire(service, NOON + timedelta(minutes=30), alertname="C")
    first, second = Incident.objects.order_by("id")
    assert first.alert_links.count() == 2 and second.alert_links.count() == 1


def test_a_refiring_alert_of_an_open_incident_changes_nothing(service):
    fire(service, NOON)
    clear_settings = settings_for(service, auto_resolve=False)
    assert clear_settings.pk
    clear(service, NOON + timedelta(minutes=1))
    fire(service, NOON + timedelta(minutes=2))
    assert Incident.objects.count() == 1
    assert IncidentAlert.objects.count() == 1


def test_auto_resolve_when_all_alerts_resolve(service):
    settings_for(service, grouping_mode=GroupingMode.LABELS, group_labels=["cluster"])
    fire(service, alertname="A", cluster="eu")
    fire(service, alertname="B", cluster="eu")
    clear(service, NOON + timedelta(minutes=1), alertname="A", cluster="eu")
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.TRIGGERED
    clear(service, NOON + timedelta(minutes=2), alertname="B", cluster="eu")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_at == NOON + timedelta(minutes=2)
    assert kinds(incident)[-1] == "incident.resolved"


def test_no_auto_resolve_when_turned_off(service):
    settings_for(service, auto_resolve=False)
    fire(service)
    clear(service, NOON + timedelta(minutes=1))
    assert Incident.objects.get().status == IncidentStatus.TRIGGERED


def test_refiring_within_the_reopen_window_reopens(service):
    settings_for(service, reopen_window_minutes=30)
    fire(service, NOON)
    clear(service, NOON + timedelta(minutes=5))
    fire(service, NOON + timedelta(minutes=20))
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.TRIGGERED
    assert kinds(incident) == ["incident.triggered", "incident.resolved", "incident.reopened"]


def test_refiring_after_the_reopen_window_opens_a_new_incident(service):
    settings_for(service, reopen_window_minutes=30)
    alert = fire(service, NOON)
    clear(service, NOON + timedelta(minutes=5))
    fire(service, NOON + timedelta(minutes=60))
    old, new = Incident.objects.order_by("id")
    assert old.status == IncidentStatus.RESOLVED and new.status == IncidentStatus.TRIGGERED
    # The alert moved: it belongs to one incident at a time.
    assert IncidentAlert.objects.get(alert=alert).incident == new


def test_suppressed_alerts_open_no_incident_and_page_nobody(service, crew):
    from incidents.models import Delivery

    Silence.objects.create(
        team=crew.team,
        matchers=[{"name": "alertname", "op": "=", "value": "HighLatency"}],
        starts_at=NOON - timedelta(hours=1),
        ends_at=NOON + timedelta(hours=1),
        comment="deploy",
        created_by=crew.manager,
    )
    alert = fire(service, NOON)
    assert alert.suppression
    assert not Incident.objects.exists()
    assert not Delivery.objects.exists()


def test_preview_changes_nothing(service):
    settings_for(service, grouping_mode=GroupingMode.LABELS, group_labels=["cluster"])
    result = groups.preview(service, {"labels": {"alertname": "A", "cluster": "eu"}})
    assert result["incident"] is None
    assert result["group_key"] == "labels:cluster=eu"
    assert "new incident" in result["why"]
    fire(service, alertname="A", cluster="eu")
    before = Incident.objects.count()
    result = groups.preview(service, {"labels": {"alertname": "B", "cluster": "eu"}})
    assert result["incident"] == Incident.objects.get()
    assert result["rule"] == "labels: cluster"
    assert Incident.objects.count() == before


def test_the_unique_constraint_refuses_a_second_open_incident_for_a_group(service):
    fire(service)
    existing = Incident.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(
            team=service.team, service=service, title="dup", group_key=existing.group_key
        )
    # Resolved incidents do not count: the group may open again.
    existing.status = IncidentStatus.RESOLVED
    existing.save()
    Incident.objects.create(
        team=service.team, service=service, title="again", group_key=existing.group_key
    )


def test_a_lost_race_joins_the_winners_incident(service, monkeypatch):
    """Another process opens the group between our look-up and our insert."""
    alert = fire(service, alertname="A")
    winner = Incident.objects.get()
    IncidentAlert.objects.all().delete()
    real = grouping.open_incident_of
    calls = {"n": 0}

    def racing(*args, **kwargs):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(*args, **kwargs)  # first look misses it

    monkeypatch.setattr(grouping, "open_incident_of", racing)
    with transaction.atomic():
        got = grouping.alert_fired(alert, now=NOON)
    assert got == winner
    assert Incident.objects.count() == 1
    assert IncidentAlert.objects.get().incident == winner


def test_in_a_storm_new_groups_join_an_incident_the_same_batch_reopened_when_it_is_newest(
    service,
):
    """The newest open incident is read before the batch is placed; an incident the batch
    reopens that is newer than it takes its place, whichever way the batch was read."""
    settings = settings_for(
        service, storm_threshold=2, storm_window_minutes=10, reopen_window_minutes=30
    )
    fire(service, NOON, alertname="X")
    reopening = fire(service, NOON + timedelta(minutes=5), alertname="R")
    clear(service, NOON + timedelta(minutes=6), alertname="R")
    older, resolved = Incident.objects.order_by("created_at")
    assert (older.status, resolved.status) == (IncidentStatus.TRIGGERED, IncidentStatus.RESOLVED)
    newcomer = fire(service, NOON + timedelta(minutes=6), alertname="New")  # joins the older
    now = NOON + timedelta(minutes=7)
    keys = {
        a.pk: groups.group_key(settings, groups.as_candidate(a), now) for a in (reopening, newcomer)
    }
    plan = grouping._Plan(service, settings, now)
    plan.find_open(set(keys.values()))
    assert plan.open[""] == older and plan.storm_budget() == 0
    plan.place(reopening, keys[reopening.pk])
    plan.place(newcomer, keys[newcomer.pk])
    assert plan.open[""] == resolved  # reopened, and newer than the older one
    assert plan.placed[-1] == ("", newcomer, grouping.STORM)
