"""Ingest remembers each service's incident settings between batches (one round trip less per
batch); a change to them is seen by the very next batch, here at once and elsewhere once it
commits, and a policy is never remembered with them."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import EscalationPolicy, GroupingMode, Incident, ServiceIncidentSettings
from monitoring.ingest import key_cache
from monitoring.models import Service
from monitoring.pipeline import AlertInput, process
from tests.incidents.core_support import NOON, policy, settings_for

SETTINGS_TABLE = ServiceIncidentSettings._meta.db_table


def fire(service: Service, *hosts: str, minutes: int = 0) -> list[str]:
    """Process one batch; returns its statements that read the settings."""
    alerts = [AlertInput(labels={"alertname": "HostDown", "host": h}) for h in hosts]
    with CaptureQueriesContext(connection) as captured:
        process(service, alerts, source="test", now=NOON + timedelta(minutes=minutes))
    return [q["sql"] for q in captured.captured_queries if SETTINGS_TABLE in q["sql"]]


def incidents(service: Service) -> int:
    return Incident.objects.filter(service=service).count()


def test_a_service_settings_are_read_once_not_per_batch(crew):
    service = Service.objects.create(team=crew.team, name="API")
    settings_for(service, grouping_mode=GroupingMode.LABELS, group_labels=["dc"])
    assert len(fire(service, "a")) == 1
    assert fire(service, "b") == []  # remembered: joins the same incident without reading them
    assert incidents(service) == 1


def test_a_saved_change_applies_to_the_next_batch(crew):
    service = Service.objects.create(team=crew.team, name="API")
    settings = settings_for(service, grouping_mode=GroupingMode.LABELS, group_labels=["dc"])
    fire(service, "a")
    settings.grouping_mode = GroupingMode.FINGERPRINT
    settings.save()  # admin, API and pages all save: the process forgets at once
    fire(service, "b")
    assert incidents(service) == 2


def test_a_change_committed_elsewhere_applies_once_the_version_moves(crew, monkeypatch):
    # With Redis the version is read at most once a second per process: read it every time.
    monkeypatch.setattr(key_cache, "VERSION_CHECK_SECONDS", 0.0)
    service = Service.objects.create(team=crew.team, name="API")
    settings_for(service, grouping_mode=GroupingMode.LABELS, group_labels=["dc"])
    fire(service, "a")
    # Another process changed them: this one has no signal, only the shared version.
    ServiceIncidentSettings.objects.filter(service=service).update(
        grouping_mode=GroupingMode.FINGERPRINT
    )
    key_cache.bump_version()
    assert len(fire(service, "b")) == 1
    assert incidents(service) == 2


def test_the_policy_is_read_when_an_incident_opens_and_a_deleted_one_is_none(crew):
    service = Service.objects.create(team=crew.team, name="API")
    steps = ({"delay_minutes": 0, "user_ids": [crew.responder.pk]},)
    first = policy(crew.team, *steps, name="First")
    settings_for(service, escalation_policy=first)
    fire(service, "a")
    EscalationPolicy.objects.filter(pk=first.pk).update(name="Renamed")
    fire(service, "b")
    newest = Incident.objects.filter(service=service).latest("id")
    assert newest.policy_snapshot["name"] == "Renamed"
    # Deleting the policy sets the settings' column to NULL with a plain UPDATE (no signal):
    # the remembered settings still name it, and read it as no policy rather than failing.
    first.delete()
    fire(service, "c")
    newest = Incident.objects.filter(service=service).latest("id")
    assert newest.alert_links.get().alert.labels["host"] == "c"
    assert not newest.policy_snapshot


def test_the_settings_do_not_ride_along_in_the_remembered_integration(crew):
    """The service handed in is the integration's (remembered by the key cache): the settings
    point to it, but it must not point back, or they would be pickled with the integration."""
    service = Service.objects.create(team=crew.team, name="API")
    settings_for(service, grouping_mode=GroupingMode.LABELS, group_labels=["dc"])
    service = Service.objects.get(pk=service.pk)  # as the key cache holds it
    settings = ServiceIncidentSettings.for_ingest(service)
    assert settings.service is service
    assert "incident_settings" not in service._state.fields_cache
