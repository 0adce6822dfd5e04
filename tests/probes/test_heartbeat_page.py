"""The heartbeats pages: team-scoped lists, a heartbeat's page with its pings and the lines to
paste, pause/resume/snooze for responders, and a fixed number of queries per page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from monitoring.models import Service
from probes.heartbeats import services, snippets
from probes.heartbeats.models import Heartbeat, HeartbeatStatus, Ping, PingKind
from probes.heartbeats.pages import run_history


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Nightly jobs")


@pytest.fixture
def heartbeat(service) -> Heartbeat:
    return Heartbeat.objects.create(service=service, name="DB backup", cron="30 2 * * *")


def run(heartbeat: Heartbeat, started: Any, seconds: float, exit_status: int = 0) -> None:
    """A start and its finish ``seconds`` later, through the service the ping URLs call."""
    services.record_ping(heartbeat, services.PingData(kind=PingKind.START), now=started)
    heartbeat.refresh_from_db()
    services.record_ping(
        heartbeat,
        services.PingData(kind=PingKind.SUCCESS, exit_status=exit_status),
        now=started + timedelta(seconds=seconds),
    )
    heartbeat.refresh_from_db()


def page(user: Any, url: str = "/probes/heartbeats/") -> str:
    response = client_for(user).get(url)
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_the_heartbeats_of_the_users_teams_only(crew, heartbeat):
    foreign = Service.objects.create(team=crew.other_team, name="Search jobs")
    Heartbeat.objects.create(service=foreign, name="Reindex")

    html = page(crew.viewer)

    assert "DB backup" in html and "Reindex" not in html
    assert "Reindex" in page(crew.outsider) and "DB backup" not in page(crew.outsider)


def test_administrators_see_every_team_and_may_act(crew, heartbeat):
    foreign = Service.objects.create(team=crew.other_team, name="Search jobs")
    Heartbeat.objects.create(service=foreign, name="Reindex")

    html = page(crew.admin)

    assert "DB backup" in html and "Reindex" in html and "Pause" in html


def test_the_state_is_written_as_well_as_coloured(crew, heartbeat):
    run(heartbeat, timezone.now() - timedelta(minutes=5), 30, exit_status=3)

    html = page(crew.viewer)

    assert '<span class="badge badge-firing">down</span>' in html
    assert "DB backup failed with exit status 3" in html
    assert "cron “30 2 * * *” (UTC)" in html


def test_a_late_heartbeat_reads_late(crew, heartbeat):
    run(heartbeat, timezone.now() - timedelta(days=1), 10)
    Heartbeat.objects.filter(pk=heartbeat.pk).update(
        expected_at=timezone.now() - timedelta(minutes=1)
    )

    html = page(crew.viewer, "/probes/heartbeats/?status=late")

    assert '<span class="badge badge-warning">late</span>' in html
    assert "DB backup" in page(crew.viewer, "/probes/heartbeats/?status=late")
    assert "DB backup" not in page(crew.viewer, "/probes/heartbeats/?status=up")


def test_the_team_filter_narrows_and_an_unknown_team_is_a_404(crew, heartbeat):
    assert "DB backup" in page(crew.viewer, f"/probes/heartbeats/?team={crew.team.slug}")
    response = client_for(crew.viewer).get(f"/probes/heartbeats/?team={crew.other_team.slug}")
    assert response.status_code == 404
    assert client_for(crew.viewer).get("/probes/heartbeats/?status=sideways").status_code == 404


def test_the_list_needs_a_login(db):
    response = Client().get("/probes/heartbeats/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_run_times_are_drawn_with_their_outcome(crew, heartbeat):
    start = timezone.now() - timedelta(hours=3)
    run(heartbeat, start, 60)
    run(heartbeat, start + timedelta(hours=1), 120, exit_status=1)

    html = page(crew.viewer)

    assert html.count('class="hb-run"') == 1 and html.count("hb-run hb-run-failed") == 1
    assert "Last 2 timed runs: shortest 1 min, median 2 min, longest 2 min; 1 failed." in html
    assert 'style="height: 50%"' in html and 'style="height: 100%"' in html


def test_viewers_get_no_buttons_and_responders_do(crew, heartbeat):
    assert "Pause" not in page(crew.viewer)
    assert "Pause" in page(crew.responder)


def _queries(user: Any, url: str) -> int:
    client = client_for(user)
    client.get(url)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_for_1_and_20_heartbeats(crew, service):
    start = timezone.now() - timedelta(hours=2)
    first = Heartbeat.objects.create(service=service, name="job 0", period=3600)
    run(first, start, 5)
    one = _queries(crew.responder, "/probes/heartbeats/")
    for number in range(1, 20):
        other = Heartbeat.objects.create(service=service, name=f"job {number}", period=3600)
        run(other, start, number)

    assert _queries(crew.responder, "/probes/heartbeats/") == one


# --- a heartbeat's page -------------------------------------------------------------------------


def test_the_page_shows_the_lines_to_paste_and_recent_pings(crew, heartbeat):
    run(heartbeat, timezone.now() - timedelta(minutes=10), 42)
    services.ping_key_for(heartbeat.service)

    html = page(crew.viewer, f"/probes/heartbeats/{heartbeat.pk}/")

    assert snippets.curl_line(heartbeat) in html
    assert f"30 2 * * * {snippets.CURL} {snippets.ping_url(heartbeat)}/start" in html
    assert f"/ping/{heartbeat.service.heartbeat_ping_key.key}/db-backup" in html
    assert html.count('badge-acknowledged">start</span>') == 1
    assert "42 s" in html
    assert "Edit" not in html  # configuration is the managers'


def test_managers_get_a_link_to_edit(crew, heartbeat):
    html = page(crew.manager, f"/probes/heartbeats/{heartbeat.pk}/")

    assert reverse("admin:probes_heartbeat_change", args=[heartbeat.pk]) in html


def test_a_heartbeat_of_another_team_is_a_404(crew, heartbeat):
    client = client_for(crew.outsider)

    assert client.get(f"/probes/heartbeats/{heartbeat.pk}/").status_code == 404
    assert client.post(f"/probes/heartbeats/{heartbeat.pk}/pause/").status_code == 404
    assert Heartbeat.objects.get().status == HeartbeatStatus.NEW


def test_the_page_costs_the_same_queries_for_few_and_many_pings(crew, heartbeat):
    url = f"/probes/heartbeats/{heartbeat.pk}/"
    run(heartbeat, timezone.now() - timedelta(hours=5), 1)
    few = _queries(crew.manager, url)
    for number in range(20):
        run(heartbeat, timezone.now() - timedelta(hours=4, minutes=-number), number)

    assert _queries(crew.manager, url) == few


# --- actions ------------------------------------------------------------------------------------


def test_a_viewer_cannot_pause(crew, heartbeat):
    response = client_for(crew.viewer).post(f"/probes/heartbeats/{heartbeat.pk}/pause/")

    assert response.status_code == 403
    assert Heartbeat.objects.get().status == HeartbeatStatus.NEW


def test_a_responder_pauses_and_resumes(crew, heartbeat):
    client = client_for(crew.responder)
    url = f"/probes/heartbeats/{heartbeat.pk}/"

    response = client.post(url + "pause/", {"next": "/probes/heartbeats/?team=payments"})
    assert response.status_code == 302
    assert response["Location"] == "/probes/heartbeats/?team=payments"
    assert Heartbeat.objects.get().status == HeartbeatStatus.PAUSED

    response = client.post(url + "resume/", {"next": "https://elsewhere.example/"})
    assert response.status_code == 302 and response["Location"] == url
    assert Heartbeat.objects.get().status == HeartbeatStatus.NEW


def test_pausing_from_the_list_swaps_the_row(crew, heartbeat):
    response = client_for(crew.responder).post(
        f"/probes/heartbeats/{heartbeat.pk}/pause/",
        {"row": "1", "next": "/probes/heartbeats/"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="heartbeat-{heartbeat.pk}">')
    assert '<span class="badge badge-muted">paused</span>' in html
    assert "Resume" in html and "DB backup is paused." in html


def test_a_responder_snoozes_and_ends_the_snooze(crew, heartbeat):
    client = client_for(crew.responder)
    url = f"/probes/heartbeats/{heartbeat.pk}/snooze/"

    assert client.post(url, {"seconds": "14400"}).status_code == 302
    snoozed_until = Heartbeat.objects.get().snoozed_until
    assert snoozed_until is not None
    assert abs((snoozed_until - timezone.now()) - timedelta(hours=4)) < timedelta(minutes=1)
    assert "snoozed" in page(crew.viewer)

    assert client.post(url, {"seconds": "0"}).status_code == 302
    assert Heartbeat.objects.get().snoozed_until is None


def test_a_snooze_for_an_unoffered_time_is_a_400(crew, heartbeat):
    response = client_for(crew.responder).post(
        f"/probes/heartbeats/{heartbeat.pk}/snooze/", {"seconds": "99999999"}
    )

    assert response.status_code == 400
    assert Heartbeat.objects.get().snoozed_until is None


def test_actions_need_post(crew, heartbeat):
    response = client_for(crew.manager).get(f"/probes/heartbeats/{heartbeat.pk}/pause/")

    assert response.status_code == 405
    assert Ping.objects.count() == 0


def test_the_list_draws_the_last_20_runs_of_each_heartbeat(crew, service):
    start = timezone.now() - timedelta(days=2)
    first = Heartbeat.objects.create(service=service, name="many", period=3600)
    for number in range(25):
        run(first, start + timedelta(hours=number), number + 1)
    second = Heartbeat.objects.create(service=service, name="few", period=3600)
    run(second, start, 7)

    history = run_history([first.pk, second.pk], 20)

    assert [r.seconds for r in history[first.pk]] == [float(n) for n in range(6, 26)]
    assert [r.seconds for r in history[second.pk]] == [7.0]
