"""Encryption at rest for secrets (channel URLs with tokens, SMTP recipients, routing keys).

Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``: authenticated, so a tampered
ciphertext fails loudly instead of decrypting to garbage. The key is ``TOCSIN_ENCRYPTION_KEY``
(a Fernet key, or any passphrase) when set, else derived from ``SECRET_KEY`` with HKDF, so the
embedded default needs no extra setup. Rotating SECRET_KEY without setting
TOCSIN_ENCRYPTION_KEY to the old value makes stored secrets unreadable: set the dedicated key
in production.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

__all__ = ["DecryptionError", "EncryptedJSONField", "decrypt", "encrypt", "fernet"]

_HKDF_INFO = b"tocsin secrets at rest v1"


class DecryptionError(ValueError):
    """The ciphertext was tampered with or was encrypted under another key."""


def _derive(material: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tocsin", info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(material.encode()))


@lru_cache(maxsize=4)
def _fernet_for(material: str) -> Fernet:
    try:
        return Fernet(material.encode())  # already a Fernet key
    except (ValueError, TypeError):
        return Fernet(_derive(material))


def fernet() -> Fernet:
    material = getattr(settings, "TOCSIN_ENCRYPTION_KEY", "") or ""
    if material:
        return _fernet_for(material)
    return _fernet_for("secret-key:" + settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError):
        raise DecryptionError("stored secret cannot be decrypted (tampered or wrong key)") from None


class EncryptedJSONField(models.TextField):
    """A JSON object stored as Fernet ciphertext; Python code sees the dict.

    Not filterable or indexable by content (by design: the database never sees the plaintext).
    """

    description = "JSON encrypted at rest"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is dict:
            del kwargs["default"]
        if kwargs.get("blank") is True:
            del kwargs["blank"]
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return {} if value == "" else None
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, dict | list):
            return value
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                try:
                    return json.loads(decrypt(value))
                except DecryptionError:
                    raise ValidationError("enter valid JSON") from None
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return encrypt(json.dumps(value, sort_keys=True, separators=(",", ":")))

    def value_to_string(self, obj: Any) -> str:
        # Fixtures and dumpdata carry ciphertext, never the secret.
        return self.get_prep_value(self.value_from_object(obj)) or ""

    def formfield(self, **kwargs: Any) -> Any:
        from django import forms

        return forms.JSONField(**{"required": not self.blank, **kwargs})
