"""The security page for staff: sign-ins, second factors, API tokens, admin changes."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from tocsin.security import overview


@login_required
def security(request: HttpRequest) -> HttpResponse:
    if not overview.may_see(request.user):
        raise PermissionDenied("The security page is for staff.")
    context = {
        "overview": overview.overview(timezone.now()),
        "failed_window_hours": int(overview.FAILED_WINDOW.total_seconds() // 3600),
        "expiring_days": overview.EXPIRING_WITHIN.days,
        "unused_days": overview.UNUSED_FOR.days,
        "current": "security",
    }
    return render(request, "tocsin/security.html", context)
