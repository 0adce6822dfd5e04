"""Admin for notification channels (send test, breaker state) and deliveries (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework.exceptions import ValidationError

from incidents.models import Delivery, NotificationChannel
from incidents.notifications import channels, services
from incidents.notifications import outbox as notify
from tocsin.admin_mixins import ReadOnlyAdmin, TeamScopedAdmin
from tocsin.permissions import Action


@admin.register(NotificationChannel)
class NotificationChannelAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ("name", "team", "kind", "enabled", "breaker_state", "consecutive_failures")
    list_filter = ("kind", "enabled")
    readonly_fields = ("consecutive_failures", "open_until", "created_at")
    actions = ["send_test", "reset_breaker"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["team", "kind", "name", "enabled", "rate_limit_per_minute", *self.readonly_fields]
        # The config is a secret: settable on creation, never shown back (use the API to change).
        return fields if obj is not None else [*fields[:3], "config", *fields[3:]]

    def clean_admin_form(self, request: HttpRequest, form: Any, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        if "config" in form.fields and form.cleaned_data.get("kind"):
            try:
                channels.validate_config(form.cleaned_data["kind"], form.cleaned_data.get("config"))
            except ValidationError as exc:
                form.add_error("config", str(exc.detail))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.ensure_manages(request, obj)
        services.save(obj, actor=request.user)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.ensure_manages(request, obj)
        services.delete(obj, actor=request.user)

    @admin.action(description="Send a test message")
    def send_test(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            self.ensure_manages(request, channel)
            delivery = notify.send_test(channel=channel, actor=request.user)
            level = messages.SUCCESS if delivery.status == "sent" else messages.WARNING
            self.message_user(request, f"{channel}: {delivery.status} {delivery.last_error}", level)

    @admin.action(description="Close the circuit breaker")
    def reset_breaker(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            self.ensure_manages(request, channel)
        queryset.update(consecutive_failures=0, open_until=None)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    view_action = Action.VIEW
    list_display = ("id", "team", "kind", "subject", "status", "attempts", "next_attempt_at")
    list_filter = ("status", "kind")
    search_fields = ("subject", "dedup_key")
    list_select_related = ("team",)
    actions = ["retry_now"]
    # A page's action links act as its recipient: the body shows placeholders, and the sealed
    # links themselves are for the sender alone (incidents.notifications.render.seal).
    exclude = ("sealed_links",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Delivery._meta.fields if f.name not in self.exclude]

    @admin.action(description="Retry now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        for delivery in queryset:
            self.ensure_manages(request, delivery)
        count = notify.retry_now(queryset)
        self.message_user(request, f"{count} delivery(ies) queued to retry now")
