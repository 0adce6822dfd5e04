"""REST endpoints for notification channels (managers), contact methods and notification rules
(each user's own), and deliveries (read-only, team-scoped).

Channel and contact-method configs are write-only: they hold secrets (URLs with tokens, keys)
and are never returned; ``config_keys`` says which keys are set.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from incidents.models import (
    ContactMethod,
    Delivery,
    DeliveryStatus,
    NotificationChannel,
    NotificationRule,
)
from incidents.notifications import channels, services
from incidents.notifications import outbox as notify
from tocsin import permissions
from tocsin.api.filters import IdFilter, StrictFilterSet
from tocsin.api.lookups import team_in_body
from tocsin.api.serializers import StrictInputMixin
from tocsin.api.viewsets import MANAGER_WRITES, OwnedViewSet, TeamScopedViewSet
from tocsin.models import Role, Team
from tocsin.permissions import Action, teams_for
from tocsin.services import ServiceError

router = SimpleRouter()


class ChannelFilter(StrictFilterSet):
    team = IdFilter(field_name="team")

    class Meta:
        model = NotificationChannel
        fields: list[str] = []


class DeliveryFilter(StrictFilterSet):
    incident = IdFilter(field_name="incident")
    channel = IdFilter(field_name="channel")
    team = IdFilter(field_name="team")
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)

    class Meta:
        model = Delivery
        fields: list[str] = []


class _ConfigMixin:
    """Validate ``config`` with the kind's serializer from the channel registry."""

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        instance = getattr(self, "instance", None)
        kind = data.get("kind") or (instance.kind if instance else None)
        if "config" in data or instance is None:
            try:
                data["config"] = channels.validate_config(kind, data.get("config", {}))
            except serializers.ValidationError as exc:
                detail = exc.detail
                if isinstance(detail, dict) and "kind" in detail:
                    raise
                raise serializers.ValidationError({"config": detail}) from None
        return data


class ChannelSerializer(StrictInputMixin, _ConfigMixin, serializers.ModelSerializer):
    config = serializers.JSONField(write_only=True)
    config_keys = serializers.SerializerMethodField()
    breaker_state = serializers.CharField(read_only=True)

    class Meta:
        model = NotificationChannel
        fields = [
            "id",
            "team",
            "kind",
            "name",
            "config",
            "config_keys",
            "enabled",
            "rate_limit_per_minute",
            "consecutive_failures",
            "open_until",
            "breaker_state",
            "created_at",
        ]
        read_only_fields = ["consecutive_failures", "open_until", "created_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["team"].queryset = teams_for(request.user, Action.VIEW)
        if self.instance is not None and not isinstance(self.instance, list | QuerySet):
            self.fields["team"].read_only = True
            self.fields["kind"].read_only = True

    def get_config_keys(self, obj: NotificationChannel) -> list[str]:
        return sorted(obj.config or {})


class DeliverySerializer(serializers.ModelSerializer):
    destination = serializers.CharField(source="destination_label", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "team",
            "incident",
            "channel",
            "contact_method",
            "recipient",
            "kind",
            "destination",
            "event_kind",
            "subject",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "response_code",
            "response_excerpt",
            "sent_at",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Delivery) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None and not may_see_delivery_details(request.user, instance.team_id):
            # What a destination answered is a read-back into whatever it is: managers only.
            data["last_error"] = GENERIC_FAILURE if data["last_error"] else ""
            data["response_code"] = None
            data["response_excerpt"] = ""
        return data


GENERIC_FAILURE = "failed — ask a manager to check the delivery log"


def may_see_delivery_details(user: Any, team_id: int | None) -> bool:
    """A destination's answer and error texts: for the team's managers (and admins) only."""
    if permissions.is_admin(user):
        return True
    return team_id is not None and permissions.roles_of(user).get(team_id) == Role.MANAGER


class ChannelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TeamScopedViewSet,
):
    """A team's outbound channels. Viewers see them (without config); managers configure."""

    parser_classes = [JSONParser]  # configs are nested objects: JSON bodies only

    model = NotificationChannel
    what = "notification channel"
    serializer_class = ChannelSerializer
    filterset_class = ChannelFilter
    required_actions = {**MANAGER_WRITES, "test": Action.MANAGE}

    def shape(self, queryset: QuerySet[NotificationChannel]) -> QuerySet[NotificationChannel]:
        return queryset.order_by("team_id", "name", "id")

    def permission_team(self) -> Team | None:
        return team_in_body(self.request) if self.action == "create" else None

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        self.check_object_permissions(self.request, serializer.validated_data["team"])
        serializer.instance = services.save(
            NotificationChannel(**serializer.validated_data), actor=self.request.user
        )

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        services.save(serializer.instance, actor=self.request.user, **serializer.validated_data)

    def perform_destroy(self, instance: NotificationChannel) -> None:
        services.delete(instance, actor=self.request.user)

    @extend_schema(request=None, responses=DeliverySerializer, summary="Send a test message now")
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: int) -> Response:
        delivery = notify.send_test(channel=self.get_object(), actor=request.user)
        return Response(DeliverySerializer(delivery, context={"request": request}).data)


