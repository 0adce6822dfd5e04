"""The backups pages: plans of your teams only, live progress, charts and drills on a plan's
page, starting runs for managers only, a fixed number of queries."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backups import runs
from backups.models import BackupPlan, BackupRun, RunKind, RunStatus

pytestmark = pytest.mark.django_db


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_list_shows_the_last_result_and_the_next_run(crew, plan: BackupPlan):
    run = runs.request_run(plan)
    runs.execute(run.pk)
    html = client_for(crew.viewer).get(reverse("backups")).content.decode()
    assert "Nightly" in html and "Succeeded" in html and "stored" in html
    assert "Back up now" not in html  # a viewer may look, not start


def test_other_teams_plans_are_not_shown_and_their_pages_are_404(crew, plan: BackupPlan):
    outsider = client_for(crew.outsider)
    assert "Nightly" not in outsider.get(reverse("backups")).content.decode()
    assert outsider.get(reverse("backup_plan", args=[plan.pk])).status_code == 404
    assert outsider.get(reverse("backup_plan_progress", args=[plan.pk])).status_code == 404
    start = reverse("backup_plan_start", args=[plan.pk, "backup"])
    assert outsider.post(start).status_code == 404
    assert not plan.runs.exists()


def test_starting_a_run_needs_the_manager_role(crew, plan: BackupPlan):
    start = reverse("backup_plan_start", args=[plan.pk, "backup"])
    assert client_for(crew.responder).post(start).status_code == 403
    assert not plan.runs.exists()
    response = client_for(crew.manager).post(start, follow=True)
    assert "Backup of “Nightly” queued." in response.content.decode()
    assert plan.runs.get().status == RunStatus.QUEUED
    again = client_for(crew.manager).post(start, follow=True).content.decode()
    assert "one run per plan at a time" in again


def test_a_running_backup_shows_bytes_percent_and_rate_and_keeps_polling(crew, plan):
    previous = runs.request_run(plan)
    runs.execute(previous.pk)
    BackupRun.objects.create(
        plan=plan,
        status=RunStatus.RUNNING,
        started_at=timezone.now() - timezone.timedelta(seconds=10),
        progress_bytes=2_000_000,
        expected_bytes=4_000_000,
    )
    html = client_for(crew.viewer).get(reverse("backup_plan_progress", args=[plan.pk])).content
    html = html.decode()
    assert "Backup running" in html and "2.0 MB" in html and "50 %" in html
    assert 'aria-valuenow="50"' in html and "/s" in html
    assert 'hx-trigger="every 2s"' in html  # polls while it runs


def test_a_finished_plan_stops_polling(crew, plan: BackupPlan):
    run = runs.request_run(plan)
    runs.execute(run.pk)
    html = client_for(crew.viewer).get(reverse("backup_plan_progress", args=[plan.pk])).content
    assert b"hx-trigger" not in html and b"Succeeded" in html


def test_the_plan_page_charts_backups_and_lists_drills_and_history(crew, plan: BackupPlan):
    for kind in (RunKind.BACKUP, RunKind.BACKUP, RunKind.DRILL):
        run = runs.request_run(plan, kind)
        runs.execute(run.pk)
    html = client_for(crew.manager).get(reverse("backup_plan", args=[plan.pk])).content.decode()
    chart = json.loads(re.search(r'id="backup-chart"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert len(chart["t"]) == 2 and chart["dedup"][1] == 100.0 and chart["size"][0] > 0
    assert "Restore drills" in html and "tables and row counts match the backup" in html
    assert "Restore drill now" in html and "Edit" in html
    assert html.count("<tr>") >= 3


def test_the_list_costs_the_same_queries_for_one_plan_or_many(
    crew, plan: BackupPlan, django_assert_max_num_queries
):
    BackupRun.objects.create(plan=plan, status=RunStatus.FAILED, error="x")
    client = client_for(crew.viewer)
    client.get(reverse("backups"))  # warm the session and roles
    with django_assert_max_num_queries(8) as one:
        client.get(reverse("backups"))
    for n in range(5):
        copy = BackupPlan.objects.create(
            service=plan.service, name=f"Plan {n}", target=plan.target, storage=plan.storage
        )
        BackupRun.objects.create(plan=copy, status=RunStatus.FAILED, error="x")
    with django_assert_max_num_queries(len(one.captured_queries)):
        html = client.get(reverse("backups")).content.decode()
    assert html.count("Plan ") >= 5
