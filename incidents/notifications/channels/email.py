"""Email over SMTP with Django's EmailMessage and the EMAIL_* settings.

A channel mails a fixed list (``{"to": [...]}``); a contact method mails one person; a user
without notification rules gets mail at their account address.
"""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from rest_framework import serializers

from incidents.notifications.channels import Message, Sender, SendResult, register


class EmailConfig(serializers.Serializer):
    to = serializers.ListField(
        child=serializers.EmailField(), min_length=1, max_length=50, help_text="Recipients."
    )


@register
class EmailSender(Sender):
    kind = "email"
    label = "Email"
    menu_order = 10
    config_serializer = EmailConfig

    def recipients(self, message: Message) -> list[str]:
        to = list(self.config.get("to") or [])
        if not to and message.recipient_email:
            to = [message.recipient_email]
        return to

    def secrets(self) -> list[str]:
        return [settings.EMAIL_HOST_PASSWORD] if settings.EMAIL_HOST_PASSWORD else []

    def send(self, message: Message) -> SendResult:
        to = self.recipients(message)
        if not to:
            return SendResult(ok=False, error="no recipient address", retryable=False)
        email = EmailMessage(
            subject=message.subject.replace("\n", " ")[:250],
            body=message.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=to,
            headers={"X-Tocsin-Delivery": message.dedup_key} if message.dedup_key else None,
            connection=get_connection(timeout=getattr(settings, "EMAIL_TIMEOUT", 10)),
        )
        try:
            sent = email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            return SendResult(ok=False, error=f"recipients refused: {exc}", retryable=False)
        except (smtplib.SMTPException, OSError) as exc:
            code = getattr(exc, "smtp_code", None)
            return SendResult(ok=False, code=code, error=f"{type(exc).__name__}: {exc}")
        return SendResult(ok=bool(sent), excerpt=f"accepted for {len(to)} recipient(s)")
