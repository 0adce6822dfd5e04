"""The alert page says why an alert is in its incident, in the words of the grouping rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from incidents.models import GroupingMode
from tests.incidents.core_support import NOON, fire, settings_for
from tests.monitoring.page_support import logged_in


def why_on_page(crew, alert) -> str:
    html = logged_in(crew.viewer).get(reverse("alert", args=[alert.pk])).content.decode()
    start = html.index("data-grouping-why>") + len("data-grouping-why>")
    return html[start : html.index("</small>", start)]


@pytest.mark.django_db
def test_the_first_alert_opened_the_incident(crew, service):
    alert = fire(service)
    why = why_on_page(crew, alert)
    assert why.startswith(f"It opened incident #{alert.incident_links.get().incident_id}")
    assert "groups by fingerprint" in why


@pytest.mark.django_db
def test_an_alert_joined_by_the_same_label_values(crew, service):
    settings_for(service, grouping_mode=GroupingMode.LABELS, group_labels=["cluster"])
    first = fire(service, alertname="HighLatency", cluster="eu-1")
    second = fire(service, NOON + timedelta(minutes=1), alertname="ErrorRate", cluster="eu-1")
    incident_id = first.incident_links.get().incident_id
    assert second.incident_links.get().incident_id == incident_id
    why = why_on_page(crew, second)
    assert why == (
        f"It joined incident #{incident_id} because it has the same values of the labels "
        "cluster=&#x27;eu-1&#x27;."
    )


@pytest.mark.django_db
def test_an_alert_joined_within_the_time_window(crew, service):
    settings_for(service, grouping_mode=GroupingMode.TIME_WINDOW, window_minutes=5)
    first = fire(service, alertname="A")
    second = fire(service, NOON + timedelta(minutes=3), alertname="B")
    incident_id = first.incident_links.get().incident_id
    assert why_on_page(crew, second) == (
        f"It joined incident #{incident_id} because it fired within the 5-minute window after "
        "the incident opened (the service groups by time window)."
    )


@pytest.mark.django_db
def test_a_storm_join_says_so(crew, service):
    settings_for(service, storm_threshold=1, storm_window_minutes=10)
    first = fire(service, alertname="A")
    second = fire(service, NOON + timedelta(minutes=1), alertname="B")
    incident_id = first.incident_links.get().incident_id
    assert second.incident_links.get().incident_id == incident_id
    assert why_on_page(crew, second).startswith(
        f"It joined incident #{incident_id} because of an alert storm (past 1 new incidents"
    )
