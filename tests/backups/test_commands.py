"""manage.py backup and manage.py restore — including Tocsin's own database, lost and brought
back from the repository alone, as docs/backups.md tells an operator to do."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from backups.models import BackupPlan, BackupRun, RunKind, RunStatus
from tests.live import ROOT, process_env
from tests.services import require_service

pytestmark = pytest.mark.django_db


def run_command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_backup_run_prints_progress_and_the_figures(plan: BackupPlan):
    output = run_command("backup", "run", plan.name)
    assert "done in" in output and "stored (snapshot" in output
    run = plan.runs.get()
    assert run.status == RunStatus.SUCCEEDED


def test_backup_verify_all_reads_every_chunk(plan: BackupPlan):
    run_command("backup", "run", str(plan.pk))
    output = run_command("backup", "verify", str(plan.pk), "--all")
    verify = plan.runs.get(kind=RunKind.VERIFY)
    assert verify.manifest["read_all"] and verify.manifest["chunks_skipped"] == 0
    assert f"{verify.manifest['chunks_checked']} chunks read and checked" in output


def test_an_unknown_plan_and_a_busy_plan_are_clear_errors(plan: BackupPlan):
    with pytest.raises(CommandError, match="no backup plan 'nope'"):
        run_command("backup", "run", "nope")
    BackupRun.objects.create(plan=plan)  # one waits already
    with pytest.raises(CommandError, match="one run per plan"):
        run_command("backup", "run", plan.name)


def test_restore_a_run_needs_yes_and_then_brings_the_data_back(plan: BackupPlan, sqlite_source):
    run_command("backup", "run", plan.name)
    backup = plan.runs.get()
    with sqlite3.connect(sqlite_source) as connection:
        connection.execute("DELETE FROM items WHERE id > 10")
    connection.close()
    with pytest.raises(CommandError, match="add --yes"):
        run_command("restore", "--run", str(backup.pk))
    output = run_command("restore", "--run", str(backup.pk), "--yes")
    assert "restored in" in output
    with sqlite3.connect(sqlite_source) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone()[0] == 4000
    connection.close()


class ScratchSQLite:
    def __init__(self, folder: Path) -> None:
        self.path = folder / "tocsin.sqlite3"
        self.url = f"sqlite:///{self.path}"

    def lose(self) -> None:
        self.path.unlink()  # the disk holding it is gone

    def drop(self) -> None:
        pass


class ScratchPostgreSQL:
    ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"

    def __init__(self, folder: Path) -> None:
        require_service("PostgreSQL", "127.0.0.1", 5432)
        self.name = f"tocsin_self_{os.getpid()}_{folder.name[-6:].replace('-', '_')}"
        self.url = f"postgres://postgres@127.0.0.1:5432/{self.name}"
        self.drop()
        self._admin(f"CREATE DATABASE {self.name}")

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.ADMIN, autocommit=True) as connection:
            connection.execute(statement)

    def lose(self) -> None:
        # The server was rebuilt: an empty database of the same name is all there is.
        self.drop()
        self._admin(f"CREATE DATABASE {self.name}")

    def drop(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


@pytest.mark.parametrize("scratch_kind", [ScratchSQLite, ScratchPostgreSQL])
def test_tocsin_own_database_lost_and_restored_from_the_repository_alone(
    tmp_path: Path, scratch_kind
):
    """Separate processes on a scratch database: back Tocsin up (encrypted), lose the
    database, list the repository and restore it with the documented commands."""
    scratch = scratch_kind(tmp_path)
    try:
        restore_own_database(tmp_path, scratch)
    finally:
        scratch.drop()


def restore_own_database(tmp_path: Path, scratch) -> None:
    repository = tmp_path / "repository"
    env = process_env(DATABASE_URL=scratch.url, TOCSIN_BACKUP_KEYS="first-key-of-this-install")

    def manage(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    manage("migrate", "--no-input", "-v", "0")
    manage(
        "shell",
        "-c",
        "from tocsin.models import Team; from monitoring.models import Service;"
        "from backups.models import *; t = Team.objects.create(name='Ops');"
        "s = Service.objects.create(team=t, name='Tocsin', slug='tocsin');"
        "tg = BackupTarget.objects.create(team=t, name='self', kind=TargetKind.TOCSIN);"
        f"st = BackupStorage.objects.create(team=t, name='disk', path={str(repository)!r});"
        "BackupPlan.objects.create(service=s, name='Self', target=tg, storage=st)",
    )
    assert "done in" in manage("backup", "run", "Self").stdout
    scratch.lose()

    listed = manage("restore", "--from", str(repository), "--list").stdout
    snapshot_id = listed.split()[0]
    assert "sqlite" in listed or "postgresql" in listed
    refused = manage(
        "restore",
        "--from",
        str(repository),
        "--snapshot",
        snapshot_id,
        "--own-database",
        check=False,
    )
    assert refused.returncode != 0 and "Stop Tocsin" in refused.stderr
    manage(
        "restore", "--from", str(repository), "--snapshot", snapshot_id, "--own-database", "--yes"
    )
    counted = manage(
        "shell",
        "-c",
        "from tocsin.models import Team; print(Team.objects.filter(name='Ops').count())",
    )
    assert counted.stdout.strip().splitlines()[-1] == "1"
    wrong_key = subprocess.run(
        [sys.executable, "manage.py", "restore", "--from", str(repository), "--list"],
        cwd=ROOT,
        env={**env, "TOCSIN_BACKUP_KEYS": "not-the-key"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong_key.returncode != 0 and "none of the configured backup keys" in wrong_key.stderr


def test_a_restore_reports_its_progress(plan: BackupPlan, monkeypatch):
    run_command("backup", "run", plan.name)
    backup = plan.runs.get()
    monkeypatch.setattr("backups.runs.PROGRESS_EVERY", 0.0)  # every chunk, for the test
    output = run_command("restore", "--run", str(backup.pk), "--yes")
    restore = plan.runs.get(kind=RunKind.RESTORE)
    assert restore.expected_bytes == backup.size_bytes
    assert restore.progress_bytes == backup.size_bytes
    assert "100 %" in output or "99 %" in output
