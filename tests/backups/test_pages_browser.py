"""The backups and database pages in a real browser (Debian's chromium) against a real daphne
server: they fit a phone 390 px wide, a running backup's progress turns into its result by
itself, and the plan and database pages draw their charts."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from backups import runs
from backups.models import BackupPlan, BackupRun, BackupStorage, RunKind, RunStatus
from monitoring.databases import collection
from monitoring.models import MonitoredDatabase
from tests.probes.test_heartbeat_page_browser import open_page, overflow
from tests.services import require_service

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def backed_up(transactional_db: None, plan: BackupPlan, tmp_path: Any) -> BackupPlan:
    BackupPlan.objects.filter(pk=plan.pk).update(name="Nightly billing database to the bucket")
    # A path with a long unbreakable part (as pytest's own temporary folders can have): the
    # page must wrap it rather than widen past a phone's screen.
    BackupStorage.objects.filter(pk=plan.storage_id).update(
        path=str(tmp_path / "billing_database_backups_kept_for_ninety_days_by_policy")
    )
    plan.refresh_from_db()
    for kind in (RunKind.BACKUP, RunKind.BACKUP, RunKind.DRILL):
        runs.execute(runs.request_run(plan, kind).pk)
    return plan


def test_the_list_fits_a_phone_and_a_running_backup_turns_into_its_result(
    crew: Any, backed_up: BackupPlan, web: Any, browser: Any
):
    running = BackupRun.objects.create(
        plan=backed_up,
        status=RunStatus.RUNNING,
        started_at=timezone.now(),
        progress_bytes=1_500_000,
        expected_bytes=4_000_000,
    )
    context, page = open_page(browser, web, crew.manager, "/backups/")
    try:
        page.wait_for_selector("text=Backup running")
        page.screenshot(path="/tmp/tocsin-backups-390.png", full_page=True)
        assert overflow(page) <= 0
        assert page.locator('[role="progressbar"]').get_attribute("aria-valuenow") == "38"
        BackupRun.objects.filter(pk=running.pk).update(
            status=RunStatus.SUCCEEDED,
            finished_at=timezone.now(),
            size_bytes=4_000_000,
            new_bytes=0,
            stored_bytes=0,
        )
        page.wait_for_selector("text=Succeeded", timeout=10_000)  # polled, no reload
        assert page.locator('[role="progressbar"]').count() == 0
    finally:
        context.close()


def test_the_plan_page_fits_a_phone_and_draws_its_charts(
    crew: Any, backed_up: BackupPlan, web: Any, browser: Any
):
    context, page = open_page(browser, web, crew.viewer, f"/backups/plans/{backed_up.pk}/")
    try:
        page.wait_for_selector("[data-chart='size'] canvas")
        page.screenshot(path="/tmp/tocsin-backup-plan-390.png", full_page=True)
        assert overflow(page) <= 0
        assert page.locator(".bk-chart canvas").count() == 4
        assert page.locator("text=tables and row counts match the backup").count() == 1
        assert page.locator("text=Back up now").count() == 0  # a viewer
    finally:
        context.close()


def test_a_database_page_fits_a_phone_and_draws_its_charts(
    transactional_db: None, crew: Any, plan: BackupPlan, web: Any, browser: Any
):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    database = MonitoredDatabase.objects.create(
        team=crew.team,
        service=plan.service,
        name="billing-pg",
        kind="postgresql",
        secrets={"dsn": "postgresql://postgres@127.0.0.1:5432/postgres"},
    )
    collection.collect_one(database)
    context, page = open_page(browser, web, crew.viewer, f"/databases/{database.pk}/")
    try:
        page.wait_for_selector("[data-chart='pg_connections_used_percent'] canvas")
        page.screenshot(path="/tmp/tocsin-database-390.png", full_page=True)
        assert overflow(page) <= 0
        assert page.locator("text=Answering").count() == 1
    finally:
        context.close()
