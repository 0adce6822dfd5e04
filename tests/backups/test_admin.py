"""The backups admin: team-scoped, secrets write-only, actions through request_run, a restore
behind a typed confirmation, the retention dry-run on the plan's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from backups import runs
from backups.models import BackupPlan, BackupRun, BackupStorage, BackupTarget, RunKind, RunStatus
from tocsin.models import Event

pytestmark = pytest.mark.django_db

SECRET_DSN = "postgresql://app:s3cr3t-pa55@db.internal:5432/billing"
SECRET_KEY = "AKIA-very-secret-key-value"


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_target_dsn_is_written_once_and_never_shown_back(crew):
    manager = client_for(crew.manager)
    response = manager.post(
        reverse("admin:backups_backuptarget_add"),
        {
            "team": crew.team.pk,
            "name": "billing",
            "kind": "postgresql",
            "path": "",
            "dsn": SECRET_DSN,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    target = BackupTarget.objects.get(name="billing")
    assert target.secrets == {"dsn": SECRET_DSN}
    page = manager.get(reverse("admin:backups_backuptarget_change", args=[target.pk]))
    html = page.content.decode()
    assert "s3cr3t-pa55" not in html and "db.internal" in html  # where, without the password
    event = Event.objects.get(kind="backup_target.created")
    assert "s3cr3t" not in str(event.payload) and event.payload["secrets_set"] == ["dsn"]
    # Saved again with the field left empty: the stored DSN stays.
    response = manager.post(
        reverse("admin:backups_backuptarget_change", args=[target.pk]),
        {"team": crew.team.pk, "name": "billing", "kind": "postgresql", "path": "", "dsn": ""},
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.secrets == {"dsn": SECRET_DSN}


def test_a_bad_dsn_is_a_form_error_and_saves_nothing(crew):
    response = client_for(crew.manager).post(
        reverse("admin:backups_backuptarget_add"),
        {"team": crew.team.pk, "name": "x", "kind": "mysql", "path": "", "dsn": "ftp://nope"},
    )
    assert response.status_code == 200
    assert "mysql://user:password@host:port/database" in response.content.decode()
    assert not BackupTarget.objects.exists()


def test_an_s3_secret_key_is_write_only_and_the_repository_is_created_on_save(crew, s3_bucket):
    endpoint, bucket = s3_bucket
    manager = client_for(crew.manager)
    data = {
        "team": crew.team.pk,
        "name": "s3",
        "kind": "s3",
        "encrypted": "",
        "path": "",
        "bucket": bucket,
        "prefix": "tocsin",
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "access_key": "minio",
        "secret_key": SECRET_KEY,
    }
    assert manager.post(reverse("admin:backups_backupstorage_add"), data).status_code == 302
    storage = BackupStorage.objects.get(name="s3")
    assert storage.credentials == {"access_key": "minio", "secret_key": SECRET_KEY}
    assert storage.engine().exists("config")  # the repository exists from the start
    html = manager.get(reverse("admin:backups_backupstorage_change", args=[storage.pk])).content
    assert SECRET_KEY.encode() not in html and b"minio" in html


def test_a_storage_that_cannot_be_reached_is_refused_on_save(crew):
    data = {
        "team": crew.team.pk,
        "name": "nowhere",
        "kind": "s3",
        "encrypted": "",
        "path": "",
        "bucket": "backups",
        "prefix": "",
        "endpoint_url": "http://127.0.0.1:1",
        "region": "us-east-1",
        "access_key": "x",
        "secret_key": "y",
    }
    response = client_for(crew.manager).post(reverse("admin:backups_backupstorage_add"), data)
    assert response.status_code == 200
    assert "This storage cannot be used" in response.content.decode()
    assert not BackupStorage.objects.exists()


def test_encryption_without_a_key_is_refused_with_a_reason(crew, settings, tmp_path):
    settings.TOCSIN_BACKUP_KEYS = []
    data = {
        "team": crew.team.pk,
        "name": "enc",
        "kind": "local",
        "encrypted": "on",
        "path": str(tmp_path),
        "bucket": "",
        "prefix": "",
        "endpoint_url": "",
        "region": "us-east-1",
        "access_key": "",
        "secret_key": "",
    }
    response = client_for(crew.admin).post(reverse("admin:backups_backupstorage_add"), data)
    assert response.status_code == 200 and "TOCSIN_BACKUP_KEYS" in response.content.decode()
    assert not BackupStorage.objects.exists()


def test_other_teams_do_not_see_a_plan(crew, plan: BackupPlan):
    outsider = client_for(crew.outsider)
    url = reverse("admin:backups_backupplan_change", args=[plan.pk])
    assert outsider.get(url).status_code in (302, 403, 404)
    listing = outsider.get(reverse("admin:backups_backupplan_changelist"))
    assert plan.name.encode() not in listing.content
    viewer = client_for(crew.viewer)
    assert viewer.get(url).status_code in (302, 403, 404)


def test_back_up_now_queues_a_run_and_a_busy_plan_says_so(crew, plan: BackupPlan):
    manager = client_for(crew.manager)
    url = reverse("admin:backups_backupplan_changelist")
    data = {"action": "back_up_now", "_selected_action": [plan.pk]}
    response = manager.post(url, data, follow=True)
    assert "Backup of “Nightly” queued." in response.content.decode()
    assert plan.runs.get().status == RunStatus.QUEUED
    response = manager.post(url, data, follow=True)
    assert "one run per plan at a time" in response.content.decode()
    assert plan.runs.count() == 1


def test_the_plan_page_previews_retention(crew, plan: BackupPlan):
    BackupPlan.objects.filter(pk=plan.pk).update(keep_last=1, keep_daily=0, keep_weekly=0)
    plan.refresh_from_db()
    for _ in range(2):
        run = runs.request_run(plan)
        runs.execute(run.pk)
    html = (
        client_for(crew.manager)
        .get(reverse("admin:backups_backupplan_change", args=[plan.pk]))
        .content.decode()
    )
    assert ("last snapshot" in html and "forget after the next run" in html) or "keep" in html


def test_a_restore_needs_the_plan_name_typed(crew, plan: BackupPlan):
    backup = runs.request_run(plan)
    runs.execute(backup.pk)
    manager = client_for(crew.manager)
    url = reverse("admin:backups_backuprun_changelist")
    ask = manager.post(url, {"action": "restore", "_selected_action": [backup.pk]})
    assert ask.status_code == 200 and "Type the plan" in ask.content.decode()
    wrong = manager.post(
        url,
        {
            "action": "restore",
            "_selected_action": [backup.pk],
            "destination": plan.target_id,
            "confirm": "nightly",
        },
    )
    assert "Type “Nightly” exactly." in wrong.content.decode()
    assert not plan.runs.filter(kind=RunKind.RESTORE).exists()
    manager.post(
        url,
        {
            "action": "restore",
            "_selected_action": [backup.pk],
            "destination": plan.target_id,
            "confirm": "Nightly",
        },
    )
    restore = plan.runs.get(kind=RunKind.RESTORE)
    assert restore.source == backup and restore.restore_into == plan.target
    assert restore.requested_by == crew.manager
    assert runs.execute(restore.pk) == RunStatus.SUCCEEDED
    assert BackupRun.objects.get(pk=restore.pk).rto_seconds is not None


def test_a_viewer_cannot_restore(crew, plan: BackupPlan):
    backup = runs.request_run(plan)
    runs.execute(backup.pk)
    viewer = client_for(crew.viewer)
    viewer.post(
        reverse("admin:backups_backuprun_changelist"),
        {
            "action": "restore",
            "_selected_action": [backup.pk],
            "destination": plan.target_id,
            "confirm": "Nightly",
        },
    )
    assert not plan.runs.filter(kind=RunKind.RESTORE).exists()


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ("backuptarget", {"name": "etc", "kind": "directory", "path": "/etc", "dsn": ""}),
        ("backuptarget", {"name": "self", "kind": "tocsin", "path": "", "dsn": ""}),
        (
            "backupstorage",
            {
                "name": "disk",
                "kind": "local",
                "encrypted": "",
                "path": "/var/tmp/tocsin-backups",
                "bucket": "",
                "prefix": "",
                "endpoint_url": "",
                "region": "us-east-1",
                "access_key": "",
                "secret_key": "",
            },
        ),
    ],
)
def test_only_administrators_point_tocsin_at_its_own_machine(crew, model, data, tmp_path):
    """A folder, a SQLite file, Tocsin's own database or a local storage path read or write
    files on Tocsin's machine: a team manager would reach what is not the team's."""
    url = reverse(f"admin:backups_{model}_add")
    refused = client_for(crew.manager).post(url, {"team": crew.team.pk, **data})
    assert refused.status_code == 200
    assert "Only an administrator may point Tocsin at files" in refused.content.decode()
    if "path" in data and data["kind"] == "local":
        data = {**data, "path": str(tmp_path / "repository")}
    allowed = client_for(crew.admin).post(url, {"team": crew.team.pk, **data})
    assert allowed.status_code == 302, allowed.content.decode()[:1500]


def test_an_s3_storage_without_keys_is_for_administrators(crew):
    data = {
        "team": crew.team.pk,
        "name": "ambient",
        "kind": "s3",
        "encrypted": "",
        "path": "",
        "bucket": "backups",
        "prefix": "",
        "endpoint_url": "",
        "region": "us-east-1",
        "access_key": "",
        "secret_key": "",
    }
    response = client_for(crew.manager).post(reverse("admin:backups_backupstorage_add"), data)
    assert response.status_code == 200 and "own cloud credentials" in response.content.decode()
    assert not BackupStorage.objects.exists()
