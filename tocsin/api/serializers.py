"""Serializers: the API's input validation and JSON shapes.

Validation here is about *form* (types, lengths, known choices, which inputs go together);
domain rules (a team keeps a manager, names are unique, expiries lie ahead) live in
``tocsin.services`` and reach the client as ServiceErrors through ``tocsin.api.errors``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils.text import slugify
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tocsin.api.lookups import MAX_ID
from tocsin.live.render import event_as_dict
from tocsin.models import ApiToken, Event, Membership, Role, Team
from tocsin.permissions import roles_of
from tocsin.services import ServiceError, user_by_username

ROLE_CHOICES_TEXT = ", ".join(Role.values)


def role_field(**kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=Role.choices,
        error_messages={"invalid_choice": f'unknown role "{{input}}"; use {ROLE_CHOICES_TEXT}'},
        **kwargs,
    )


class StrictInputMixin:
    """Refuse input keys the serializer does not accept.

    DRF drops unknown and read-only keys silently, so ``PATCH {"slug": "x"}`` would answer 200
    and change nothing; a client deserves to hear that its change was not made.
    """

    # Sent by the browsable API's HTML forms alongside the real input.
    ignored_keys = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            errors = {}
            for key in data:
                if key in self.ignored_keys:
                    continue
                field = self.fields.get(key)  # type: ignore[attr-defined]
                if field is None:
                    errors[key] = ["unknown field"]
                elif field.read_only:
                    errors[key] = ["read-only; it cannot be set"]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]


class IdField(serializers.IntegerField):
    """An object's id in a request body: a whole number from 1 to what a bigint column holds.

    A larger number names no object, and some lookups (``pk__in``, foreign keys) would crash on
    it; here it is a 400 on the field instead.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


# --- Teams --------------------------------------------------------------------------------------


class TeamSerializer(StrictInputMixin, serializers.ModelSerializer):
    """A team; administrators create them, managers rename and describe them."""

    role = serializers.SerializerMethodField(
        help_text="Your role in the team; null when you only see it as an administrator."
    )

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "description", "created_at", "role"]
        read_only_fields = ["id", "slug", "created_at"]
        # Uniqueness is the service's rule (and a 409), not a serializer validator's 400.
        extra_kwargs = {"name": {"validators": []}}

    def validate_name(self, name: str) -> str:
        if not slugify(name):
            # The slug names the team in page URLs, so it must not come out empty.
            raise serializers.ValidationError("needs at least one letter or digit")
        return name

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices, allow_null=True))
    def get_role(self, team: Team) -> str | None:
        request = self.context.get("request")
        return roles_of(request.user).get(team.pk) if request else None


class TeamRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name", "slug"]


# --- Members ------------------------------------------------------------------------------------


class MemberUserSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField(help_text="The user's full name, if set.")

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "name"]

    def get_name(self, user: Any) -> str:
        return user.get_full_name()


class MembershipSerializer(serializers.ModelSerializer):
    user = MemberUserSerializer(read_only=True)
    team = serializers.IntegerField(source="team_id", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "team", "user", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateSerializer(StrictInputMixin, serializers.Serializer):
    """Add someone by ``username`` or by ``user_id`` (exactly one)."""

    username = serializers.CharField(required=False, max_length=150)
    user_id = IdField(required=False)
    role = role_field(default=Role.VIEWER)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        given = [key for key in ("username", "user_id") if key in data]
        if len(given) != 1:
            message = "give either username or user_id (exactly one)"
            raise serializers.ValidationError({"username": [message], "user_id": [message]})
        if "username" in data:
            try:
                data["user"] = user_by_username(data["username"])
            except ServiceError as exc:
                raise serializers.ValidationError({"username": [exc.message]}) from None
        else:
            data["user"] = get_user_model().objects.filter(pk=data["user_id"]).first()
            if data["user"] is None:
                raise serializers.ValidationError({"user_id": ["no user with this id"]})
        data["user_field"] = given[0]
        return data


class MembershipUpdateSerializer(StrictInputMixin, serializers.Serializer):
    """The only thing about a membership that changes is its role."""

    role = role_field()


# --- Events -------------------------------------------------------------------------------------


class EventTeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()


class EventSubjectSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="Model name of what the event is about, or empty.")
    id = serializers.CharField()
    label = serializers.CharField(help_text="How the subject read when the event happened.")


class EventActorSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null for workers, integrations…")
    label = serializers.CharField(help_text="Username, or the name of a non-user actor.")


class EventSerializer(serializers.Serializer):
    """One event, exactly as the live WebSocket sends it.

    The representation *is* ``tocsin.live.render.event_as_dict``, so the API and the live
    stream cannot drift apart; the declared fields only describe that shape for the schema,
    and a test checks that both agree.
    """

    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    team = EventTeamSerializer(allow_null=True)
    kind = serializers.CharField()
    subject = EventSubjectSerializer()
    actor = EventActorSerializer()
    payload = serializers.JSONField()

    def to_representation(self, instance: Event) -> dict[str, Any]:
        return event_as_dict(instance)


# --- Tokens -------------------------------------------------------------------------------------


class ApiTokenSerializer(StrictInputMixin, serializers.ModelSerializer):
    """A token as listed: never the secret (it is not stored), only what tells tokens apart."""

    active = serializers.BooleanField(
        source="is_active", read_only=True, help_text="Neither revoked nor expired."
    )

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "active",
        ]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class NewApiTokenSerializer(ApiTokenSerializer):
    """The answer to creating a token: the only time its secret is ever shown."""

    token = serializers.SerializerMethodField(
        help_text="The secret. Shown once: store it now, it cannot be read again."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]

    def get_token(self, token: ApiToken) -> str:
        return self.context["raw_token"]


# --- Me -----------------------------------------------------------------------------------------


class MyTeamSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="team.id")
    name = serializers.CharField(source="team.name")
    slug = serializers.SlugField(source="team.slug")
    role = role_field()


class CurrentTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class MeSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    is_superuser = serializers.BooleanField(read_only=True)
    teams = serializers.SerializerMethodField()
    token = serializers.SerializerMethodField(
        help_text="The API token this request used; null for a browser session."
    )

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "name", "email", "is_superuser", "teams", "token"]

    def get_name(self, user: Any) -> str:
        return user.get_full_name()

    @extend_schema_field(MyTeamSerializer(many=True))
    def get_teams(self, user: Any) -> list[dict[str, Any]]:
        memberships = Membership.objects.filter(user=user).select_related("team")
        return MyTeamSerializer(memberships.order_by("team__name"), many=True).data

    @extend_schema_field(CurrentTokenSerializer(allow_null=True))
    def get_token(self, user: Any) -> dict[str, Any] | None:
        auth = self.context["request"].auth
        return CurrentTokenSerializer(auth).data if isinstance(auth, ApiToken) else None


class NoInputSerializer(StrictInputMixin, serializers.Serializer):
    """For actions that take no input: a body with keys is a client mistake, so say so."""


class TestEventAcceptedSerializer(serializers.Serializer):
    task_id = serializers.CharField(help_text="The django-q2 task that will write the event.")
    team = serializers.IntegerField()
    kind = serializers.CharField(help_text="Always `team.test`.")
