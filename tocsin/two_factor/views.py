"""The login's second step (UI and admin alike) and the person's two-factor pages.

After a right password, someone with a confirmed device is not signed in: the session only
remembers, for five minutes and five tries, who is half-way; the code step then signs them in
with the device that accepted the code (django-otp marks the session verified).
"""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.auth import REDIRECT_FIELD_NAME, get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login

from tocsin.two_factor import devices, policy

PENDING = "tocsin_2fa_pending"
PENDING_SECONDS = 300
PENDING_TRIES = 5
WRONG_CODE = "That code is not right. (After a wrong code, wait a few seconds before the next.)"


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6 digits your authenticator app shows, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


class TwoStepLoginView(LoginView):
    """Django's login; for someone with a second factor it leads to the code step instead."""

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if not policy.has_device(user):
            return super().form_valid(form)
        self.request.session[PENDING] = {
            "user": user.pk,
            "backend": user.backend,
            "at": int(time.time()),
            "next": self.get_success_url(),
            "tries": 0,
        }
        return HttpResponseRedirect(reverse("login_code"))


def admin_login(site: AdminSite, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    """``AdminSite.login`` with the two-step view: the admin asks for the code too."""
    if request.method == "GET" and site.has_permission(request):
        return HttpResponseRedirect(reverse("admin:index", current_app=site.name))
    context = {
        **site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
    }
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=site.name)
    context.update(extra_context or {})
    request.current_app = site.name
    return TwoStepLoginView.as_view(
        extra_context=context,
        authentication_form=site.login_form,
        template_name=site.login_template or "admin/login.html",
    )(request)


def _pending(request: HttpRequest) -> tuple[dict, Any] | None:
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None
    user = get_user_model()._default_manager.filter(pk=pending["user"], is_active=True).first()
    if user is None:
        request.session.pop(PENDING, None)
        return None
    return pending, user


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    found = _pending(request)
    if found is None:
        messages.info(request, "Please sign in again.")
        return redirect("login")
    pending, user = found
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            device = devices.verify(user, form.cleaned_data["code"])
            if device is not None:
                del request.session[PENDING]
                user.otp_device = device  # django-otp stores it in the session at login
                auth_login(request, user, backend=pending["backend"])
                if device.name == devices.RECOVERY_NAME:
                    left = devices.recovery_codes_left(user)
                    messages.warning(request, f"You signed in with a recovery code; {left} left.")
                return HttpResponseRedirect(pending["next"])
            # Wrong codes count as failed sign-ins, like wrong passwords.
            user_login_failed.send(
                sender=__name__, credentials={"username": user.get_username()}, request=request
            )
            pending["tries"] += 1
            if pending["tries"] >= PENDING_TRIES:
                del request.session[PENDING]
                messages.error(request, "Too many wrong codes: please sign in again.")
                return redirect("login")
            request.session[PENDING] = pending
            form.add_error("code", WRONG_CODE)
        status = 400
    return render(
        request,
        "tocsin/two_factor/login_code.html",
        {"form": form, "current": "login"},
        status=status,
    )


# -- The person's own pages -------------------------------------------------------------------
def _status_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "totp": devices.confirmed_totp(user),
        "recovery_left": devices.recovery_codes_left(user),
        "required": policy.required_for(user),
        "code_form": CodeForm(),
    }


@login_required
@never_cache
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "tocsin/two_factor/overview.html", _status_context(request))


def _no_store(response: HttpResponse) -> HttpResponse:
    # Pages that show a secret or recovery codes must not be kept by any cache.
    response["Cache-Control"] = "no-store"
    return response


@sensitive_post_parameters("code")
@login_required
def setup(request: HttpRequest) -> HttpResponse:
    user = request.user
    if devices.confirmed_totp(user) is not None:
        return redirect("two_factor")
    device = devices.pending_totp(user)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            codes = devices.confirm_totp(user, device, form.cleaned_data["code"])
            if codes is not None:
                device.refresh_from_db()
                otp_login(request, device)  # this session is now verified by the new device
                policy.forget(request.session)
                return _no_store(
                    render(
                        request,
                        "tocsin/two_factor/recovery_codes.html",
                        {"codes": codes, "enrolled": True},
                    )
                )
            form.add_error("code", WRONG_CODE)
        status = 400
    context = {
        "form": form,
        "qr_svg": devices.qr_svg(device),
        "secret": devices.secret_base32(device),
        "required": policy.required_for(user),
    }
    return _no_store(render(request, "tocsin/two_factor/setup.html", context, status=status))


def _checked_code(request: HttpRequest) -> tuple[CodeForm, bool]:
    form = CodeForm(request.POST)
    ok = form.is_valid() and devices.verify(request.user, form.cleaned_data["code"]) is not None
    if form.is_valid() and not ok:
        form.add_error("code", WRONG_CODE)
    return form, ok


def _overview_with_error(request: HttpRequest, form: CodeForm, action: str) -> HttpResponse:
    context = _status_context(request)
    context.update({"code_form": form, "failed_action": action})
    return render(request, "tocsin/two_factor/overview.html", context, status=400)


@sensitive_post_parameters("code")
@login_required
@require_POST
def recovery(request: HttpRequest) -> HttpResponse:
    """New recovery codes, for a current code (the old ones stop working)."""
    if devices.confirmed_totp(request.user) is None:
        return redirect("two_factor_setup")
    form, ok = _checked_code(request)
    if not ok:
        return _overview_with_error(request, form, "recovery")
    codes = devices.new_recovery_codes(request.user)
    return _no_store(render(request, "tocsin/two_factor/recovery_codes.html", {"codes": codes}))


@sensitive_post_parameters("code")
@login_required
@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    """Turn two-factor off, for a current code; refused while it is required of the person."""
    user = request.user
    form, ok = _checked_code(request)
    if ok and policy.required_for(user):
        form.add_error(
            "code", "Two-factor authentication is required for your account; it stays on."
        )
        ok = False
    if not ok:
        return _overview_with_error(request, form, "disable")
    devices.disable(user)
    request.session.pop(DEVICE_ID_SESSION_KEY, None)
    policy.forget(request.session)
    messages.success(request, "Two-factor authentication is off.")
    return redirect("two_factor")
