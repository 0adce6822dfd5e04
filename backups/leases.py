"""One run per plan at a time, through a lease that expires: no lock outlives a dead worker.

A run takes its plan's lease with a conditional UPDATE (free, or expired) and renews it from a
thread while it works. A worker that dies stops renewing; once the lease runs out the plan is
free again, and the reaper marks the dead run failed. A run that finds its lease gone (renewal
matched nothing) stops at its next progress report rather than race a successor.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from backups.models import BackupPlan


class LeaseLost(Exception):
    """Another run took the plan: this one must stop."""


class Lease:
    def __init__(self, plan_id: int, token: str) -> None:
        self.plan_id = plan_id
        self.token = token
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @staticmethod
    def seconds() -> int:
        return settings.TOCSIN_BACKUP_LEASE_SECONDS

    @classmethod
    def acquire(cls, plan_id: int) -> Lease | None:
        """The plan's lease, or None while another run holds it."""
        now = timezone.now()
        token = uuid.uuid4().hex
        taken = (
            BackupPlan.objects.filter(pk=plan_id)
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
            .update(lease_token=token, lease_expires_at=now + timedelta(seconds=cls.seconds()))
        )
        return cls(plan_id, token) if taken else None

    def renew(self) -> bool:
        expires = timezone.now() + timedelta(seconds=self.seconds())
        renewed = BackupPlan.objects.filter(pk=self.plan_id, lease_token=self.token).update(
            lease_expires_at=expires
        )
        if not renewed:
            self.lost.set()
        return bool(renewed)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(10)
        BackupPlan.objects.filter(pk=self.plan_id, lease_token=self.token).update(
            lease_token="", lease_expires_at=None
        )

    def keep_alive(self) -> None:
        """Renew a third of the lease before it runs out, from a thread, until released."""

        def renew_until_released() -> None:
            try:
                while not self._stop.wait(self.seconds() / 3):
                    if not self.renew():
                        return
            finally:
                close_old_connections()

        self._renewer = threading.Thread(
            target=renew_until_released, name=f"backup-lease-{self.plan_id}", daemon=True
        )
        self._renewer.start()

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost("another run took this plan's lease; this run stopped")
