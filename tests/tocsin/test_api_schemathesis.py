"""Schemathesis over the whole API: every operation, every check, as a manager and as a viewer.

The schema is the one drf-spectacular serves; requests go to the Django app in-process (WSGI),
authenticated with a real API token, against a database holding one of everything, so that
detail endpoints meet real objects. Nothing may answer 5xx, and every answer (status code,
content type, headers, body) must be one the schema declares.

Bounded in time: a few derandomized examples per operation, no deadline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.test import APIClient
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation import GenerationMode

from monitoring.models import Service
from monitoring.pipeline import AlertInput, process
from tocsin import services

load_all_checks()
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()  # every request, the checks' own probes too, goes in-process

EXAMPLES = 3  # per operation and mode (valid data, invalid data)

# Every check schemathesis has ("--checks all"), except the ones named here, with the reason.
LEFT_OUT: dict[str, str] = {
    "positive_data_acceptance": (
        "schema-valid input that names objects (team, service, user, schedule ids or slugs) the "
        "caller cannot see, or breaks a domain rule (matcher syntax, time zones, members only), "
        "is rightly refused with a 400 naming the field; a schema cannot list which ids exist"
    ),
}
CHECKS_RUN = [check for check in CHECKS.get_all() if check.__name__ not in LEFT_OUT]


def _post(client: APIClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(url, body, format="json")
    assert response.status_code in (200, 201), (url, response.status_code, response.content)
    return response.json()


def seed(crew: Any, api: Any) -> dict[str, int]:
    """One of everything, written through the API as an administrator; the ids by path name."""
    admin = api(crew.admin)
    team = crew.team.pk
    now = timezone.now()
    later = now + timedelta(days=1)
    service_id = _post(admin, "/api/v1/services/", {"team": team, "name": "Checkout API"})["id"]
    process(
        Service.objects.get(pk=service_id),
        [AlertInput(labels={"alertname": "HighLatency"})],
        source="test",
    )
    ids: dict[str, int] = {
        "teams": team,
        "team_id": team,
        "services": service_id,
        "alerts": 0,
        "events": 0,
    }
    ids["integrations"] = _post(
        admin, "/api/v1/integrations/", {"service": service_id, "kind": "generic"}
    )["id"]
    ids["silences"] = _post(
        admin, "/api/v1/silences/", {"team": team, "matchers": "alertname=X", "duration": "1h"}
    )["id"]
    ids["inhibition-rules"] = _post(
        admin,
        "/api/v1/inhibition-rules/",
        {"team": team, "name": "db down", "source_matchers": "a=b", "target_matchers": "c=d"},
    )["id"]
    ids["maintenance-windows"] = _post(
        admin,
        "/api/v1/maintenance-windows/",
        {"service": service_id, "title": "Patch", "starts_at": now, "ends_at": later},
    )["id"]
    _post(
        admin,
        "/api/v1/metrics/samples/",
        {"team": team, "samples": [{"name": "cpu", "value": 50, "labels": {"host": "web-1"}}]},
    )
    ids["alert-rules"] = _post(
        admin,
        "/api/v1/alert-rules/",
        {"team": team, "service": service_id, "name": "hot", "metric": "cpu", "threshold": 90},
    )["id"]
    ids["slos"] = _post(
        admin,
        "/api/v1/slos/",
        {"service": service_id, "name": "Up", "sli_kind": "incidents", "objective": "99.9"},
    )["id"]
    ids["escalation-policies"] = _post(
        admin,
        "/api/v1/escalation-policies/",
        {"team": team, "name": "Default", "steps": [{"user_ids": [crew.manager.pk]}]},
    )["id"]
    schedule = _post(
        admin,
        "/api/v1/schedules/",
        {
            "team": team,
            "name": "Primary",
            "layers": [{"name": "Week", "participants": [crew.manager.pk, crew.responder.pk]}],
        },
    )
    ids["schedules"] = schedule["id"]
    ids["layer_id"] = schedule["layers"][0]["id"]
    ids["override_id"] = _post(
        admin,
        f"/api/v1/schedules/{schedule['id']}/overrides/",
        {"user": crew.manager.pk, "start": now + timedelta(hours=1), "end": later},
    )["id"]
    ids["swap-requests"] = _post(
        api(crew.manager),
        "/api/v1/swap-requests/",
        {"schedule": schedule["id"], "start": now + timedelta(hours=2), "end": later},
    )["id"]
    channel = _post(
        admin,
        "/api/v1/notification-channels/",
        {"team": team, "kind": "email", "name": "Ops", "config": {"to": ["ops@example.org"]}},
    )
    ids["notification-channels"] = channel["id"]
    for user in (crew.manager, crew.viewer):
        method = _post(
            api(user),
            "/api/v1/contact-methods/",
            {"kind": "email", "label": "Mail", "config": {"to": [user.email]}},
        )
        rule = _post(
            api(user),
            "/api/v1/notification-rules/",
            {"contact_method": method["id"], "delay_minutes": 0, "urgency": "any"},
        )
        ids[f"contact-methods:{user.pk}"] = method["id"]
        ids[f"notification-rules:{user.pk}"] = rule["id"]
    ids["deliveries"] = _post(admin, f"/api/v1/notification-channels/{channel['id']}/test/", {})[
        "id"
    ]
    incident = admin.get("/api/v1/incidents/").json()["results"][0]["id"]
    ids["incidents"] = ids["incident_id"] = incident
    _post(admin, f"/api/v1/incidents/{incident}/postmortem/", {})
    ids["action-items"] = _post(
        admin, "/api/v1/action-items/", {"incident": incident, "title": "Add an index"}
    )["id"]
    ids["response-targets"] = _post(
        admin, "/api/v1/response-targets/", {"team": team, "priority": "P1", "ack_minutes": 5}
    )["id"]
    ids["alerts"] = admin.get("/api/v1/alerts/").json()["results"][0]["id"]
    ids["events"] = admin.get("/api/v1/events/").json()["results"][0]["id"]
    ids["metrics"] = admin.get("/api/v1/metrics/series/").json()["results"][0]["id"]
    return ids


def real_ids(path: str, ids: dict[str, int], user: Any) -> dict[str, int]:
    """The path parameters of ``path`` naming seeded objects (the caller's own, where owned)."""
    resource = path.removeprefix("/api/v1/").split("/", 1)[0]
    found = {}
    for name in re.findall(r"\{([^}]+)\}", path):
        key = resource if name in ("id", "pk") else name
        found[name] = ids.get(f"{key}:{user.pk}", ids.get(key, 1))
    return found


@contextmanager
def requests_in_this_transaction() -> Iterator[None]:
    """As Django's test client does: the WSGI handler would otherwise close the test's database
    connection (and with it the transaction holding the seeded data) around every request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def operations() -> list[Any]:
    """Every operation of the schema; deletions last, so the other operations meet the objects."""
    found = [result.ok() for result in schema.get_all_operations()]
    return sorted(found, key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))


def check_operation(operation: Any, mode: GenerationMode, path_ids: dict, headers: dict) -> None:
    @given(case=operation.as_strategy(mode, path_parameters=path_ids))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure says enough
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS_RUN)

    run()


@pytest.mark.parametrize("role", ["manager", "viewer"])
def test_every_operation_conforms_to_the_schema(crew: Any, api: Any, role: str) -> None:
    ids = seed(crew, api)
    user = crew.by_role(role)
    _, raw = services.issue_token(user, "schemathesis")
    headers = {"Authorization": f"Bearer {raw}"}
    failures = []
    with requests_in_this_transaction():
        for operation in operations():
            path_ids = real_ids(operation.path, ids, user)
            for mode in GenerationMode:
                try:
                    check_operation(operation, mode, path_ids, headers)
                except (Exception, BaseExceptionGroup) as exc:  # report all, not the first
                    failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, f"{len(failures)} failing:\n\n" + "\n\n".join(failures)
