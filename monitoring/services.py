"""Service catalog operations: services and the integrations (ingest keys) that feed them.

The UI, the API and the admin all call these, so every change is validated the same way and
recorded in the event log in the same transaction. Ingest keys are stored hashed: the plaintext
is returned once, by ``create_integration`` and ``rotate_key``, and never again.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import slugify

from monitoring.ingest import key_cache
from monitoring.ingest import kinds as integration_kinds
from monitoring.ingest.kinds import prometheus
from monitoring.models import Alert, AlertStatus, Integration, IntegrationKind, Service
from tocsin.api.lookups import id_in_body
from tocsin.events import record
from tocsin.models import Team
from tocsin.permissions import Action, scope
from tocsin.services import ServiceError

MAX_TAGS = 20
MAX_TAG_LENGTH = 50
SERVICE_FIELDS = ("name", "description", "runbook_url", "tags")
INTEGRATION_FIELDS = ("name", "rate_limit_per_minute")
# Kinds people configure; INTERNAL integrations belong to Tocsin's own rules, probes and backups.
USER_KINDS = [IntegrationKind(kind) for kind in integration_kinds.user_creatable()]

_SERVICE_TAKEN = "this team already has a service with this name (or the same slug)"


# -- validation ------------------------------------------------------------------------------------
def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not slugify(name):
        raise ServiceError("the name needs at least one letter or digit", "name")
    if len(name) > 100:
        raise ServiceError("at most 100 characters", "name")
    return name


def _clean_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list | tuple):
        raise ServiceError("tags are a list of words", "tags")
    cleaned: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise ServiceError("tags are a list of words", "tags")
        tag = tag.strip().lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise ServiceError(f"a tag has at most {MAX_TAG_LENGTH} characters", "tags")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise ServiceError(f"at most {MAX_TAGS} tags", "tags")
    return cleaned


def _clean_url(url: str | None) -> str:
    url = (url or "").strip()
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise ServiceError("an http(s) URL", "runbook_url") from None
    return url


def _clean_service_changes(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - set(SERVICE_FIELDS)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])
    cleaners = {
        "name": _clean_name,
        "description": lambda v: (v or "").strip(),
        "runbook_url": _clean_url,
        "tags": _clean_tags,
    }
    return {key: cleaners[key](value) for key, value in changes.items()}


# -- services --------------------------------------------------------------------------------------
def is_system_team(team: Team) -> bool:
    """The built-in team that holds Tocsin's own metrics (``monitoring.metrics.system_team``)."""
    from monitoring.metrics.host import SYSTEM_TEAM_SLUG

    return team.slug == SYSTEM_TEAM_SLUG


def create_service(
    team: Team,
    name: str,
    *,
    actor: Any = None,
    slug: str = "",
    description: str = "",
    runbook_url: str = "",
    tags: Any = None,
    internal: bool = False,
) -> Service:
    """A new service of ``team``; never in the built-in "Tocsin (system)" team, which only
    Tocsin's own (``internal``) services live in."""
    if is_system_team(team) and not internal:
        raise ServiceError(
            "the “Tocsin (system)” team is built in: create services in your own teams", "team"
        )
    name = _clean_name(name)
    given_slug = (slug or "").strip()
    slug = given_slug or slugify(name)[:100]
    try:
        validate_slug(slug)
    except ValidationError:
        raise ServiceError("letters, digits, hyphens and underscores only", "slug") from None
    service = Service(
        team=team,
        name=name,
        slug=slug[:100],
        description=(description or "").strip(),
        runbook_url=_clean_url(runbook_url),
        tags=_clean_tags(tags),
    )
    if Service.objects.filter(team=team, name__iexact=name).exists():
        raise ServiceError(_SERVICE_TAKEN, "name", "duplicate")
    try:
        # The (team, slug) constraint is the race-free check; the query above is the kind one.
        with transaction.atomic():
            service.save()
            record(
                "service.created",
                team=team,
                subject=service,
                actor=actor,
                payload={"service_id": service.pk, "name": name, "slug": service.slug},
            )
    except IntegrityError:
        raise ServiceError(_SERVICE_TAKEN, "slug" if given_slug else "name", "duplicate") from None
    return service


