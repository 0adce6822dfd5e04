"""Sign-in by username or e-mail address.

People type the address they were invited with (the bootstrap account is created from
``TOCSIN_ADMIN_EMAIL``), so both the UI login and the admin login accept either. An address
signs in only when exactly one active account has it: two accounts sharing an address could
otherwise be reached with the wrong one's password guessing game.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.forms import PasswordChangeForm as DjangoPasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

LOGIN_LABEL = "E-mail or username"


class EmailBackend(ModelBackend):
    """After Django's own backend (usernames; sessions it signed stay valid), addresses."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not username or "@" not in username or password is None:
            return None
        users = get_user_model()._default_manager.filter(email__iexact=username.strip())
        found = list(users[:2])
        if len(found) != 1:
            return None  # Django's backend already paid a hasher run for the unknown username
        user = found[0]
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


class LoginForm(AuthenticationForm):
    """Django's login form, saying what it accepts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = LOGIN_LABEL
        self.fields["username"].widget.attrs["autocomplete"] = "username email"
        self.error_messages = {
            **self.error_messages,
            "invalid_login": "That e-mail or username and password do not match an account.",
        }


class PasswordChangeForm(DjangoPasswordChangeForm):
    """Django's form, with the old password checked as a sign-in is checked.

    Django's own form asks ``user.check_password``, which no sign-in protection sees: someone
    holding a stolen session could guess the password there without limit, then change it. Here
    the old password goes through ``authenticate()`` under the account's username, so a wrong one
    is a failed sign-in of that account and address (counted by django-axes, audited as
    ``user.login_failed``), the progressive delay applies, and a locked account or address is
    refused before the password is checked (tocsin.security.signin; the middleware answers 429).
    """

    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        signed_in = authenticate(
            self.request, username=self.user.get_username(), password=old_password
        )
        if signed_in is None or signed_in.pk != self.user.pk:
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password
