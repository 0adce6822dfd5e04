"""Inhibition rules: a firing source alert mutes matching target alerts (Alertmanager's
``inhibit_rules``). Create, change and delete them here; each records an event and re-evaluates
the team's firing alerts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from monitoring.matchers import NAME_RE, to_stored
from monitoring.models import InhibitionRule
from monitoring.suppression.common import check_service_team, clean_matchers, team_id_of
from monitoring.suppression.evaluate import reevaluate_team
from tocsin.events import record
from tocsin.services import ServiceError

RULE_FIELDS = ("name", "source_matchers", "target_matchers", "equal", "enabled", "service")


def clean_equal_labels(equal: Any) -> list[str]:
    if equal is None:
        return []
    if isinstance(equal, str):
        equal = [part.strip() for part in equal.split(",") if part.strip()]
    if not isinstance(equal, list | tuple) or not all(isinstance(n, str) for n in equal):
        raise ServiceError("a list of label names", "equal")
    for name in equal:
        if not NAME_RE.fullmatch(name):
            raise ServiceError(f"{name!r} is not a label name", "equal")
    return list(dict.fromkeys(equal))


def _rule_values(data: dict[str, Any], team: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in data:
        name = (data["name"] or "").strip()
        if not name:
            raise ServiceError("a rule needs a name", "name")
        out["name"] = name[:200]
    for key in ("source_matchers", "target_matchers"):
        if key in data:
            out[key] = to_stored(clean_matchers(data[key], key))
    if "equal" in data:
        out["equal"] = clean_equal_labels(data["equal"])
    if "enabled" in data:
        out["enabled"] = bool(data["enabled"])
    if "service" in data:
        check_service_team(data["service"], team)
        out["service"] = data["service"]
    return out


def _rule_payload(rule: Any) -> dict[str, Any]:
    return {
        "rule_id": rule.pk,
        "name": rule.name,
        "source_matchers": rule.source_matchers,
        "target_matchers": rule.target_matchers,
        "equal": rule.equal,
        "enabled": rule.enabled,
        "service_id": rule.service_id,
    }


def create_inhibition_rule(
    *,
    team: Any,
    name: str,
    source_matchers: Any,
    target_matchers: Any,
    equal: Iterable[str] | str | None = None,
    enabled: bool = True,
    service: Any = None,
    actor: Any = None,
) -> Any:
    values = _rule_values(
        {
            "name": name,
            "source_matchers": source_matchers,
            "target_matchers": target_matchers,
            "equal": list(equal) if equal is not None and not isinstance(equal, str) else equal,
            "enabled": enabled,
            "service": service,
        },
        team,
    )
    with transaction.atomic():
        rule = InhibitionRule.objects.create(
            team_id=team_id_of(team),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            **values,
        )
        record(
            "inhibition.created",
            team=rule.team_id,
            subject=rule,
            actor=actor,
            payload=_rule_payload(rule),
        )
    reevaluate_team(rule.team_id, actor=actor)
    return rule


def update_inhibition_rule(rule: Any, *, actor: Any = None, **changes: Any) -> Any:
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])
    values = _rule_values(changes, rule.team_id)
    before = _rule_payload(rule)
    changed = {
        k: v for k, v in values.items() if getattr(rule, "service" if k == "service" else k) != v
    }
    if not changed:
        return rule
    with transaction.atomic():
        for key, value in changed.items():
            setattr(rule, key, value)
        for cached in ("source_list", "target_list"):
            rule.__dict__.pop(cached, None)
        rule.updated_at = timezone.now()
        rule.save()
        after = _rule_payload(rule)
        record(
            "inhibition.updated",
            team=rule.team_id,
            subject=rule,
            actor=actor,
            payload={
                **after,
                "changes": {k: [before[k], after[k]] for k in after if before[k] != after[k]},
            },
        )
    reevaluate_team(rule.team_id, actor=actor)
    return rule


def delete_inhibition_rule(rule: Any, *, actor: Any = None) -> None:
    team_id = rule.team_id
    with transaction.atomic():
        record(
            "inhibition.deleted",
            team=team_id,
            subject=rule,
            actor=actor,
            payload=_rule_payload(rule),
        )
        rule.delete()
    reevaluate_team(team_id, actor=actor)