def update_service(service: Service, *, actor: Any = None, **changes: Any) -> Service:
    """Rename, describe, re-tag. The slug stays, so links to the service page keep working."""
    cleaned = _clean_service_changes(changes)
    changed = {k: v for k, v in cleaned.items() if getattr(service, k) != v}
    if not changed:
        return service
    if (
        "name" in changed
        and Service.objects.filter(team_id=service.team_id, name__iexact=changed["name"])
        .exclude(pk=service.pk)
        .exists()
    ):
        raise ServiceError(_SERVICE_TAKEN, "name", "duplicate")
    before = {k: getattr(service, k) for k in changed}
    with transaction.atomic():
        for key, value in changed.items():
            setattr(service, key, value)
        service.save(update_fields=list(changed))
        record(
            "service.updated",
            team=service.team_id,
            subject=service,
            actor=actor,
            payload={
                "service_id": service.pk,
                "changes": {k: [before[k], changed[k]] for k in changed},
            },
        )
    return service


def delete_service(service: Service, *, actor: Any = None) -> None:
    """Only a service that never had alerts can go; otherwise their history would lose its home."""
    if service.alerts.exists():
        raise ServiceError(
            "a service with alerts cannot be deleted (they keep its history); rename it instead",
            None,
            "protected",
        )
    with transaction.atomic():
        record(
            "service.deleted",
            team=service.team_id,
            subject=service,
            actor=actor,
            payload={"service_id": service.pk, "name": service.name, "slug": service.slug},
        )
        service.delete()


# -- integrations ----------------------------------------------------------------------------------
def _clean_rate_limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ServiceError(
            "a whole number of requests per minute (0 = unlimited)", "rate_limit_per_minute"
        )
    return value


def _integration_payload(integration: Integration, **extra: Any) -> dict[str, Any]:
    return {
        "integration_id": integration.pk,
        "service_id": integration.service_id,
        "service": integration.service.name,
        "kind": integration.kind,
        "name": integration.name,
        "key_prefix": integration.key_prefix,  # never the key itself
        **extra,
    }


def create_integration(
    service: Service,
    kind: str,
    name: str = "",
    *,
    actor: Any = None,
    rate_limit_per_minute: int | None = None,
    internal: bool = False,
) -> tuple[Integration, str]:
    """A new door into ``service``; returns it with its plaintext key, which is shown only now."""
    if kind not in IntegrationKind.values:
        choices = ", ".join(k.value for k in USER_KINDS)
        raise ServiceError(f"unknown kind {kind!r}; choose one of {choices}", "kind")
    if kind == IntegrationKind.INTERNAL and not internal:
        raise ServiceError("internal integrations are created by Tocsin itself", "kind")
    name = (name or "").strip() or IntegrationKind(kind).label
    if len(name) > 100:
        raise ServiceError("at most 100 characters", "name")
    integration = Integration(service=service, kind=kind, name=name)
    if rate_limit_per_minute is not None:
        integration.rate_limit_per_minute = _clean_rate_limit(rate_limit_per_minute)
    key = Integration.new_key()
    integration.set_key(key)
    with transaction.atomic():
        integration.save()
        record(
            "integration.created",
            team=service.team_id,
            subject=integration,
            actor=actor,
            payload=_integration_payload(integration),
        )
    return integration, key


def update_integration(
    integration: Integration, *, actor: Any = None, **changes: Any
) -> Integration:
    unknown = set(changes) - set(INTEGRATION_FIELDS)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
        if not changes["name"]:
            raise ServiceError("give the integration a name", "name")
    if "rate_limit_per_minute" in changes:
        changes["rate_limit_per_minute"] = _clean_rate_limit(changes["rate_limit_per_minute"])
    changed = {k: v for k, v in changes.items() if getattr(integration, k) != v}
    if not changed:
        return integration
    before = {k: getattr(integration, k) for k in changed}
    with transaction.atomic():
        for key, value in changed.items():
            setattr(integration, key, value)
        integration.save(update_fields=list(changed))
        record(
            "integration.updated",
            team=integration.team_id,
            subject=integration,
            actor=actor,
            payload=_integration_payload(
                integration, changes={k: [before[k], changed[k]] for k in changed}
            ),
        )
    return integration


def rotate_key(integration: Integration, *, actor: Any = None) -> str:
    """A new key for the integration, returned once; the old key stops working at once."""
    if integration.revoked_at is not None:
        raise ServiceError("this integration is revoked; create a new one", None, "revoked")
    key = Integration.new_key()
    with transaction.atomic():
        # Locked, so two rotations at once cannot both report a key that works.
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if locked.revoked_at is not None:
            raise ServiceError("this integration is revoked; create a new one", None, "revoked")
        old_prefix = locked.key_prefix
        integration.set_key(key)
        integration.key_rotated_at = timezone.now()
        integration.save(update_fields=["key_prefix", "key_hash", "key_rotated_at"])
        record(
            "integration.key_rotated",
            team=integration.team_id,
            subject=integration,
            actor=actor,
            payload=_integration_payload(integration, old_key_prefix=old_prefix),
        )
    return key


