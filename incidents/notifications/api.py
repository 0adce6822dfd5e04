"""REST endpoints for notification channels (managers), contact methods and notification rules
(each user's own), and deliveries (read-only, team-scoped).

Channel and contact-method configs are write-only: they hold secrets (URLs with tokens, keys)
and are never returned; ``config_keys`` says which keys are set.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from incidents.models import (
    ChannelKind,
    ContactMethod,
    Delivery,
    NotificationChannel,
    NotificationRule,
)
from incidents.notifications import channels
from incidents.notifications import outbox as notify
from tocsin.api.lookups import not_found
from tocsin.api.permissions import TeamRole
from tocsin.api.serializers import StrictInputMixin
from tocsin.api.views import ApiMixin
from tocsin.models import Team
from tocsin.permissions import Action, scope, teams_for
from tocsin.services import ServiceError

router = SimpleRouter()


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


class ChannelViewSet(
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """A team's outbound channels. Viewers see them (without config); managers configure."""

    serializer_class = ChannelSerializer
    permission_classes = [IsAuthenticated, TeamRole]
    required_actions = {
        "create": Action.MANAGE,
        "partial_update": Action.MANAGE,
        "destroy": Action.MANAGE,
        "test": Action.MANAGE,
    }

    def get_queryset(self) -> QuerySet[NotificationChannel]:
        if getattr(self, "swagger_fake_view", False):
            return NotificationChannel.objects.none()
        qs = scope(NotificationChannel.objects.all(), self.request.user, Action.VIEW)
        team = self.request.query_params.get("team", "")
        if team.isdigit():
            qs = qs.filter(team_id=int(team))
        return qs.order_by("team_id", "name", "id")

    def permission_team(self) -> Team | None:
        if self.action != "create":
            return None
        raw = self.request.data.get("team") if hasattr(self.request.data, "get") else None
        if isinstance(raw, bool) or not str(raw or "").isdigit():
            return None
        return teams_for(self.request.user, Action.VIEW).filter(pk=int(raw)).first()

    def get_object(self) -> NotificationChannel:
        obj = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if obj is None:
            raise not_found("notification channel")
        self.check_object_permissions(self.request, obj)
        return obj

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        self.check_object_permissions(self.request, serializer.validated_data["team"])
        try:
            serializer.save()
        except IntegrityError:
            raise ServiceError(
                "the team already has a channel with this name", "name", "duplicate"
            ) from None

    @extend_schema(request=None, responses=DeliverySerializer, summary="Send a test message now")
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: int) -> Response:
        delivery = notify.send_test(channel=self.get_object(), actor=request.user)
        return Response(DeliverySerializer(delivery).data)


# A person is paged through these; PagerDuty is a channel for a whole team, not a person.
CONTACT_METHOD_KINDS = [c for c in ChannelKind.choices if c[0] != "pagerduty"]


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


class RuleSerializer(StrictInputMixin, serializers.ModelSerializer):
    class Meta:
        model = NotificationRule
        fields = ["id", "contact_method", "delay_minutes", "urgency", "created_at"]
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
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Objects that belong to the calling user alone (nobody else sees them, not even admins)."""

    model: Any = None
    what = "object"

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.model.objects.filter(user=self.request.user).order_by("id")

    def get_object(self) -> Any:
        obj = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if obj is None:
            raise not_found(self.what)
        return obj

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.save(user=self.request.user)


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
        return Response(DeliverySerializer(delivery).data)


class RuleViewSet(_OwnViewSet):
    serializer_class = RuleSerializer
    model = NotificationRule
    what = "notification rule"


class DeliveryViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    """Deliveries of the teams you can view; ``?incident=`` for one incident's."""

    serializer_class = DeliverySerializer

    def get_queryset(self) -> QuerySet[Delivery]:
        if getattr(self, "swagger_fake_view", False):
            return Delivery.objects.none()
        qs = scope(Delivery.objects.all(), self.request.user, Action.VIEW)
        params = self.request.query_params
        for name in ("incident", "channel", "team"):
            value = params.get(name, "")
            if value:
                if not value.isdigit():
                    raise serializers.ValidationError({name: ["must be an id"]})
                qs = qs.filter(**{f"{name}_id": int(value)})
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        return qs.select_related("channel", "contact_method", "recipient").order_by("-id")


router.register("notification-channels", ChannelViewSet, basename="api-notification-channel")
router.register("contact-methods", ContactMethodViewSet, basename="api-contact-method")
router.register("notification-rules", RuleViewSet, basename="api-notification-rule")
router.register("deliveries", DeliveryViewSet, basename="api-delivery")
