"""Core models: teams and roles, API tokens, the append-only event log, worker heartbeats."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.text import slugify


class Timestamped(models.Model):
    """When a row was created and last changed; the service that changes it sets ``updated_at``.

    Abstract: configuration models (probes, SLOs, status pages, backup plans, ...) inherit the
    columns instead of declaring them again.
    """

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True


class Authored(Timestamped):
    """A ``Timestamped`` row that also remembers who created it (kept if that account goes)."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        abstract = True


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    RESPONDER = "responder", "Responder"
    MANAGER = "manager", "Manager"


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Members must sign in with a second factor (tocsin.two_factor.policy).
    require_two_factor = models.BooleanField(
        default=False, help_text="Members must enrol a two-factor device before using Tocsin."
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:100]
        super().save(*args, **kwargs)

    @property
    def team(self) -> Team:
        """A team is scoped to itself, so the permission layer treats it like any team object."""
        return self


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


TOKEN_PREFIX = "tcs_"


def hash_token(raw: str) -> str:
    """Tokens carry 256 bits of randomness, so a fast hash is safe and keeps lookups O(1)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A per-user API credential. The secret is shown once at creation; only its hash is kept."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters of the token, so a user can tell their tokens apart in lists.
    prefix = models.CharField(max_length=16, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    # How stale last_used_at may get before a request writes it again (keeps reads write-free).
    LAST_USED_RESOLUTION = timedelta(minutes=1)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user: Any, name: str, expires_at: Any = None) -> tuple[ApiToken, str]:
        """Create a token and return it with its one-time plaintext."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            prefix=raw[: len(TOKEN_PREFIX) + 6],
            token_hash=hash_token(raw),
            expires_at=expires_at,
        )
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        token = (
            cls.objects.usable()
            .select_related("user")
            .filter(token_hash=hash_token(raw), user__is_active=True)
            .first()
        )
        if token is None:
            return None
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > cls.LAST_USED_RESOLUTION:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


class EventLogIsAppendOnly(Exception):
    """Raised when code tries to change or delete a recorded event."""


class EventQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise EventLogIsAppendOnly("events cannot be changed once recorded")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise EventLogIsAppendOnly("events cannot be deleted")

    def visible_to(self, user: Any) -> EventQuerySet:
        from tocsin.permissions import Action, teams_for

        if user.is_active and user.is_superuser:
            return self
        return self.filter(team__in=teams_for(user, Action.VIEW))

    def newest_id_for(self, user: Any) -> int:
        """The last event ``user`` may see (0 if none): where a live page resumes from."""
        return self.visible_to(user).order_by("-id").values_list("id", flat=True).first() or 0


class Event(models.Model):
    """One fact in Tocsin's history: what happened, to what, by whom, in which team.

    Incident timelines, the audit trail and the live pages all read this table; nothing keeps a
    second history. Write it with ``tocsin.events.record`` inside the transaction that makes the
    change, so the change and its event commit or roll back together.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Indexed by event_team_id, which begins with it; two events are written per new alert.
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
    )
    kind = models.CharField(max_length=64)
    subject_type = models.CharField(max_length=32, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    subject_label = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Who did it when there is no user (an integration, a worker, the scheduler), and the
    # actor's name kept as it was, so the history still reads right after a user is deleted.
    actor_label = models.CharField(max_length=150, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    # The client address of the request that caused the event (tocsin.security.addresses), set
    # by ``record`` from the request's context (tocsin.audit.context); NULL outside requests.
    ip = models.CharField(max_length=45, null=True, blank=True, editable=False)
    # The audit chain (tocsin.audit): set once by the sealer, shortly after the event commits,
    # never on the hot path (writers insert NULLs). ``seq`` is the event's position in its
    # team's chain (team NULL: the system chain), ``hash`` = HMAC-SHA256(prev_hash, fields).
    seq = models.BigIntegerField(null=True, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)
    hash = models.CharField(max_length=64, null=True, blank=True, editable=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The live relay and API: "events of these teams after id N".
            models.Index(fields=["team", "id"], name="event_team_id"),
            # Timelines: "events about this incident/alert in order".
            models.Index(fields=["subject_type", "subject_id", "id"], name="event_subject"),
            models.Index(fields=["kind", "id"], name="event_kind"),
            # Dashboards: "how many events did this team have in the last 24 hours".
            models.Index(fields=["team", "created_at"], name="event_team_created"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.subject_label}".strip()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise EventLogIsAppendOnly("events cannot be changed once recorded")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise EventLogIsAppendOnly("events cannot be deleted")


class AuditHead(models.Model):
    """The sealed end of one audit chain: where the sealer continues and what ``audit verify``
    expects to reach. ``chain`` is the team id (0: the system chain, events without a team)."""

    chain = models.BigIntegerField(unique=True)
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    event_id = models.BigIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"chain {self.chain} #{self.seq}"


class AuditAnchor(models.Model):
    """A periodic copy of every chain's head (also written to the log, where shipping keeps it
    out of the database's reach): a rewritten chain no longer matches its anchors."""

    created_at = models.DateTimeField(default=timezone.now)
    # Every event with an id up to here was sealed when the anchor was written.
    sealed_through = models.BigIntegerField()
    # {"<chain>": [seq, hash, event_id]} for every chain.
    heads = models.JSONField(default=dict)
    digest = models.CharField(max_length=64)
    # Set by the scheduled check once the chains up to here verified: it continues from here.
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"anchor #{self.pk} through event {self.sealed_through}"


class WorkerHeartbeat(models.Model):
    """Written by a task that the worker cluster runs on a schedule: proof that tasks execute."""

    worker = models.CharField(max_length=200, unique=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.worker


class SingleSignOnIdentity(models.Model):
    """The account an OpenID provider's subject (``iss`` + ``sub``) signs in to.

    Bound at the subject's first sign-in — to the account with the provider's verified e-mail
    address, or to the account created for it — and from then on the only way that subject is
    matched (tocsin.oidc): an address changed at the provider, or a second identity there with
    the same address, cannot sign in to an account already bound to someone else.
    """

    # Indexed by sso_identity_one_per_user, which begins with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sso_identities",
        db_index=False,
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_subject"),
            models.UniqueConstraint(fields=["user", "issuer"], name="sso_identity_one_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
