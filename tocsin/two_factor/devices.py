"""One way to enrol, verify and remove a person's second factor (django-otp devices).

A person has at most one TOTP device (an authenticator app) and one set of recovery codes
(a django-otp StaticDevice whose tokens are deleted as they are used). Unconfirmed TOTP devices
are enrolments in progress: they never count at sign-in.
"""

from __future__ import annotations

import base64
from typing import Any

import segno
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
RECOVERY_CODE_COUNT = 10


def pending_totp(user: Any) -> TOTPDevice:
    """The enrolment in progress (a new secret the first time), kept until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def confirmed_totp(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def secret_base32(device: TOTPDevice) -> str:
    """The secret as authenticator apps take it when typed in."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def qr_svg(device: TOTPDevice) -> str:
    """The provisioning URI as an inline SVG (no image request, no third party)."""
    qr = segno.make(device.config_url, error="m")
    return qr.svg_inline(scale=4, dark="#111", light="#fff", title="Two-factor QR code")


def normalise(code: str) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


def confirm_totp(user: Any, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm an enrolment with a first code; returns fresh recovery codes, or None if wrong."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        if device.confirmed or not device.verify_token(normalise(code)):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        return _replace_recovery_codes(user)


def new_recovery_codes(user: Any) -> list[str]:
    """A fresh set of recovery codes; the old ones stop working."""
    with transaction.atomic():
        return _replace_recovery_codes(user)


def _replace_recovery_codes(user: Any) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def recovery_codes_left(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def verify(user: Any, code: str) -> Device | None:
    """The confirmed device that accepts ``code`` (six digits: the app; else a recovery code).

    Each device keeps django-otp's throttling (the wait doubles after each failure), and the
    code's shape picks the one device it is tried on, so a recovery code does not count as a
    failed app code. A recovery code is deleted as it is used: it works once.
    """
    code = normalise(code)
    if not code:
        return None
    model = TOTPDevice if code.isascii() and code.isdecimal() and len(code) == 6 else StaticDevice
    with transaction.atomic():
        for device in model.objects.select_for_update().filter(user=user, confirmed=True):
            if device.verify_token(code):
                return device
    return None


def disable(user: Any) -> None:
    """Remove every second factor of the person (confirmed or not)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
