"""The metrics API: samples in, series out, rules managed; roles, bad input, error shape."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from monitoring.metrics import SampleInput, record_samples
from monitoring.metrics.rules import evaluate_rules
from monitoring.models import Alert, AlertRule, MetricSample, MetricSeries
from tocsin.models import ApiToken, Membership, Role

SAMPLES = "/api/v1/metrics/samples/"
SERIES = "/api/v1/metrics/series/"
RULES = "/api/v1/alert-rules/"


def rule_body(svc, **overrides):
    body = {
        "team": svc.team.slug,
        "service": svc.pk,
        "name": "Disk almost full",
        "metric": "disk_used_percent",
        "matchers": 'mount="/"',
        "aggregation": "max",
        "window_seconds": 300,
        "comparison": ">=",
        "threshold": 90,
        "for_seconds": 120,
        "severity": "warning",
        "summary_template": "{{ labels.host }}: disk at {{ value }}%",
    }
    body.update(overrides)
    return body


# --- samples ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["responder", "manager"])
def test_responders_and_managers_write_samples(api, crew, role):
    response = api(crew.by_role(role)).post(
        SAMPLES, {"name": "queue_depth", "value": 3, "labels": {"q": "mail"}}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json() == {"team": crew.team.pk, "samples": 1, "series": 1, "new_series": 1}
    assert MetricSeries.objects.get().team == crew.team


def test_viewers_may_not_write_samples(api, crew):
    response = api(crew.viewer).post(SAMPLES, {"name": "x", "value": 1}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not MetricSample.objects.exists()


def test_anonymous_callers_get_401(api, crew):
    assert api().post(SAMPLES, {"name": "x", "value": 1}, format="json").status_code == 401


def test_a_batch_by_api_token_with_unix_times(crew):
    _token, raw = ApiToken.issue(crew.responder, "collector")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    now = timezone.now().timestamp()
    body = [
        {"name": "cpu", "value": 10.5, "labels": {"host": "a"}, "time": now - 20},
        {"name": "cpu", "value": 12, "labels": {"host": "a"}, "time": now - 10},
        {"name": "requests_total", "value": 7, "kind": "counter"},
    ]
    response = client.post(SAMPLES, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["samples"] == 3
    assert MetricSeries.objects.get(name="cpu").last_value == 12


def test_bad_samples_answer_400_per_field_and_store_nothing(api, crew):
    body = {
        "samples": [
            {"name": "fine", "value": 1},
            {"name": "9lives", "value": "many", "labels": {"bad-label": "x"}},
        ]
    }
    response = api(crew.responder).post(SAMPLES, body, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"samples.1.name", "samples.1.value", "samples.1.labels"}
    assert not MetricSample.objects.exists()


def test_unknown_sample_fields_are_refused(api, crew):
    response = api(crew.responder).post(
        SAMPLES, [{"name": "x", "value": 1, "colour": "red"}], format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"0.colour": ["unknown field"]}


@pytest.mark.parametrize("body", ["just text", 42, [], {"samples": []}])
def test_shapeless_bodies_answer_400(api, crew, body):
    response = api(crew.responder).post(SAMPLES, body, format="json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_a_too_old_sample_is_refused(api, crew):
    old = (timezone.now() - timedelta(hours=3)).isoformat()
    response = api(crew.responder).post(
        SAMPLES, [{"name": "x", "value": 1, "time": old}], format="json"
    )
    assert response.status_code == 400
    assert "0.time" in response.json()["error"]["fields"]


def test_a_kind_clash_is_reported_on_the_sample(api, crew):
    record_samples(crew.team, SampleInput("x", 1, kind="gauge"))
    response = api(crew.responder).post(
        SAMPLES, {"samples": [{"name": "x", "value": 2, "kind": "counter"}]}, format="json"
    )
    assert response.status_code == 400
    assert "samples.0.kind" in response.json()["error"]["fields"]
    assert MetricSample.objects.count() == 1


def test_several_teams_mean_naming_one(api, crew):
    Membership.objects.create(team=crew.other_team, user=crew.responder, role=Role.RESPONDER)
    client = api(crew.responder)
    response = client.post(SAMPLES, {"name": "x", "value": 1}, format="json")
    assert response.status_code == 400
    assert "team" in response.json()["error"]["fields"]
    body = {"team": crew.other_team.slug, "samples": [{"name": "x", "value": 1}]}
    assert client.post(SAMPLES, body, format="json").status_code == 201
    assert MetricSeries.objects.get().team == crew.other_team


def test_a_team_you_cannot_see_is_not_found_and_one_you_only_view_is_forbidden(api, crew):
    client = api(crew.outsider)
    response = client.post(SAMPLES, {"team": crew.team.pk, "name": "x", "value": 1}, format="json")
    assert response.status_code == 400
    assert "team" in response.json()["error"]["fields"]
    Membership.objects.create(team=crew.team, user=crew.outsider, role=Role.VIEWER)
    response = client.post(SAMPLES, {"team": crew.team.pk, "name": "x", "value": 1}, format="json")
    assert response.status_code == 403
    assert not MetricSample.objects.exists()


# --- series -------------------------------------------------------------------------------------


def test_series_are_listed_for_their_team_only(api, crew, django_assert_max_num_queries):
    for host in ("a", "b", "c"):
        record_samples(crew.team, SampleInput("cpu", 1, {"host": host}))
    record_samples(crew.other_team, SampleInput("cpu", 1))
    client = api(crew.viewer)
    with django_assert_max_num_queries(6):
        response = client.get(SERIES, {"name": "cpu"})
    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert response.json()["results"][0]["display_name"] == 'cpu{host="a"}'
    other = MetricSeries.objects.get(team=crew.other_team)
    assert client.get(f"{SERIES}{other.pk}/").status_code == 404
    assert client.get(SERIES, {"nonsense": 1}).status_code == 400


def test_a_series_points_at_each_resolution(api, crew):
    now = timezone.now()
    record_samples(
        crew.team,
        [SampleInput("cpu", v, time=now - timedelta(minutes=10 - v)) for v in range(5)],
        now=now,
    )
    series = MetricSeries.objects.get()
    client = api(crew.viewer)
    raw = client.get(f"{SERIES}{series.pk}/samples/")
    assert raw.status_code == 200, raw.json()
    assert raw.json()["resolution"] == "raw"
    assert [p["value"] for p in raw.json()["points"]] == [0, 1, 2, 3, 4]
    minute = client.get(f"{SERIES}{series.pk}/samples/", {"resolution": "1m"})
    assert sum(p["count"] for p in minute.json()["points"]) == 5
    week = client.get(
        f"{SERIES}{series.pk}/samples/",
        {"since": (now - timedelta(days=30)).isoformat(), "until": now.isoformat()},
    )
    assert week.json()["resolution"] == "1h"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"resolution": "5m"}, "resolution"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
        ({"bogus": "1"}, "bogus"),
    ],
)
def test_bad_point_queries_answer_400(api, crew, params, field):
    record_samples(crew.team, SampleInput("cpu", 1))
    series = MetricSeries.objects.get()
    response = api(crew.viewer).get(f"{SERIES}{series.pk}/samples/", params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


# --- alert rules --------------------------------------------------------------------------------


def test_managers_create_rules_and_the_team_reads_them(api, crew, service):
    response = api(crew.manager).post(RULES, rule_body(service), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["matchers"] == [{"name": "mount", "op": "=", "value": "/"}]
    assert body["expression"] == 'max(disk_used_percent{mount="/"}[5m]) >= 90 for 2m'
    assert body["service"]["id"] == service.pk
    listed = api(crew.viewer).get(RULES)
    assert listed.status_code == 200
    assert [r["name"] for r in listed.json()["results"]] == ["Disk almost full"]
    assert api(crew.outsider).get(f"{RULES}{body['id']}/").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_only_managers_change_rules(api, crew, service, role):
    client = api(crew.by_role(role))
    assert client.post(RULES, rule_body(service), format="json").status_code == 403
    rule = AlertRule.objects.create(
        team=crew.team, service=service, name="r", metric="m", threshold=1
    )
    assert client.patch(f"{RULES}{rule.pk}/", {"threshold": 2}, format="json").status_code == 403
    assert client.delete(f"{RULES}{rule.pk}/").status_code == 403
    rule.refresh_from_db()
    assert rule.threshold == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"metric": "disk-used"}, "metric"),
        ({"matchers": 'mount=~"("'}, "matchers"),
        ({"comparison": "=>"}, "comparison"),
        ({"aggregation": "median"}, "aggregation"),
        ({"window_seconds": 10}, "window_seconds"),
        ({"threshold": "high"}, "threshold"),
        ({"summary_template": "{{ request.user }}"}, "summary_template"),
        ({"labels": {"team": 5}}, "labels"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"team": "no-such-team"}, "team"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_rules_answer_400_naming_the_field(api, crew, service, overrides, field):
    response = api(crew.manager).post(RULES, rule_body(service, **overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"], response.json()
    assert not AlertRule.objects.exists()


def test_a_rule_cannot_point_at_another_teams_service(api, crew, service, other_service):
    Membership.objects.create(team=crew.other_team, user=crew.manager, role=Role.VIEWER)
    response = api(crew.manager).post(
        RULES, rule_body(service, service=other_service.pk), format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["service"] == ["the service belongs to another team"]


def test_duplicate_rule_names_conflict(api, crew, service):
    client = api(crew.manager)
    assert client.post(RULES, rule_body(service), format="json").status_code == 201
    response = client.post(RULES, rule_body(service), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate"


def test_managers_change_and_delete_rules(api, crew, service):
    client = api(crew.manager)
    rule_id = client.post(RULES, rule_body(service), format="json").json()["id"]
    response = client.patch(
        f"{RULES}{rule_id}/", {"threshold": 95, "enabled": False}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["threshold"], response.json()["enabled"]) == (95, False)
    bad = client.patch(f"{RULES}{rule_id}/", {"team": crew.other_team.pk}, format="json")
    assert bad.status_code == 400
    assert client.delete(f"{RULES}{rule_id}/").status_code == 204
    assert not AlertRule.objects.exists()


def test_testing_a_rule_shows_values_and_changes_nothing(api, crew, service):
    rule_id = api(crew.manager).post(RULES, rule_body(service, for_seconds=0), format="json")
    rule_id = rule_id.json()["id"]
    record_samples(crew.team, SampleInput("disk_used_percent", 93, {"mount": "/", "host": "a"}))
    record_samples(crew.team, SampleInput("disk_used_percent", 99, {"mount": "/boot"}))
    response = api(crew.viewer).post(f"{RULES}{rule_id}/test/")
    assert response.status_code == 200, response.json()
    [series] = response.json()["series"]
    assert series["labels"] == {"mount": "/", "host": "a"}
    assert (series["value"], series["breaching"], series["change"]) == (93, True, "fired")
    assert not Alert.objects.exists()


def test_previewing_an_unsaved_rule(api, crew, service):
    record_samples(crew.team, SampleInput("disk_used_percent", 50, {"mount": "/"}))
    response = api(crew.viewer).post(f"{RULES}preview/", rule_body(service), format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["series"][0]["breaching"] is False
    assert not AlertRule.objects.exists()


def test_a_rule_made_through_the_api_raises_alerts(api, crew, service):
    api(crew.manager).post(RULES, rule_body(service, for_seconds=0), format="json")
    record_samples(crew.team, SampleInput("disk_used_percent", 97, {"mount": "/", "host": "db"}))
    evaluate_rules()
    alert = Alert.objects.get()
    assert (alert.summary, alert.severity, alert.source) == ("db: disk at 97%", "warning", "rule")
