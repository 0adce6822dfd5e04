"""Checking the audit chains: what ``manage.py audit verify`` and the scheduled check run.

One pass over the events in id order (keyset, a chunk at a time), keeping each chain's last
position and hash, finds:

- **modified**: the stored hash is not the HMAC of the event's fields (an UPDATE of the row);
- **deleted**: a chain skips positions, or ends before its head (AuditHead) or an anchor says;
- **inserted**: an unsealed event inside the sealed range, a position taken twice, an event that
  does not follow its predecessor, or one dated before events sealed earlier (a back-dated row
  that the sealer then chained: Tocsin writes events in id order give or take the seal margin);
- **anchor**: a stored anchor that the chains no longer reach, or whose own digest is wrong.

From an anchor already verified (``since``) it reads only what came after, trusting what that
anchor says; without, it reads everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from tocsin.audit.chain import (
    CHAIN_FIELDS,
    GENESIS,
    SEALED_FIELDS,
    anchor_digest,
    chain_of,
    margin,
    seal_hash,
    sealed_through,
)
from tocsin.models import AuditAnchor, AuditHead, Event

CHUNK = 2000
MODIFIED, DELETED, INSERTED, ANCHOR = "modified", "deleted", "inserted", "anchor"


@dataclass(frozen=True)
class Problem:
    kind: str
    chain: int
    event_id: int | None
    detail: str

    def __str__(self) -> str:
        where = f"event {self.event_id}" if self.event_id is not None else "chain end"
        return f"{self.kind}: chain {self.chain}, {where}: {self.detail}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    checked: int = 0
    pending: int = 0  # events not sealed yet (younger than the margin)
    chains: int = 0
    last_id: int = 0
    since: AuditAnchor | None = None
    anchors: list[AuditAnchor] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for problem in self.problems:
            counts[problem.kind] = counts.get(problem.kind, 0) + 1
        return counts


@dataclass
class _Chain:
    seq: int = 0
    hash: str = GENESIS


def _anchor_problems(anchor: AuditAnchor, state: dict[int, _Chain]) -> list[Problem]:
    problems = []
    if anchor_digest(anchor.sealed_through, anchor.heads) != anchor.digest:
        problems.append(Problem(ANCHOR, 0, None, f"anchor {anchor.pk} was changed"))
    for key, (seq, digest, event_id) in anchor.heads.items():
        chain = int(key)
        reached = state.get(chain, _Chain())
        if (reached.seq, reached.hash) != (seq, digest):
            problems.append(
                Problem(
                    ANCHOR,
                    chain,
                    event_id,
                    f"anchor {anchor.pk} says #{seq} {digest[:12]}…, the chain has "
                    f"#{reached.seq} {reached.hash[:12]}…",
                )
            )
    return problems


def verify(since: AuditAnchor | None = None, until: int | None = None) -> Report:
    """Recompute the chains (all, or after ``since``; up to event ``until`` or to their heads)
    and list what does not hold."""
    report = Report(since=since)
    heads = {h.chain: h for h in AuditHead.objects.all()}
    through = sealed_through(heads)
    state: dict[int, _Chain] = {}
    start = 0
    if since is not None:
        start = since.sealed_through
        state = {int(k): _Chain(seq, digest) for k, (seq, digest, _) in since.heads.items()}
    anchors = AuditAnchor.objects.filter(sealed_through__gt=start)
    if until is not None:
        anchors = anchors.filter(sealed_through__lte=until)
    anchors = list(anchors.order_by("sealed_through", "id"))
    if since is not None:
        report.problems += _anchor_problems(since, state)
    report.anchors = anchors
    pending_anchors = list(anchors)
    slack = margin()
    latest_time: datetime | None = None
    latest_id = 0
    cursor = start
    while True:
        events = Event.objects.filter(id__gt=cursor)
        if until is not None:
            events = events.filter(id__lte=until)
        rows = list(events.order_by("id").values(*SEALED_FIELDS, *CHAIN_FIELDS)[:CHUNK])
        if not rows:
            break
        for row in rows:
            while pending_anchors and pending_anchors[0].sealed_through < row["id"]:
                report.problems += _anchor_problems(pending_anchors.pop(0), state)
            _check(row, state, through, report)
            if latest_time is not None and row["created_at"] < latest_time - slack:
                report.problems.append(
                    Problem(
                        INSERTED,
                        chain_of(row["team_id"]),
                        row["id"],
                        f"dated {row['created_at']:%Y-%m-%d %H:%M:%S}, before event "
                        f"{latest_id} written earlier ({latest_time:%Y-%m-%d %H:%M:%S})",
                    )
                )
            elif latest_time is None or row["created_at"] > latest_time:
                latest_time, latest_id = row["created_at"], row["id"]
        cursor = rows[-1]["id"]
        report.last_id = cursor
    for anchor in pending_anchors:
        report.problems += _anchor_problems(anchor, state)
    for chain, head in heads.items() if until is None else ():
        reached = state.get(chain, _Chain())
        if reached.seq < head.seq:
            report.problems.append(
                Problem(
                    DELETED,
                    chain,
                    None,
                    f"the chain ends at #{reached.seq}, its head says #{head.seq} "
                    f"(event {head.event_id}): {head.seq - reached.seq} missing",
                )
            )
        elif (reached.seq, reached.hash) != (head.seq, head.hash):
            report.problems.append(
                Problem(INSERTED, chain, None, f"the chain goes past its head #{head.seq}")
            )
    report.chains = len(set(state) | set(heads))
    return report


def _check(row: dict[str, Any], state: dict[int, _Chain], through: int, report: Report) -> None:
    chain = chain_of(row["team_id"])
    event_id, seq = row["id"], row["seq"]
    if seq is None:
        if event_id <= through:
            report.problems.append(
                Problem(
                    INSERTED,
                    chain,
                    event_id,
                    "not sealed, but events after it are (inserted, or committed later "
                    "than TOCSIN_AUDIT_SEAL_MARGIN after it was written)",
                )
            )
        else:
            report.pending += 1
        return
    report.checked += 1
    current = state.setdefault(chain, _Chain())
    prev_hash = row["prev_hash"] or ""
    if row["hash"] != seal_hash(prev_hash, seq, row):
        report.problems.append(
            Problem(MODIFIED, chain, event_id, "its fields no longer match its hash")
        )
    expected = current.seq + 1
    if seq < expected:
        report.problems.append(
            Problem(
                INSERTED, chain, event_id, f"position #{seq} again (chain is at #{current.seq})"
            )
        )
        return
    if seq > expected:
        missing = seq - expected
        report.problems.append(
            Problem(
                DELETED,
                chain,
                event_id,
                f"{missing} event{'s' if missing > 1 else ''} missing before it "
                f"(#{expected}" + (f" to #{seq - 1})" if missing > 1 else ")"),
            )
        )
    elif prev_hash != current.hash:
        report.problems.append(
            Problem(INSERTED, chain, event_id, "does not follow the event before it in its chain")
        )
    current.seq, current.hash = seq, row["hash"] or ""


def last_verified_anchor() -> AuditAnchor | None:
    return AuditAnchor.objects.filter(~Q(verified_at=None)).order_by("-sealed_through").first()
