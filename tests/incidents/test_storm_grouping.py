"""A batch of new alerts: stored, recorded and grouped in bulk; a storm opens a bounded number of
incidents; the batch is one transaction."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from incidents.lifecycle.timeline import describe
from incidents.models import Incident, IncidentAlert, ResponseTarget
from monitoring.models import Alert, Service, Suppression
from monitoring.pipeline import AlertInput, Result, process
from monitoring.suppression import create_inhibition_rule
from tests.incidents.core_support import NOON, policy, settings_for
from tocsin.models import Event


def burst(n: int, run: str = "a", **labels: str) -> list[AlertInput]:
    """``n`` distinct alerts, as a data centre going dark sends them."""
    return [
        AlertInput(labels={"alertname": "HostDown", "host": f"{run}-{i}", **labels})
        for i in range(n)
    ]


def paging_service(crew, name: str, **settings) -> Service:
    """A service as teams run them: an escalation policy and a response target."""
    service = Service.objects.create(team=crew.team, name=name)
    steps = ({"delay_minutes": 0, "user_ids": [crew.responder.pk]},)
    settings_for(service, escalation_policy=policy(crew.team, *steps, name=name), **settings)
    return service


def queries_for(service: Service, alerts: list[AlertInput]) -> int:
    with CaptureQueriesContext(connection) as captured:
        process(service, alerts, source="test", now=NOON)
    return len(captured.captured_queries)


def test_a_batch_of_new_alerts_costs_the_same_queries_for_1_10_and_100(crew):
    for priority in ("P1", "P2", "P3"):
        ResponseTarget.objects.create(
            team=crew.team, priority=priority, ack_minutes=5, resolve_minutes=60
        )
    counts = {}
    for n in (1, 10, 100):
        service = paging_service(crew, f"API {n}")
        counts[n] = queries_for(service, burst(n))
        assert Alert.objects.filter(service=service).count() == n
        assert IncidentAlert.objects.filter(alert__service=service).count() == n
        assert Incident.objects.filter(service=service).count() == min(n, 20)
    assert counts[1] == counts[10] == counts[100], counts
    # What the incidents got in bulk: escalation scheduled, response clocks running.
    incident = Incident.objects.filter(service__name="API 100").last()
    assert incident.next_step_at == NOON and incident.policy_snapshot["steps"]
    assert incident.ack_due_at is not None and incident.resolve_due_at is not None


def test_alerts_joining_open_incidents_cost_the_same_queries_for_1_10_and_100(crew):
    service = paging_service(crew, "Grouped", grouping_mode="labels", group_labels=["dc"])
    process(service, burst(1, "first", dc="eu"), source="test", now=NOON)
    counts = {n: queries_for(service, burst(n, f"more{n}", dc="eu")) for n in (1, 10, 100)}
    assert counts[1] == counts[10] == counts[100], counts
    assert Incident.objects.filter(service=service).count() == 1
    assert Incident.objects.get().alert_links.count() == 112


def test_a_storm_opens_the_configured_bound_of_incidents(crew):
    service = paging_service(crew, "Storm", storm_threshold=5, storm_window_minutes=10)
    outcomes = process(service, burst(100), source="test", now=NOON)
    assert {o.result for o in outcomes} == {Result.CREATED}
    incidents = list(Incident.objects.filter(service=service).order_by("id"))
    assert len(incidents) == 5
    # The first four groups have their own incident; the fifth opened the newest, which every
    # later group joined: one line on its timeline per batch, naming all of them.
    assert [i.alert_links.count() for i in incidents] == [1, 1, 1, 1, 96]
    storm = Event.objects.filter(kind="incident.alert_added", subject_id=str(incidents[-1].pk))
    [joined] = storm
    links = incidents[-1].alert_links.order_by("alert_id").values_list("alert_id", flat=True)
    assert joined.payload["storm"] and joined.payload["count"] == 95
    assert sorted(joined.payload["alert_ids"]) == list(links)[1:]  # all but the opener
    assert describe(joined, {}).startswith("95 alerts joined the incident: “")
    # Still within the window: a second wave opens nothing new.
    process(service, burst(50, "b"), source="test", now=NOON.replace(minute=5))
    assert Incident.objects.filter(service=service).count() == 5
    assert incidents[-1].alert_links.count() == 146
    assert [e.payload["count"] for e in storm.order_by("id")] == [95, 50]


def test_after_the_storm_window_new_groups_open_incidents_again(crew):
    service = paging_service(crew, "Calm", storm_threshold=2, storm_window_minutes=10)
    process(service, burst(5), source="test", now=NOON)
    process(service, burst(1, "later"), source="test", now=NOON.replace(minute=11))
    assert Incident.objects.filter(service=service).count() == 3


def test_no_storm_bound_opens_an_incident_per_group(crew):
    service = paging_service(crew, "Unbounded", storm_threshold=0)
    process(service, burst(60), source="test", now=NOON)
    assert Incident.objects.filter(service=service).count() == 60


def test_a_storm_over_an_open_incident_joins_it(crew):
    service = paging_service(crew, "Busy", storm_threshold=1)
    process(service, burst(1, "x"), source="test", now=NOON)
    process(service, burst(10, "y"), source="test", now=NOON)
    [incident] = Incident.objects.filter(service=service)
    assert incident.alert_links.count() == 11


def test_a_batch_in_a_storm_reads_the_incidents_with_one_statement(crew):
    """The open incidents of the batch's groups, the newest open one and the storm budget used
    come from one statement, not from reading every incident the storm opened."""
    service = paging_service(crew, "Storming", storm_threshold=3, storm_window_minutes=10)
    process(service, burst(10), source="test", now=NOON)
    table = f"FROM {connection.ops.quote_name(Incident._meta.db_table)}"
    with CaptureQueriesContext(connection) as captured:
        process(service, burst(5, "b"), source="test", now=NOON.replace(minute=1))
    reads = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
    assert len([sql for sql in reads if table in sql]) == 1, reads
    newest = Incident.objects.filter(service=service).order_by("-created_at", "-id").first()
    assert Incident.objects.filter(service=service).count() == 3
    assert newest.alert_links.count() == 8 + 5


def test_past_the_bound_new_groups_join_the_newest_open_incident_from_before_the_window(crew):
    service = paging_service(crew, "Long", storm_threshold=2, storm_window_minutes=10)
    process(service, burst(1, "old"), source="test", now=NOON)
    [old] = Incident.objects.filter(service=service)
    later = NOON.replace(minute=30)
    process(service, burst(2, "new"), source="test", now=later)
    Incident.objects.filter(service=service).exclude(pk=old.pk).update(
        status="resolved", resolved_at=later
    )
    process(service, burst(3, "more"), source="test", now=later.replace(minute=31))
    assert Incident.objects.filter(service=service).count() == 3  # the budget is spent
    assert old.alert_links.count() == 4


def test_an_alert_of_a_batch_inhibits_later_ones_of_the_same_batch(crew):
    service = paging_service(crew, "DC")
    create_inhibition_rule(
        team=crew.team,
        name="dc down mutes hosts",
        source_matchers="alertname=DatacenterDown",
        target_matchers="alertname=HostDown",
        equal=["dc"],
        actor=crew.manager,
    )
    alerts = [AlertInput(labels={"alertname": "DatacenterDown", "dc": "eu"}), *burst(3, dc="eu")]
    process(service, alerts, source="test", now=NOON)
    muted = Alert.objects.filter(service=service, suppression=Suppression.INHIBITED)
    assert muted.count() == 3
    [incident] = Incident.objects.filter(service=service)
    assert incident.title == "DatacenterDown"


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_stored_whole_or_not_at_all(crew, monkeypatch):
    service = paging_service(crew, "Atomic")
    process(service, burst(1, "old"), source="test")

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Alert, "prepare_resolve", broken)
    resolve_old = AlertInput(labels={"alertname": "HostDown", "host": "old-0"}, status="resolved")
    with pytest.raises(RuntimeError):
        process(service, [*burst(3, "new"), resolve_old], source="test")
    assert Alert.objects.filter(service=service).count() == 1
    assert Incident.objects.filter(service=service).count() == 1
    assert not Event.objects.filter(kind="alert.firing", payload__labels__host="new-0").exists()


def resolved(alerts: list[AlertInput]) -> list[AlertInput]:
    return [AlertInput(labels=a.labels, status="resolved") for a in alerts]


def test_resolving_a_batch_costs_the_same_queries_for_1_10_and_100(crew):
    counts = {}
    for n in (1, 10, 100):
        service = paging_service(crew, f"Back {n}", grouping_mode="labels", group_labels=["dc"])
        alerts = burst(n, dc="eu")
        process(service, alerts, source="test", now=NOON)
        counts[n] = queries_for(service, resolved(alerts))
        assert not Alert.objects.filter(service=service, status="firing").exists()
        assert Incident.objects.get(service=service).status == "resolved"
    assert counts[1] == counts[10] == counts[100], counts


def test_the_data_centre_coming_back_resolves_every_incident_of_the_storm(crew):
    service = paging_service(crew, "Recovery", storm_threshold=5)
    alerts = burst(40)
    process(service, alerts, source="test", now=NOON)
    # Half come back first: only the incidents whose every alert resolved resolve.
    process(service, resolved(alerts[:20]), source="test", now=NOON.replace(minute=3))
    statuses = list(
        Incident.objects.filter(service=service).order_by("id").values_list("status", flat=True)
    )
    assert statuses == ["resolved"] * 4 + ["triggered"]
    outcomes = process(service, resolved(alerts[20:]), source="test", now=NOON.replace(minute=4))
    assert {o.result for o in outcomes} == {Result.RESOLVED}
    assert set(Incident.objects.filter(service=service).values_list("status", flat=True)) == {
        "resolved"
    }
    assert Event.objects.filter(kind="alert.resolved").count() == 40


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_a_storm_stay_within_the_bound(crew):
    service = paging_service(crew, "Racing", storm_threshold=5)
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def send(run: int) -> None:
        try:
            start.wait(10)
            # Pairs of requests carry the same alerts, as Alertmanager's re-sends do.
            process(service, burst(10, f"r{run % 4}"), source="test")
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(run,)) for run in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert Alert.objects.filter(service=service).count() == 40
    assert IncidentAlert.objects.filter(alert__service=service).count() == 40
    assert Incident.objects.filter(service=service).count() == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
def test_batches_that_only_join_do_not_wait_for_batches_that_open(crew):
    service = paging_service(crew, "Busy", storm_threshold=2)
    process(service, burst(3, "storm"), source="test")  # the bound is reached
    assert Incident.objects.filter(service=service).count() == 2
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:  # a batch that is opening incidents holds the turn
            cursor.execute("BEGIN")
            cursor.execute(
                "SELECT id FROM monitoring_service WHERE id = %s FOR NO KEY UPDATE", [service.pk]
            )
            with connection.cursor() as mine:
                mine.execute("SET lock_timeout = '2s'")
            # Joining an open group, and new groups of a storm at its bound: no turn needed.
            process(service, burst(3, "storm") + burst(5, "more"), source="test")
            with connection.cursor() as mine:
                mine.execute("SET lock_timeout = 0")
            cursor.execute("ROLLBACK")
    finally:
        holder.close()
    assert IncidentAlert.objects.filter(alert__service=service).count() == 8
    assert Incident.objects.filter(service=service).count() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
def test_a_services_turn_to_open_incidents_does_not_hold_up_its_teams_other_services(crew):
    first = paging_service(crew, "Checkout", storm_threshold=5)
    second = paging_service(crew, "Search", storm_threshold=5)
    holding, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def open_and_hold() -> None:
        try:
            with transaction.atomic():
                process(first, burst(2, "held"), source="test")  # takes the service's turn
                holding.set()
                release.wait(10)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=open_and_hold)
    holder.start()
    try:
        assert holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        # Another service of the same team opens incidents while the first holds its turn.
        process(second, burst(2, "free"), source="test")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    finally:
        release.set()
        holder.join(30)
    assert not failures, failures
    assert Incident.objects.filter(service=second).count() == 2
    assert Incident.objects.filter(service=first).count() == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_open_incidents_are_probed_by_index_even_under_a_generic_plan(crew):
    """find_open's statement is prepared (the same text every batch), and PostgreSQL may plan a
    prepared statement once for any values: even then it reads incidents through indexes, not
    a scan of the table, with statistics taken before the service's storm."""
    import re

    from incidents.lifecycle.grouping import _Plan
    from incidents.models import ServiceIncidentSettings

    quiet = paging_service(crew, "Quiet", storm_threshold=0)
    process(quiet, burst(3000, "q"), source="test", now=NOON)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE incidents_incident")
    busy = paging_service(crew, "Busy", storm_threshold=0)
    process(busy, burst(1500, "b"), source="test", now=NOON)
    settings = ServiceIncidentSettings.for_service(busy)
    sql, params = _Plan(busy, settings, NOON)._open_and_newest_sql({"k1", "k2"}, 20)
    numbered = iter(range(1, len(params) + 1))
    prepared = re.sub(r"%s", lambda _: f"${next(numbered)}", sql)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE find_open_generic AS {prepared}")
        arguments = ", ".join(["%s"] * len(params))
        cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE find_open_generic({arguments})", params)
        [[plan]] = cursor.fetchone()
        cursor.execute("DEALLOCATE find_open_generic")

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    kinds = {node["Node Type"] for node in nodes(plan["Plan"])}
    assert "Seq Scan" not in kinds, plan
