"""The editor's forms. They check shapes (lengths, choices, numbers); the services check the rest
(team of a service or check, slug and domain uniqueness) and their refusals come back as form
errors."""

from __future__ import annotations

from typing import Any

from django import forms

from incidents.statuspages.models import (
    ComponentGroup,
    ComponentStatus,
    PublicImpact,
    PublicIncidentStatus,
    StatusPage,
)
from incidents.statuspages.services import PAGE_FIELDS, checked_until
from monitoring import availability
from monitoring.models import Service
from tocsin.permissions import Action, teams_for
from tocsin.services import ServiceError


class HttpsUrlField(forms.URLField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class PageForm(forms.ModelForm):
    services = forms.ModelMultipleChoiceField(
        queryset=Service.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Services whose incidents responders may publish on this page.",
    )

    class Meta:
        model = StatusPage
        fields = ["team", *PAGE_FIELDS]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        field_classes = {"logo_url": HttpsUrlField, "support_url": HttpsUrlField}

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        managed = teams_for(user, Action.MANAGE)
        self.fields["team"].queryset = managed
        services = Service.objects.filter(team__in=managed).select_related("team")
        if self.instance.pk:
            del self.fields["team"]
            services = services.filter(team_id=self.instance.team_id)
            self.fields["services"].initial = list(self.instance.services.all())
        self.fields["services"].queryset = services.order_by("team__name", "name")

    def _post_clean(self) -> None:
        """Validation is the service's (it also checks uniqueness and the services' team)."""


class GroupForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 1}))
    position = forms.IntegerField(min_value=0, max_value=100_000, required=False, initial=0)


class ComponentForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 1}))
    position = forms.IntegerField(min_value=0, max_value=100_000, required=False, initial=0)
    group = forms.ModelChoiceField(queryset=ComponentGroup.objects.none(), required=False)
    service = forms.ModelChoiceField(queryset=Service.objects.none(), required=False)
    check = forms.ChoiceField(required=False, help_text="A probe check that watches it.")
    show_uptime = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, page: StatusPage, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = ComponentGroup.objects.filter(page=page)
        services = Service.objects.filter(team_id=page.team_id).order_by("name")
        self.fields["service"].queryset = services
        self.fields["check"].choices = [
            ("", "—"),
            *check_choices(list(services.values_list("pk", flat=True))),
        ]

    def changes(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        kind, _, target = (data.pop("check") or "").partition(":")
        data["source_kind"] = kind
        data["target_id"] = int(target) if target else None
        data["position"] = data.get("position") or 0
        return data


def check_choices(service_ids: list[int]) -> list[tuple[str, str]]:
    """Every source's targets of these services, as "kind:id" (internal names: managers only)."""
    found = []
    for source in availability.sources():
        for target in source.targets(service_ids=service_ids):
            found.append((f"{source.kind}:{target.id}", f"{source.label}: {target.name}"))
    return found


class ManualStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ComponentStatus.choices)
    until = forms.DateTimeField(
        required=False,
        help_text="UTC, e.g. 2026-12-01 18:00; blank = until cleared.",
    )

    def clean_until(self) -> Any:
        return clean_until(self.cleaned_data.get("until"))


def clean_until(value: Any) -> Any:
    """A manual status's end in UTC; a field error past ten years (year 9999 west of UTC would
    overflow, or be stored where it cannot be read back)."""
    try:
        return checked_until(value)
    except ServiceError as error:
        raise forms.ValidationError(error.message) from None


class MaintenanceNoticeForm(forms.Form):
    window = forms.IntegerField(min_value=1)
    title = forms.CharField(max_length=200, required=False)
    note = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    hidden = forms.BooleanField(required=False)


class WebhookForm(forms.Form):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    secret = forms.CharField(required=False, max_length=200, help_text="For the HMAC signature.")


class PublicUpdateForm(forms.Form):
    """The incident page's "post a public update" form."""

    page = forms.IntegerField(min_value=1)
    title = forms.CharField(max_length=200, required=False)
    status = forms.ChoiceField(choices=PublicIncidentStatus.choices)
    impact = forms.ChoiceField(choices=PublicImpact.choices, required=False)
    body = forms.CharField(max_length=5000)
    components = forms.TypedMultipleChoiceField(coerce=int, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Which components belong to the page is the service's check.
        raw = self.data.getlist("components") if hasattr(self.data, "getlist") else []
        self.fields["components"].choices = [(v, v) for v in raw if str(v).isdecimal()]
