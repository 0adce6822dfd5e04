"""A worker process killed (SIGKILL) with a check run in flight: the slot stays claimed until
its lease ends, is then run by another worker, and is recorded exactly once."""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest

from monitoring.models import Service
from probes.checks import scheduler, services
from probes.checks.choices import LEASE
from probes.checks.models import Result, ResultStatus, Slot
from tests.live import start, wait_for
from tests.probes.test_check_target import T0

WORKER = """
import sys, time
from datetime import datetime
import django
django.setup()
from probes.checks import scheduler
print("started", scheduler.run_due(datetime.fromisoformat(sys.argv[1])), flush=True)
time.sleep(120)  # the run hangs in flight until the test kills this process
"""


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_loses_no_slot_and_none_runs_twice(crew, http_server, tmp_path):
    service = Service.objects.create(team=crew.team, name="Shop")
    check = services.create_check(
        service=service,
        name="hangs",
        kind="http",
        config={"url": http_server.url("/slow/5")},
        timeout=4.0,
        now=T0,
    )
    slot = Slot.objects.get(probe=check)
    slot_time = slot.next_run_at

    worker = start(
        "probe-worker",
        ["-c", WORKER, slot_time.isoformat()],
        tmp_path,
        DJANGO_SETTINGS_MODULE="tocsin.settings",
    )
    try:
        wait_for(
            lambda: Slot.objects.filter(pk=slot.pk).exclude(claimed_by="").exists(),
            30,
            "the worker's claim",
            worker,
        )
    finally:
        worker.stop(signal.SIGKILL)

    assert not Result.objects.exists()  # killed mid-run: nothing recorded
    assert scheduler.run_batch(slot_time + timedelta(seconds=30)) == 0  # still leased
    assert scheduler.run_batch(slot_time + LEASE) == 1  # retaken after the lease

    ran = Result.objects.exclude(status=ResultStatus.UNKNOWN).get()
    assert ran.slot_at == slot_time
    assert "timed out" in ran.error
    assert scheduler.run_batch(slot_time + LEASE) == 0
