"""Email over SMTP with Django's EmailMessage and the EMAIL_* settings.

A channel mails a fixed list (``{"to": [...]}``); a contact method mails one person; a user
without notification rules gets mail at their account address.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address
from django.core.mail.utils import DNS_NAME
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
        headers = {}
        if message.dedup_key:
            headers["X-Tocsin-Delivery"] = message.dedup_key
            # The same Message-ID on every attempt: mail clients show a resent page once.
            digest = hashlib.sha256(message.dedup_key.encode()).hexdigest()[:40]
            headers["Message-ID"] = f"<{digest}@{DNS_NAME}>"
        connection = get_connection(timeout=getattr(settings, "EMAIL_TIMEOUT", 10))
        email = EmailMessage(
            subject=message.subject.replace("\n", " ")[:250],
            body=message.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=to,
            headers=headers or None,
            connection=connection,
        )
        try:
            if isinstance(connection, SmtpBackend) and message.on_handover is not None:
                return _send_over_smtp(connection, email, message.on_handover)
            sent = email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            return SendResult(ok=False, error=f"recipients refused: {exc}", retryable=False)
        except (smtplib.SMTPException, OSError) as exc:
            code = getattr(exc, "smtp_code", None)
            return SendResult(ok=False, code=code, error=f"{type(exc).__name__}: {exc}")
        return SendResult(ok=bool(sent), excerpt=f"accepted for {len(to)} recipient(s)")


def _send_over_smtp(backend: SmtpBackend, email: EmailMessage, on_handover: Any) -> SendResult:
    """One SMTP transaction that calls ``on_handover`` right before the end of data.

    Until the final ``.`` the server has nothing it would deliver (an interrupted transaction
    is discarded), so a crash before it is safely retried. After it, the message may be on its
    way whether or not we hear the server's answer: an answer lost to a timeout counts as sent,
    so a page is never mailed twice.
    """
    message = email.message()
    encoding = email.encoding or settings.DEFAULT_CHARSET
    sender = sanitize_address(email.from_email, encoding)
    recipients = [sanitize_address(addr, encoding) for addr in email.recipients()]
    backend.open()
    try:
        smtp = backend.connection
        smtp.ehlo_or_helo_if_needed()
        code, reply = smtp.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        refused = {}
        for rcpt in recipients:
            code, reply = smtp.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = (code, reply)
        if len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(refused)
        code, reply = smtp.docmd("data")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        data = re.sub(rb"(?m)^\.", b"..", message.as_bytes(linesep="\r\n"))
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        smtp.send(data)
        on_handover()  # raising here leaves the transaction unfinished: nothing is delivered
        try:
            smtp.send(b".\r\n")
            code, reply = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult(ok=True, excerpt=f"handed over; no answer ({type(exc).__name__})")
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        return SendResult(ok=True, excerpt=f"accepted for {len(recipients)} recipient(s)")
    finally:
        backend.close()
