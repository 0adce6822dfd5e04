"""The branded admin site; who may enter is decided by team roles, not Django's is_staff.

Superusers and team managers use the admin (``permissions.may_use_admin``); what each of them
sees inside is decided per model admin (see ``tocsin.admin_mixins``). Tocsin never sets
``is_staff`` or model permissions for managers, so Django's own admins (users, groups, django-q)
stay superuser-only without further ado.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from tocsin.admin_mixins import scoped_rows
from tocsin.auth import LOGIN_LABEL
from tocsin.permissions import may_use_admin


class TocsinAuthenticationForm(AdminAuthenticationForm):
    """The admin login, open to team managers as well as superusers (Django's wants is_staff)."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": (
            "Please enter the correct %(username)s and password of an administrator or a team "
            "manager. Note that both fields may be case-sensitive."
        ),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = LOGIN_LABEL

    def confirm_login_allowed(self, user: Any) -> None:
        AuthenticationForm.confirm_login_allowed(self, user)  # refuses inactive accounts
        if not may_use_admin(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class TocsinAutocompleteJsonView(AutocompleteJsonView):
    """Lets managers pick a user for a membership without seeing the user admin.

    Django allows an autocomplete only to those who may view the target model's admin; the user
    admin is superuser-only, yet a manager adding a member must find the person. For the fields
    the site allows (``allow_user_search``), any admin user may search active users by name;
    a field its admin scopes (``team_scoped_fields``, e.g. an override's person) offers only the
    people of the teams the user manages, as its form accepts.
    """

    def _is_user_search(self) -> bool:
        return self.admin_site.allows_user_search(self.source_field)

    def has_perm(self, request: HttpRequest, obj: Any = None) -> bool:
        if self._is_user_search():
            return may_use_admin(request.user)
        return super().has_perm(request, obj)

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        if self._is_user_search():
            queryset = queryset.filter(is_active=True)
            team_path = self.admin_site.team_path_of(self.source_field)
            if team_path is not None:
                people = scoped_rows(queryset.model, self.request.user, team_path)
                queryset = queryset.filter(pk__in=people.values("pk"))
        return queryset


class TocsinAdminSite(admin.AdminSite):
    site_header = "Tocsin administration"
    site_title = "Tocsin admin"
    index_title = "Configuration"
    site_url = "/"
    login_form = TocsinAuthenticationForm

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._user_search_fields: set[tuple[str, str]] = set()

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and may_use_admin(request.user))

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """Django's admin login, with the second step for people who have a second factor."""
        from tocsin.two_factor.views import admin_login

        return admin_login(self, request, extra_context)

    def allow_user_search(self, model: type[Model], field_name: str) -> None:
        """Let managers autocomplete users in ``model.field_name`` (a foreign key to User)."""
        self._user_search_fields.add((model._meta.label_lower, field_name))

    def allows_user_search(self, field: Any) -> bool:
        return (
            getattr(field.remote_field, "model", None) is get_user_model()
            and (field.model._meta.label_lower, field.name) in self._user_search_fields
        )

    def team_path_of(self, field: Any) -> str | None:
        """How the admin (or inline) editing ``field`` scopes it to teams, if it does."""
        for model_admin in self._registry.values():
            for editor in (model_admin, *model_admin.inlines):
                if getattr(editor, "model", None) is field.model:
                    team_path = getattr(editor, "team_scoped_fields", {}).get(field.name)
                    if team_path is not None:
                        return team_path
        return None

    def autocomplete_view(self, request: HttpRequest) -> HttpResponse:
        return TocsinAutocompleteJsonView.as_view(admin_site=self)(request)
