"""The OpenAPI schema and the docs pages: valid, warning-free, complete, and CDN-free."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.usefixtures("fresh_throttles")

ENDPOINTS = {
    "/api/v1/me/": {"get"},
    "/api/v1/teams/": {"get", "post"},
    "/api/v1/teams/{id}/": {"get", "patch"},
    "/api/v1/teams/{team_id}/members/": {"get", "post"},
    "/api/v1/teams/{team_id}/members/{id}/": {"get", "patch", "delete"},
    "/api/v1/teams/{team_id}/test-event/": {"post"},
    "/api/v1/events/": {"get"},
    "/api/v1/events/{id}/": {"get"},
    "/api/v1/tokens/": {"get", "post"},
    "/api/v1/tokens/{id}/": {"get", "delete"},
    # monitoring: catalog and alerts
    "/api/v1/services/": {"get", "post"},
    "/api/v1/services/{id}/": {"get", "patch", "delete"},
    "/api/v1/integrations/": {"get", "post"},
    "/api/v1/integrations/{id}/": {"get", "patch", "delete"},
    "/api/v1/integrations/{id}/rotate-key/": {"post"},
    "/api/v1/alerts/": {"get"},
    "/api/v1/alerts/{id}/": {"get"},
    # monitoring: suppression
    "/api/v1/silences/": {"get", "post"},
    "/api/v1/silences/{id}/": {"get", "delete"},
    "/api/v1/silences/{id}/expire/": {"post"},
    "/api/v1/inhibition-rules/": {"get", "post"},
    "/api/v1/inhibition-rules/{id}/": {"get", "patch", "delete"},
    "/api/v1/maintenance-windows/": {"get", "post"},
    "/api/v1/maintenance-windows/{id}/": {"get", "patch", "delete"},
    # monitoring: metrics and rules
    "/api/v1/metrics/samples/": {"post"},
    "/api/v1/metrics/series/": {"get"},
    "/api/v1/metrics/series/{id}/": {"get"},
    "/api/v1/metrics/series/{id}/samples/": {"get"},
    "/api/v1/alert-rules/": {"get", "post"},
    "/api/v1/alert-rules/{id}/": {"get", "patch", "delete"},
    "/api/v1/alert-rules/{id}/test/": {"post"},
    "/api/v1/alert-rules/preview/": {"post"},
    "/api/v1/slos/": {"get", "post"},
    "/api/v1/slos/{id}/": {"get", "patch", "delete"},
    "/api/v1/slos/{id}/budget/": {"get"},
    "/api/v1/slos/{id}/openslo/": {"get"},
    "/api/v1/slos/openslo/": {"get"},
    "/api/v1/slos/import/": {"post"},
    # incidents: incidents, policies, schedules, notifications
    "/api/v1/contact-methods/": {"get", "post"},
    "/api/v1/contact-methods/{id}/": {"delete", "get", "patch"},
    "/api/v1/contact-methods/{id}/test/": {"post"},
    "/api/v1/deliveries/": {"get"},
    "/api/v1/deliveries/{id}/": {"get"},
    "/api/v1/checks/": {"get", "post"},
    "/api/v1/checks/{id}/": {"delete", "get", "patch"},
    "/api/v1/checks/{id}/pause/": {"post"},
    "/api/v1/checks/{id}/resume/": {"post"},
    "/api/v1/checks/{id}/rollups/": {"get"},
    "/api/v1/checks/{id}/run-now/": {"post"},
    "/api/v1/check-results/": {"get"},
    "/api/v1/check-results/{id}/": {"get"},
    "/api/v1/check-rollups/": {"get"},
    "/api/v1/check-rollups/{id}/": {"get"},
    "/api/v1/escalation-policies/": {"get", "post"},
    "/api/v1/escalation-policies/{id}/": {"delete", "get", "patch"},
    "/api/v1/grouping-preview/": {"post"},
    "/api/v1/heartbeats/": {"get", "post"},
    "/api/v1/heartbeats/{id}/": {"delete", "get", "patch"},
    "/api/v1/heartbeats/{id}/pause/": {"post"},
    "/api/v1/heartbeats/{id}/resume/": {"post"},
    "/api/v1/heartbeats/{id}/snooze/": {"post"},
    "/api/v1/heartbeat-pings/": {"get"},
    "/api/v1/heartbeat-pings/{id}/": {"get"},
    "/api/v1/backup-plans/": {"get"},
    "/api/v1/backup-plans/{id}/": {"get"},
    "/api/v1/backup-plans/{id}/backup/": {"post"},
    "/api/v1/backup-plans/{id}/verify/": {"post"},
    "/api/v1/backup-plans/{id}/drill/": {"post"},
    "/api/v1/backup-runs/": {"get"},
    "/api/v1/backup-runs/{id}/": {"get"},
    "/api/v1/backup-runs/{id}/download/": {"get"},
    "/api/v1/incidents/": {"get"},
    "/api/v1/incidents/{id}/": {"get"},
    "/api/v1/incidents/{id}/acknowledge/": {"post"},
    "/api/v1/incidents/{id}/merge/": {"post"},
    "/api/v1/incidents/{id}/notes/": {"post"},
    "/api/v1/incidents/{id}/reassign/": {"post"},
    "/api/v1/incidents/{id}/resolve/": {"post"},
    "/api/v1/incidents/{id}/timeline/": {"get"},
    "/api/v1/incidents/{incident_id}/postmortem/": {"get", "post", "patch"},
    "/api/v1/incidents/{incident_id}/postmortem/markdown/": {"get"},
    "/api/v1/incidents/{incident_id}/postmortem/publish/": {"post"},
    "/api/v1/action-items/": {"get", "post"},
    "/api/v1/action-items/{id}/": {"delete", "get", "patch"},
    "/api/v1/notification-channels/": {"get", "post"},
    "/api/v1/notification-channels/{id}/": {"delete", "get", "patch"},
    "/api/v1/notification-channels/{id}/test/": {"post"},
    "/api/v1/notification-rules/": {"get", "post"},
    "/api/v1/notification-rules/{id}/": {"delete", "get", "patch"},
    "/api/v1/reports/incidents/": {"get"},
    "/api/v1/reports/sla/{team_id}/": {"get"},
    "/api/v1/response-targets/": {"get", "post"},
    "/api/v1/response-targets/{id}/": {"delete", "get", "patch"},
    "/api/v1/status-pages/": {"get", "post"},
    "/api/v1/status-pages/{id}/": {"delete", "get", "patch"},
    "/api/v1/status-component-groups/": {"get", "post"},
    "/api/v1/status-component-groups/{id}/": {"delete", "get", "patch"},
    "/api/v1/status-components/": {"get", "post"},
    "/api/v1/status-components/{id}/": {"delete", "get", "patch"},
    "/api/v1/status-updates/": {"get", "post"},
    "/api/v1/status-updates/{id}/": {"get"},
    "/api/v1/schedules/": {"get", "post"},
    "/api/v1/schedules/{id}/": {"delete", "get", "patch"},
    "/api/v1/schedules/{id}/layers/": {"post"},
    "/api/v1/schedules/{id}/layers/{layer_id}/": {"delete", "patch"},
    "/api/v1/schedules/{id}/oncall/": {"get"},
    "/api/v1/schedules/{id}/overrides/": {"get", "post"},
    "/api/v1/schedules/{id}/overrides/{override_id}/": {"delete"},
    "/api/v1/schedules/{id}/shifts/": {"get"},
    "/api/v1/swap-requests/": {"get", "post"},
    "/api/v1/swap-requests/{id}/": {"get"},
    "/api/v1/swap-requests/{id}/accept/": {"post"},
    "/api/v1/swap-requests/{id}/cancel/": {"post"},
    "/api/v1/swap-requests/{id}/decline/": {"post"},
}


def test_spectacular_validates_the_schema_without_warnings(db: None, tmp_path: Path) -> None:
    # The same check as `manage.py spectacular --validate --fail-on-warn` in CI: any view the
    # generator cannot understand (a missing annotation, an untyped field) fails here.
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    assert yaml.safe_load(out.read_text())["openapi"].startswith("3.")


def test_schema_lists_every_endpoint_and_only_those(schema: dict[str, Any]) -> None:
    paths = {
        path: {m for m in ops if m in {"get", "post", "put", "patch", "delete"}}
        for path, ops in schema["paths"].items()
    }

    assert paths == ENDPOINTS


def test_every_operation_documents_the_error_shape(schema: dict[str, Any]) -> None:
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"error"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "401" in responses, (method, path)
            assert "429" in responses, (method, path)  # every API view is throttled
            for status, response in responses.items():
                if status.startswith("4"):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (method, path, status)
            if "{" in path:
                assert "404" in responses, (method, path)
            if method in {"post", "patch", "delete"}:
                assert "403" in responses, (method, path)
            if method in {"post", "patch"}:
                assert "400" in responses, (method, path)


def test_schema_offers_bearer_tokens(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["apiToken"]

    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {"apiToken": []} in schema["paths"]["/api/v1/events/"]["get"]["security"]


def test_schema_documents_the_event_filters(schema: dict[str, Any]) -> None:
    params = {p["name"] for p in schema["paths"]["/api/v1/events/"]["get"]["parameters"]}

    assert params == {
        "team",
        "kind",
        "kind_prefix",
        "subject_type",
        "subject_id",
        "actor",
        "after",
        "since",
        "until",
        "cursor",
        "page_size",
    }


def test_schema_is_public(db: None) -> None:
    # It describes the code (which is open source), not anybody's data.
    assert Client().get("/api/v1/schema/").status_code == 200


def _asset_urls(html: str) -> list[str]:
    return re.findall(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", html)


@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_pages_load_nothing_from_other_hosts(db: None, page: str) -> None:
    client = Client()
    response = client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    assets = _asset_urls(html)
    assert assets, "expected the page to load its UI bundle"
    for url in assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        asset.close()
    assert not re.search(r"https?://(?!127\.0\.0\.1|localhost)[\w.-]+", _outside_bundles(html))


def _outside_bundles(html: str) -> str:
    """The page's own markup and inline script (where a CDN or tracker would be configured)."""
    return re.sub(r"<script\b[^>]*\bsrc=[^>]*></script>", "", html)


def test_swagger_ui_does_not_call_the_public_validator(db: None) -> None:
    # Swagger UI would otherwise send the schema URL to validator.swagger.io.
    html = Client().get("/api/v1/docs/").content.decode()

    assert '"validatorUrl": null' in html