# A person is paged through these; PagerDuty is a channel for a whole team, not a person.
CONTACT_METHOD_KINDS = channels.choices(personal_only=True)


class ContactMethodSerializer(StrictInputMixin, _ConfigMixin, serializers.ModelSerializer):
    config = serializers.JSONField(write_only=True)
    config_keys = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=CONTACT_METHOD_KINDS)

    class Meta:
        model = ContactMethod
        fields = ["id", "kind", "label", "config", "config_keys", "verified", "created_at"]
        read_only_fields = ["verified", "created_at"]

    def get_config_keys(self, obj: ContactMethod) -> list[str]:
        return sorted(obj.config or {})

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        instance = getattr(self, "instance", None)
        kind = data.get("kind") or (instance.kind if instance else None)
        request = self.context.get("request")
        user = request.user if request is not None else None
        if ("kind" in data or "config" in data) and not may_use_kind(user, kind):
            allowed = ", ".join(sorted(VIEWER_CONTACT_KINDS))
            raise serializers.ValidationError(
                {"kind": [f"a viewer's contact methods can be {allowed} only"]}
            )
        return super().validate(data)


# What someone who only views (no responder or manager role anywhere) may be reached by: an
# arbitrary URL is a way to make Tocsin call into a network, and viewers are not paged.
VIEWER_CONTACT_KINDS = frozenset({"email", "slack", "teams"})


def may_use_kind(user: Any, kind: str | None) -> bool:
    """Whether ``user`` may have a personal contact method of ``kind``."""
    if kind in VIEWER_CONTACT_KINDS or user is None:
        return True
    if permissions.is_admin(user) or getattr(user, "is_staff", False):
        return True
    return any(role != Role.VIEWER for role in permissions.roles_of(user).values())


class RuleSerializer(StrictInputMixin, serializers.ModelSerializer):
    class Meta:
        model = NotificationRule
        fields = [
            "id",
            "contact_method",
            "delay_minutes",
            "urgency",
            "notify_on_resolve",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:
            self.fields["contact_method"].queryset = ContactMethod.objects.filter(user=request.user)

    def validate_delay_minutes(self, value: int) -> int:
        if value > 24 * 60:
            raise serializers.ValidationError("at most 1440 minutes (a day)")
        return value


class _OwnViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OwnedViewSet,
):
    """Objects that belong to the calling user alone (nobody else sees them, not even admins)."""

    # JSON only: a form body that is no object was read as "no changes" and answered 200.
    parser_classes = [JSONParser]

    def shape(self, queryset: QuerySet) -> QuerySet:
        return queryset.order_by("id")

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        obj = self.model(user=self.request.user, **serializer.validated_data)
        serializer.instance = services.save(obj, actor=self.request.user)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        services.save(serializer.instance, actor=self.request.user, **serializer.validated_data)

    def perform_destroy(self, instance: Any) -> None:
        services.delete(instance, actor=self.request.user)


class ContactMethodViewSet(_OwnViewSet):
    serializer_class = ContactMethodSerializer
    model = ContactMethod
    what = "contact method"

    @extend_schema(request=None, responses=DeliverySerializer, summary="Send yourself a test")
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: int) -> Response:
        try:
            delivery = notify.send_test(contact_method=self.get_object(), actor=request.user)
        except channels.ConfigError as exc:
            raise ServiceError(str(exc)) from None
        return Response(DeliverySerializer(delivery, context={"request": request}).data)


class RuleViewSet(_OwnViewSet):
    serializer_class = RuleSerializer
    model = NotificationRule
    what = "notification rule"


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Deliveries of the teams you can view; ``?incident=`` for one incident's."""

    model = Delivery
    what = "delivery"
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter

    def shape(self, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        return queryset.select_related("channel", "contact_method", "recipient").order_by("-id")


router.register("notification-channels", ChannelViewSet, basename="api-notification-channel")
router.register("contact-methods", ContactMethodViewSet, basename="api-contact-method")
router.register("notification-rules", RuleViewSet, basename="api-notification-rule")
router.register("deliveries", DeliveryViewSet, basename="api-delivery")
