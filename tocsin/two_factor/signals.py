"""What a sign-in leaves in the session: its time stamps and the two-factor policy's answer."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from tocsin.two_factor import policy, sessions


def signed_in(session: Any, user: Any) -> None:
    """Called at every sign-in; tests that write a session by hand call it too."""
    sessions.stamp_login(session)
    policy.state(session, user, fresh=True)


@receiver(user_logged_in, dispatch_uid="tocsin.two_factor.signed_in")
def _on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        signed_in(request.session, user)
