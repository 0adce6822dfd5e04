"""Validation the silence, inhibition and maintenance services share."""

from __future__ import annotations

from typing import Any

from monitoring.matchers import Matcher, MatcherError, to_matchers
from tocsin.services import ServiceError


def clean_matchers(data: Any, field_name: str, *, required: bool = True) -> list[Matcher]:
    try:
        matchers = to_matchers(data if data is not None else [])
    except MatcherError as exc:
        raise ServiceError(str(exc), field_name) from None
    if required and not matchers:
        raise ServiceError('give at least one matcher, e.g. alertname="X"', field_name)
    return matchers


def check_service_team(service: Any, team: Any) -> None:
    if service is not None and service.team_id != getattr(team, "pk", team):
        raise ServiceError("this service belongs to another team", "service")


def team_id_of(team: Any) -> int:
    return team if isinstance(team, int) else team.pk
