"""Forms of the web UI. They only validate input; the services decide and do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.utils import timezone

from tocsin.models import Role, Team
from tocsin.services import ServiceError


def add_service_error(form: forms.Form, error: ServiceError, aliases: dict[str, str] | None = None):
    """Show a service's refusal next to the field it names (or above the form)."""
    field = (aliases or {}).get(error.field or "", error.field)
    form.add_error(field if field in form.fields else None, error.message)


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )

    require_two_factor = forms.BooleanField(required=False)

    def __init__(self, *args: Any, team: Team, **kwargs: Any):
        kwargs.setdefault(
            "initial",
            {
                "name": team.name,
                "description": team.description,
                "require_two_factor": team.require_two_factor,
            },
        )
        super().__init__(*args, **kwargs)
        self.team = team

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("a team needs a name")
        if Team.objects.filter(name__iexact=name).exclude(pk=self.team.pk).exists():
            raise forms.ValidationError("another team already has this name")
        return name


class TeamCreateForm(forms.Form):
    """A new team, created by staff from the teams page; its first manager is named here."""

    name = forms.CharField(
        max_length=100, help_text="Shown everywhere; its address is made from it."
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    manager = forms.CharField(
        label="First manager",
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text="Username of who will manage the team (add members, set up paging). "
        "Leave empty to manage it yourself.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("a team needs a name")
        if Team.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError("another team already has this name")
        return name


class AddMemberForm(forms.Form):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


EXPIRY_CHOICES = [
    ("", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
]


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses this token, e.g. “grafana-prod” or “my laptop”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    expires_in = forms.TypedChoiceField(
        label="Expires",
        choices=EXPIRY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
    )

    def expires_at(self) -> Any:
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + timedelta(days=days) if days else None
