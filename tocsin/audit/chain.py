"""Sealing the event log into one hash chain per team (events without a team: the system chain).

Writers never touch the chain: the hot paths insert events with ``seq``, ``prev_hash`` and
``hash`` NULL, in as many processes and transactions as they like, with no lock per team. The
*sealer* (a scheduled task, one at a time) walks the events in id order after the last sealed
one and gives each its position in its team's chain and ``hash = HMAC(key, prev_hash, seq,
fields)``. It seals only events older than ``TOCSIN_AUDIT_SEAL_MARGIN``: on PostgreSQL ids are
handed out when a row is inserted but become visible when its transaction commits, so a young
event may still have an invisible neighbour with a lower id. The margin (longer than any
transaction that writes events) makes "everything below here has committed" true in practice,
on every backend, with no tracking of transaction ids; an event that still commits later is not
chained silently but reported by ``audit verify`` (an unsealed event inside the sealed range).

The chain's key comes from ``TOCSIN_AUDIT_KEY`` (or SECRET_KEY): someone who can write to the
database but cannot read the application's settings cannot re-hash a chain they changed. The
anchors (the heads of every chain, stored and written to the log) catch the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tocsin.db import bulk
from tocsin.models import AuditAnchor, AuditHead, Event

log = logging.getLogger(__name__)
anchor_log = logging.getLogger("tocsin.audit.anchor")

GENESIS = "0" * 64
SYSTEM_CHAIN = 0
# The fields a seal covers, as read from the database. Not ``actor_id``: deleting a user sets it
# to NULL (``actor_label`` keeps the name), which is history being kept, not tampering.
SEALED_FIELDS = (
    "id",
    "team_id",
    "created_at",
    "kind",
    "subject_type",
    "subject_id",
    "subject_label",
    "actor_label",
    "payload",
    "ip",
)
CHAIN_FIELDS = ("seq", "prev_hash", "hash")
BATCH = 2000
# Any number of workers run the schedule; one seals at a time (PostgreSQL advisory lock id).
LOCK_ID = 0x70C5_1A0D


@lru_cache(maxsize=4)
def _key(configured: str, secret: str) -> bytes:
    if configured:
        return configured.encode()
    return hashlib.sha256(b"tocsin.audit.chain:" + secret.encode()).digest()


def key() -> bytes:
    return _key(settings.TOCSIN_AUDIT_KEY, settings.SECRET_KEY)


def chain_of(team_id: int | None) -> int:
    return team_id or SYSTEM_CHAIN


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes a seal covers: the immutable fields, in a fixed order and format."""
    values = [
        row["id"],
        row["team_id"],
        _time(row["created_at"]),
        row["kind"],
        row["subject_type"],
        row["subject_id"],
        row["subject_label"],
        row["actor_label"],
        row["payload"],
        row["ip"],
    ]
    return json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def seal_hash(prev_hash: str, seq: int, row: dict[str, Any]) -> str:
    message = f"{prev_hash}\n{seq}\n".encode() + canonical(row)
    return hmac.new(key(), message, hashlib.sha256).hexdigest()


def margin() -> timedelta:
    return timedelta(seconds=settings.TOCSIN_AUDIT_SEAL_MARGIN)


def sealed_through(heads: dict[int, AuditHead] | None = None) -> int:
    """The id up to which every event is sealed: the last event any chain's head names."""
    if heads is None:
        heads = {h.chain: h for h in AuditHead.objects.all()}
    return max((h.event_id for h in heads.values()), default=0)


def _locked() -> bool:
    """Whether this transaction is the one sealer (SQLite serialises writers anyway)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_ID])
        return bool(cursor.fetchone()[0])


def seal(now: datetime | None = None, *, limit: int = 50 * BATCH) -> int:
    """Seal the committed events older than the margin, in id order; returns how many.

    Idempotent: a second run finds nothing new. Writes an anchor when one is due.
    """
    now = now or timezone.now()
    cutoff = now - margin()
    done = 0
    with transaction.atomic():
        if not _locked():
            return 0
        heads = {h.chain: h for h in AuditHead.objects.all()}
        through = sealed_through(heads)
        changed: set[int] = set()
        while done < limit:
            rows = list(
                Event.objects.filter(id__gt=through)
                .order_by("id")
                .values(*SEALED_FIELDS, "seq")[:BATCH]
            )
            sealed: list[Event] = []
            for row in rows:
                if row["created_at"] > cutoff:
                    break
                if row["seq"] is not None:
                    # Sealed beyond the heads: the heads were changed. Verify will say so.
                    log.error("audit: event %s is sealed past its chain's head", row["id"])
                    break
                chain = chain_of(row["team_id"])
                head = heads.get(chain)
                if head is None:
                    head = heads[chain] = AuditHead(chain=chain, seq=0, hash=GENESIS, event_id=0)
                seq = head.seq + 1
                digest = seal_hash(head.hash, seq, row)
                sealed.append(Event(id=row["id"], seq=seq, prev_hash=head.hash, hash=digest))
                head.seq, head.hash, head.event_id, head.updated_at = seq, digest, row["id"], now
                changed.add(chain)
            if sealed:
                bulk.update(sealed, list(CHAIN_FIELDS))
                through = sealed[-1].id
                done += len(sealed)
            if len(sealed) < BATCH:
                break
        if changed:
            fresh = [heads[c] for c in changed if heads[c].pk is None]
            known = [heads[c] for c in changed if heads[c].pk is not None]
            AuditHead.objects.bulk_create(fresh)
            bulk.update(known, ["seq", "hash", "event_id", "updated_at"])
        anchor_if_due(now, heads)
    return done


def heads_snapshot(heads: dict[int, AuditHead]) -> dict[str, list[Any]]:
    return {str(c): [h.seq, h.hash, h.event_id] for c, h in sorted(heads.items())}


def anchor_digest(sealed_through: int, heads: dict[str, list[Any]]) -> str:
    message = json.dumps([sealed_through, heads], sort_keys=True, separators=(",", ":"))
    return hmac.new(key(), message.encode(), hashlib.sha256).hexdigest()


def anchor_if_due(now: datetime, heads: dict[int, AuditHead] | None = None) -> AuditAnchor | None:
    """Write an anchor when the last is older than TOCSIN_AUDIT_ANCHOR_MINUTES and the chains
    grew since; call it inside the sealer's transaction."""
    if heads is None:
        heads = {h.chain: h for h in AuditHead.objects.all()}
    through = sealed_through(heads)
    last = AuditAnchor.objects.order_by("-id").first()
    if last is not None and (
        last.sealed_through >= through
        or now - last.created_at < timedelta(minutes=settings.TOCSIN_AUDIT_ANCHOR_MINUTES)
    ):
        return None
    if through == 0:
        return None
    return write_anchor(now, heads)


def write_anchor(now: datetime, heads: dict[int, AuditHead]) -> AuditAnchor:
    through = sealed_through(heads)
    snapshot = heads_snapshot(heads)
    anchor = AuditAnchor.objects.create(
        created_at=now,
        sealed_through=through,
        heads=snapshot,
        digest=anchor_digest(through, snapshot),
    )
    # One line, for the log shipping to keep outside the database: compare with `audit verify`.
    anchor_log.info(
        "audit anchor %s",
        json.dumps(
            {
                "anchor": anchor.pk,
                "at": _time(now),
                "sealed_through": through,
                "digest": anchor.digest,
                "chains": snapshot,
            },
            separators=(",", ":"),
        ),
    )
    return anchor
