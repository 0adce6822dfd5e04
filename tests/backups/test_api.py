"""/api/v1/backup-plans/ and /api/v1/backup-runs/: team-scoped reads, managers start runs
(409 while busy) and download a backup's data, checked and recorded in the event log."""

from __future__ import annotations

import sqlite3

import pytest

from backups import runs
from backups.models import BackupPlan, BackupTarget, RunKind, RunStatus, TargetKind
from tocsin.models import Event

pytestmark = pytest.mark.django_db


def good_backup(plan: BackupPlan):
    run = runs.request_run(plan)
    runs.execute(run.pk)
    run.refresh_from_db()
    return run


def test_plans_are_listed_for_their_team_without_secrets(crew, api, plan: BackupPlan):
    plan.target = BackupTarget.objects.create(
        team=crew.team,
        name="pg",
        kind=TargetKind.POSTGRESQL,
        secrets={"dsn": "postgresql://app:hunter2@db.internal:5432/billing"},
    )
    plan.save()
    body = api(crew.viewer).get("/api/v1/backup-plans/").json()
    assert [p["name"] for p in body["results"]] == ["Nightly"]
    assert body["results"][0]["target"]["where"] == "PostgreSQL billing on db.internal:5432"
    assert "hunter2" not in str(body)
    assert api(crew.outsider).get("/api/v1/backup-plans/").json()["results"] == []
    assert api(crew.outsider).get(f"/api/v1/backup-plans/{plan.pk}/").status_code == 404
    assert api().get("/api/v1/backup-plans/").status_code in (401, 403)


def test_managers_start_runs_and_a_busy_plan_answers_409(crew, api, plan: BackupPlan):
    url = f"/api/v1/backup-plans/{plan.pk}/backup/"
    refused = api(crew.responder).post(url)
    assert refused.status_code == 403 and "manager" in refused.json()["error"]["message"]
    started = api(crew.manager).post(url)
    assert started.status_code == 202 and started.json()["status"] == "queued"
    busy = api(crew.manager).post(f"/api/v1/backup-plans/{plan.pk}/verify/")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "busy"
    assert "one run per plan" in busy.json()["error"]["message"]
    assert plan.runs.count() == 1
    assert api(crew.manager).post(url, {"x": 1}, format="json").status_code == 400


def test_runs_are_listed_by_plan_with_their_figures(crew, api, plan: BackupPlan):
    run = good_backup(plan)
    body = api(crew.viewer).get(f"/api/v1/backup-runs/?plan={plan.pk}").json()
    [listed] = body["results"]
    assert listed["id"] == run.pk and listed["status"] == "succeeded"
    assert listed["size_bytes"] == run.size_bytes and listed["manifest"]["tables"] == {
        "items": 4000
    }
    assert listed["streams"] == ["database.sqlite3"]
    assert api(crew.viewer).get("/api/v1/backup-runs/?kind=nope").status_code == 400
    assert api(crew.outsider).get(f"/api/v1/backup-runs/{run.pk}/").status_code == 404


def test_a_manager_downloads_the_data_checked_and_recorded(crew, api, plan, tmp_path):
    run = good_backup(plan)
    url = f"/api/v1/backup-runs/{run.pk}/download/"
    assert api(crew.viewer).get(url).status_code == 403
    assert api(crew.outsider).get(url).status_code == 404
    response = api(crew.manager).get(url)
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(data) == run.size_bytes
    assert "attachment" in response["Content-Disposition"]
    copy = tmp_path / "downloaded.sqlite3"
    copy.write_bytes(data)
    with sqlite3.connect(copy) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone()[0] == 4000
    connection.close()
    event = Event.objects.get(kind="backup.run_downloaded")
    assert event.actor == crew.manager and event.payload["run_id"] == run.pk
    assert api(crew.manager).get(url + "?stream=nope").status_code == 400


def test_only_a_good_kept_backup_can_be_downloaded(crew, api, plan: BackupPlan):
    run = good_backup(plan)
    drill = runs.request_run(plan, RunKind.DRILL)
    runs.execute(drill.pk)
    assert api(crew.manager).get(f"/api/v1/backup-runs/{drill.pk}/download/").status_code == 404
    run.forgotten_at = run.finished_at
    run.save()
    assert api(crew.manager).get(f"/api/v1/backup-runs/{run.pk}/download/").status_code == 404
    assert run.status == RunStatus.SUCCEEDED


def test_tocsin_own_database_is_downloaded_by_administrators_only(crew, api, plan):
    """Every team's data is in it: a manager of the plan's team may run it, not take it."""
    plan.target = BackupTarget.objects.create(team=crew.team, name="self", kind=TargetKind.TOCSIN)
    plan.save()
    run = good_backup(plan)
    assert run.status == RunStatus.SUCCEEDED, run.error
    url = f"/api/v1/backup-runs/{run.pk}/download/"
    refused = api(crew.manager).get(url)
    assert refused.status_code == 403 and "administrator" in refused.json()["error"]["message"]
    assert api(crew.admin).get(url).status_code == 200
