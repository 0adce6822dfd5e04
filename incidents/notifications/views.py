"""/account/notifications/: a person's own contact methods and notification rules.

Thin views: input is validated by the same serializers the REST API uses
(``incidents.notifications.api``), which validate configs through the channel registry, so the
page and the API accept and refuse exactly the same things. Everything is scoped to
``request.user``; another user's method or rule is a 404. Configs hold secrets (addresses,
URLs with tokens): after saving they are only ever shown redacted.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from incidents.models import (
    ChannelKind,
    ContactMethod,
    DeliveryStatus,
    NotificationRule,
    RuleUrgency,
)
from incidents.notifications import channels, services
from incidents.notifications import outbox as notify
from incidents.notifications.api import (
    CONTACT_METHOD_KINDS,
    GENERIC_FAILURE,
    ContactMethodSerializer,
    RuleSerializer,
    may_see_delivery_details,
)
from incidents.notifications.resolved import notice_rules

TEMPLATE = "incidents/notifications/settings.html"


# -- forms ---------------------------------------------------------------------------------------
class ContactMethodForm(forms.Form):
    """Collects the fields; ``ContactMethodSerializer`` (the API's) decides what is valid."""

    kind = forms.ChoiceField(choices=CONTACT_METHOD_KINDS, initial=ChannelKind.EMAIL)
    label = forms.CharField(
        max_length=100,
        required=False,
        help_text="A name you recognise, e.g. “work email” or “phone via webhook”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    address = forms.CharField(
        label="Address or URL",
        max_length=2000,
        help_text="An email address, or the webhook URL (Slack, Teams, generic webhook), "
        "or an Apprise URL. Shown redacted once saved.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    secret = forms.CharField(
        label="Signing secret",
        max_length=200,
        required=False,
        strip=False,
        help_text="Generic webhook only: the shared secret (16+ characters) for the HMAC "
        "signature. Never shown again.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )

    def api_data(self) -> dict[str, Any]:
        """The API's input for this form: ``{"kind", "label", "config"}``."""
        data = self.cleaned_data
        kind, address = data["kind"], data["address"].strip()
        config = channels.sender_class(kind).config_from_address(address, data["secret"])
        return {"kind": kind, "label": data["label"].strip(), "config": config}


class RuleForm(forms.Form):
    """Collects the fields; ``RuleSerializer`` (the API's) decides what is valid."""

    contact_method = forms.ModelChoiceField(queryset=ContactMethod.objects.none(), label="Notify")
    delay_minutes = forms.IntegerField(
        label="After (minutes)",
        min_value=0,
        initial=0,
        help_text="0 = as soon as you are paged.",
    )
    urgency = forms.ChoiceField(choices=RuleUrgency.choices, initial=RuleUrgency.ANY, label="For")
    notify_on_resolve = forms.BooleanField(
        label=NotificationRule._meta.get_field("notify_on_resolve").verbose_name,
        required=False,
        initial=True,
        help_text=NotificationRule._meta.get_field("notify_on_resolve").help_text,
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["contact_method"].queryset = ContactMethod.objects.filter(user=user)

    def api_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "contact_method": data["contact_method"].pk,
            "delay_minutes": data["delay_minutes"],
            "urgency": data["urgency"],
            "notify_on_resolve": data["notify_on_resolve"],
        }


def _messages(detail: Any) -> list[str]:
    """Flatten a DRF error detail (lists, dicts, list-item dicts) into strings."""
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list | tuple):
        return [m for value in detail for m in _messages(value)]
    return [str(detail)]


def _add_api_errors(form: forms.Form, errors: dict[str, Any], config_field: str = "") -> None:
    """Put a serializer's errors next to the form fields they are about."""
    for key, detail in errors.items():
        if key == "config" and isinstance(detail, dict):
            for sub, sub_detail in detail.items():
                field = "secret" if sub == "secret" else config_field
                for message in _messages(sub_detail):
                    form.add_error(field or None, message)
            continue
        field = config_field if key == "config" else key
        for message in _messages(detail):
            form.add_error(field if field in form.fields else None, message)


# -- presentation --------------------------------------------------------------------------------
def redacted(method: ContactMethod) -> str:
    """Enough of the destination to recognise it, never enough to use it."""
    try:
        return channels.sender_class(method.kind).redacted(method.config or {})
    except channels.ConfigError:
        return "…"


def describe(method: ContactMethod) -> str:
    kind = method.get_kind_display()
    name = f"{method.label} ({kind})" if method.label else kind
    return f"{name}, {redacted(method)}"


def _when(delay: int) -> str:
    if delay == 0:
        return "immediately"
    return f"after {delay} minute{'s' if delay != 1 else ''}"


def explain(rules: list[NotificationRule]) -> list[dict[str, Any]]:
    """What ``notify.page_user`` does with these rules, per urgency, in words.

    Each entry: ``{"when": "for any incident", "steps": [...], "resolved": [...]}``; no steps
    means nothing is sent for that urgency (rules exist, none applies: ``page_user`` does not
    fall back to email); no ``resolved`` means no resolved notice (``resolved.notice_rules``).
    """
    if not rules:
        return []
    if all(rule.urgency == RuleUrgency.ANY for rule in rules):
        groups = [("any incident", RuleUrgency.ANY)]
    else:
        groups = [
            ("a high-urgency incident", RuleUrgency.HIGH),
            ("a low-urgency incident", RuleUrgency.LOW),
        ]
    result = []
    for when, urgency in groups:
        applicable = sorted(
            (r for r in rules if urgency == RuleUrgency.ANY or r.applies_to(urgency)),
            key=lambda r: (r.delay_minutes, r.pk),
        )
        steps = [f"{_when(r.delay_minutes)} by {describe(r.contact_method)}" for r in applicable]
        told = dict.fromkeys(describe(r.contact_method) for r in notice_rules(rules, urgency))
        result.append({"when": when, "steps": steps, "resolved": list(told)})
    return result


def _page(
    request: HttpRequest,
    *,
    method_form: ContactMethodForm | None = None,
    rule_form: RuleForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    methods = list(ContactMethod.objects.filter(user=user).order_by("id"))
    rules = list(
        NotificationRule.objects.filter(user=user)
        .select_related("contact_method")
        .order_by("delay_minutes", "id")
    )
    used = {rule.contact_method_id for rule in rules}
    for method in methods:
        method.redacted = redacted(method)
        method.used = method.pk in used
    for rule in rules:
        rule.when = _when(rule.delay_minutes)
        rule.method_description = describe(rule.contact_method)
    response = render(
        request,
        TEMPLATE,
        {
            "methods": methods,
            "rules": rules,
            "explanation": explain(rules),
            "method_form": method_form or ContactMethodForm(),
            "rule_form": rule_form or RuleForm(user=user),
            "can_test": user.memberships.exists(),
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


# -- views ---------------------------------------------------------------------------------------
@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def method_add(request: HttpRequest) -> HttpResponse:
    form = ContactMethodForm(request.POST)
    if form.is_valid():
        serializer = ContactMethodSerializer(data=form.api_data(), context={"request": request})
        if serializer.is_valid():
            method = services.save(
                ContactMethod(user=request.user, **serializer.validated_data), actor=request.user
            )
            messages.success(
                request,
                f"Contact method “{describe(method)}” added. Add a rule below so it is used "
                "when you are paged.",
            )
            return redirect("notification_settings")
        _add_api_errors(form, serializer.errors, config_field="address")
    return _page(request, method_form=form, status=400)


@login_required
@require_POST
def method_delete(request: HttpRequest, pk: int) -> HttpResponse:
    method = get_object_or_404(ContactMethod, pk=pk, user=request.user)
    label, rules = describe(method), method.rules.count()
    services.delete(method, actor=request.user)  # its rules go with it (CASCADE)
    text = f"Contact method “{label}” removed"
    if rules:
        text += f", with the {rules} rule{'s' if rules != 1 else ''} that used it"
    messages.success(request, text + ".")
    return redirect("notification_settings")


@login_required
@require_POST
def method_test(request: HttpRequest, pk: int) -> HttpResponse:
    method = get_object_or_404(ContactMethod, pk=pk, user=request.user)
    label = describe(method)
    try:
        delivery = notify.send_test(contact_method=method, actor=request.user)
    except channels.ConfigError as exc:
        messages.error(request, f"Could not test “{label}”: {exc}.")
        return redirect("notification_settings")
    if not may_see_delivery_details(request.user, delivery.team_id):
        # No read-back of what the destination answered (issue #14): managers see the log.
        if delivery.status == DeliveryStatus.SENT:
            messages.success(request, f"Test message to “{label}”: sent.")
        else:
            messages.error(request, f"Test message to “{label}”: {GENERIC_FAILURE}.")
        return redirect("notification_settings")
    code = f" (HTTP {delivery.response_code})" if delivery.response_code else ""
    if delivery.status == DeliveryStatus.SENT:
        messages.success(request, f"Test message sent to “{label}”{code}.")
    elif delivery.status == DeliveryStatus.PENDING:
        messages.warning(
            request,
            f"The test to “{label}” did not go through yet{code}: {delivery.last_error}. "
            "Tocsin will retry it.",
        )
    else:
        messages.error(
            request, f"The test to “{label}” failed{code}: {delivery.last_error or 'unknown'}."
        )
    return redirect("notification_settings")


@login_required
@require_POST
def rule_add(request: HttpRequest) -> HttpResponse:
    form = RuleForm(request.POST, user=request.user)
    if form.is_valid():
        serializer = RuleSerializer(data=form.api_data(), context={"request": request})
        if serializer.is_valid():
            rule = services.save(
                NotificationRule(user=request.user, **serializer.validated_data),
                actor=request.user,
            )
            messages.success(
                request,
                f"Rule added: {_when(rule.delay_minutes)} by {describe(rule.contact_method)}.",
            )
            return redirect("notification_settings")
        _add_api_errors(form, serializer.errors)
    return _page(request, rule_form=form, status=400)


@login_required
@require_POST
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(NotificationRule, pk=pk, user=request.user)
    services.delete(rule, actor=request.user)
    text = "Rule removed."
    if not NotificationRule.objects.filter(user=request.user).exists():
        text += " You have no rules left: pages now go to your account email."
    messages.success(request, text)
    return redirect("notification_settings")


@login_required
@require_POST
def rule_resolve_notice(request: HttpRequest, pk: int) -> HttpResponse:
    """Turn a rule's resolved notice on or off (``notify_on_resolve``: ``true`` or ``false``),
    validated by the API's serializer like a ``PATCH`` of the rule."""
    rule = get_object_or_404(NotificationRule, pk=pk, user=request.user)
    data = {"notify_on_resolve": request.POST.get("notify_on_resolve", "")}
    serializer = RuleSerializer(rule, data=data, partial=True, context={"request": request})
    if not serializer.is_valid():
        for message in _messages(serializer.errors):
            messages.error(request, f"The rule was not changed: {message}")
        return _page(request, status=400)
    rule = services.save(rule, actor=request.user, **serializer.validated_data)
    how = describe(rule.contact_method)
    if rule.notify_on_resolve:
        messages.success(request, f"This rule sends resolved notices to {how} again.")
    else:
        messages.success(request, f"This rule no longer sends resolved notices to {how}.")
    return redirect("notification_settings")