def revoke_integration(integration: Integration, *, actor: Any = None) -> None:
    """The key stops working; the integration stays listed (its alerts still point at it)."""
    if integration.revoked_at is not None:
        return
    with transaction.atomic():
        updated = Integration.objects.filter(pk=integration.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not updated:  # revoked a moment ago by someone else
            integration.refresh_from_db(fields=["revoked_at"])
            return
        key_cache.forget_keys()  # update() sends no post_save: the key stops working at once
        integration.refresh_from_db(fields=["revoked_at"])
        record(
            "integration.revoked",
            team=integration.team_id,
            subject=integration,
            actor=actor,
            payload=_integration_payload(integration),
        )


# -- internal services -----------------------------------------------------------------------------
def ensure_internal_service(
    team_id: int,
    *,
    slug: str,
    name: str,
    integration_name: str,
    description: str = "",
) -> Service:
    """The team's service ``slug`` for alerts Tocsin raises itself (notifier breaker, SLA
    breaches, …), with an INTERNAL integration; created on first use through ``create_service``
    and ``create_integration``, so ``service.created``/``integration.created`` are recorded.

    Idempotent and safe when called concurrently: the (team, slug) constraint decides which
    caller creates the service, and a lock on the service row which one adds the integration.
    """
    service = Service.objects.filter(team_id=team_id, slug=slug).first()
    if service is None:
        service = _create_internal_service(team_id, slug, name, description)
    with transaction.atomic():
        # Serialises callers that found the service without an integration.
        locked = Service.objects.select_for_update().get(pk=service.pk)
        if not locked.integrations.filter(
            kind=IntegrationKind.INTERNAL, revoked_at__isnull=True
        ).exists():
            create_integration(locked, IntegrationKind.INTERNAL, integration_name, internal=True)
    return service


def _create_internal_service(team_id: int, slug: str, name: str, description: str) -> Service:
    team = Team.objects.get(pk=team_id)
    # A team may already call one of its own services ``name``: then the slug tells them apart.
    for candidate in (name, f"{name} ({slug})"):
        try:
            return create_service(
                team, candidate, slug=slug, description=description, internal=True
            )
        except ServiceError:
            found = Service.objects.filter(team_id=team_id, slug=slug).first()
            if found is not None:  # another caller created it a moment ago
                return found
    raise ServiceError(f"cannot create the internal service {slug!r}", "slug", "duplicate")


# -- catalog queries -------------------------------------------------------------------------------
def firing_count() -> Coalesce:
    """Annotation: how many alerts of the service fire now (a subquery, no join fan-out)."""
    firing = (
        Alert.objects.filter(service=OuterRef("pk"), status=AlertStatus.FIRING)
        .order_by()
        .values("service")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(firing, output_field=IntegerField()), Value(0))


def integration_count() -> Coalesce:
    """Annotation: how many integrations of the service are not revoked."""
    usable = (
        Integration.objects.filter(service=OuterRef("pk"), revoked_at__isnull=True)
        .order_by()
        .values("service")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(usable, output_field=IntegerField()), Value(0))


# -- where senders send (each kind declares its URL; see monitoring.ingest.kinds) -----------------
KEY_PLACEHOLDER = integration_kinds.KEY_PLACEHOLDER
base_url = integration_kinds.base_url
ingest_url = integration_kinds.ingest_url


def prometheus_target(key: str | None = None) -> dict[str, str]:
    """What Prometheus' ``alerting.alertmanagers`` entry needs to reach this server."""
    return prometheus.target(key or KEY_PLACEHOLDER)


def service_team_in_body(request: Any) -> Team | None:
    """The team of the service a write names, as ``tocsin.api.lookups.team_in_body`` does for
    teams: the APIs of services' configuration (silences, maintenance, checks, heartbeats)
    return it from ``permission_team`` so that a member whose role is too low gets 403 before
    the input is read; a service the caller cannot see is left to validation (400)."""
    pk = id_in_body(request, "service")
    if pk is None:
        return None
    visible = scope(Service.objects.select_related("team"), request.user, Action.VIEW)
    service = visible.filter(pk=pk).first()
    return service.team if service else None
