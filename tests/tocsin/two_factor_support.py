"""Codes as an authenticator app computes them, for the two-factor tests."""

from __future__ import annotations

import time
from typing import Any

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tocsin.two_factor import devices


def app_code(device: TOTPDevice) -> str:
    """The current code, usable now: the device forgets the last step it accepted and its
    throttle (django-otp refuses a code twice in one 30-second step, and waits after a failure)."""
    TOTPDevice.objects.filter(pk=device.pk).update(
        last_t=-1, throttling_failure_count=0, throttling_failure_timestamp=None
    )
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    right = app_code(device)
    return f"{(int(right) + 1) % 10**device.digits:0{device.digits}d}"


def enrol(user: Any) -> tuple[TOTPDevice, list[str]]:
    """A confirmed authenticator app and fresh recovery codes, as the setup page leaves them."""
    device = devices.pending_totp(user)
    codes = devices.confirm_totp(user, device, app_code(device))
    assert codes is not None
    device.refresh_from_db()
    return device, codes
