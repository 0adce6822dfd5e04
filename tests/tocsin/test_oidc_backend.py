"""A deactivated account's single sign-on sessions end at its next request, as a password
session's do (mozilla-django-oidc's own backend returns inactive users)."""

from __future__ import annotations

from tests.conftest import make_user
from tocsin.oidc import OIDCBackend


def test_a_deactivated_account_is_no_longer_signed_in(db) -> None:
    user = make_user("sso-person")
    backend = OIDCBackend()
    assert backend.get_user(user.pk) == user
    user.is_active = False
    user.save()
    assert backend.get_user(user.pk) is None


def test_administrators_may_remove_a_binding_and_it_is_on_record(db, client) -> None:
    from django.urls import reverse

    from tests.conftest import make_user
    from tocsin.models import Event, SingleSignOnIdentity

    carol = make_user("carol")
    binding = SingleSignOnIdentity.objects.create(
        user=carol, issuer="https://id.example.org", subject="subject-carol"
    )
    manager = make_user("manny")
    client.force_login(manager)
    delete = reverse("admin:tocsin_singlesignonidentity_delete", args=[binding.pk])
    assert client.post(delete, {"post": "yes"}).status_code in (302, 403)  # not an administrator
    assert SingleSignOnIdentity.objects.filter(pk=binding.pk).exists()
    admin = make_user("root", is_superuser=True, is_staff=True)
    client.force_login(admin)
    change = reverse("admin:tocsin_singlesignonidentity_change", args=[binding.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"subject": "someone-else"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not SingleSignOnIdentity.objects.exists()
    event = Event.objects.get(kind="sso_identity.removed")
    assert event.actor == admin and event.payload["subject"] == "subject-carol"
