"""Secrets at rest: Fernet with a key from SECRET_KEY (HKDF) or TOCSIN_ENCRYPTION_KEY."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import override_settings

from incidents.models import NotificationChannel
from tocsin import crypto
from tocsin.models import Team


def test_it_round_trips():
    assert crypto.decrypt(crypto.encrypt("hooks.slack.com/T/B/x")) == "hooks.slack.com/T/B/x"


def test_tampering_is_detected():
    token = crypto.encrypt("secret")
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(tampered)


def test_another_key_cannot_read_it():
    token = crypto.encrypt("secret")
    with (
        override_settings(TOCSIN_ENCRYPTION_KEY="another passphrase"),
        pytest.raises(crypto.DecryptionError),
    ):
        crypto.decrypt(token)


def test_a_dedicated_key_is_used_when_set():
    key = Fernet.generate_key().decode()
    with override_settings(TOCSIN_ENCRYPTION_KEY=key):
        token = crypto.encrypt("x")
    assert Fernet(key.encode()).decrypt(token.encode()) == b"x"


@pytest.mark.django_db
def test_the_database_row_holds_ciphertext_only():
    team = Team.objects.create(name="Ops")
    url = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    channel = NotificationChannel.objects.create(
        team=team, kind="slack", name="s", config={"url": url}
    )
    with connection.cursor() as cursor:
        table = NotificationChannel._meta.db_table
        cursor.execute(f"SELECT config FROM {table} WHERE id = %s", [channel.pk])
        (raw,) = cursor.fetchone()
    assert "XXXXsecretXXXX" not in raw
    assert "hooks.slack.com" not in raw
    assert NotificationChannel.objects.get(pk=channel.pk).config == {"url": url}


@pytest.mark.django_db
def test_a_tampered_row_fails_loudly():
    team = Team.objects.create(name="Ops")
    channel = NotificationChannel.objects.create(team=team, kind="slack", name="s", config={"a": 1})
    NotificationChannel.objects.filter(pk=channel.pk).update(config={"b": 2})  # re-encrypted: fine
    assert NotificationChannel.objects.get(pk=channel.pk).config == {"b": 2}
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {NotificationChannel._meta.db_table} SET config = %s WHERE id = %s",
            ["gAAAAAforged", channel.pk],
        )
    with pytest.raises(crypto.DecryptionError):
        NotificationChannel.objects.get(pk=channel.pk)
