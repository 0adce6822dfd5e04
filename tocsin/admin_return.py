"""Admin forms opened from a page outside the admin return there after "Save".

The service checklist links to the admin's escalation policy and settings forms with
``?next=<the service page>`` (``with_next``); ``ReturnsToNext`` (part of every
``TeamScopedAdmin``) follows it after a successful "Save".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.admin.options import IS_POPUP_VAR
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

# The query parameter a page outside the admin adds to an admin link ("edit this, then come
# back"): the service checklist sends people to the admin's policy and settings forms.
NEXT_PARAM = "next"
# The buttons after which the user stays in the admin, as Django's admin does.
_STAY_BUTTONS = ("_continue", "_addanother", "_saveasnew")


def with_next(url: str, next_url: str) -> str:
    """``url`` (an admin add or change page) that returns to ``next_url`` after "Save"."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode({NEXT_PARAM: next_url})}"


class ReturnsToNext:
    """A ModelAdmin mixin: after "Save" on a form opened with ``?next=<a page of this site>``,
    go back to that page instead of the admin's list. The form posts to its own URL, query
    string included, so ``next`` survives a failed validation too. Only local URLs are
    followed (no open redirect); "Save and continue" and "Save and add another" stay."""

    def next_url(self, request: HttpRequest) -> str | None:
        url = request.GET.get(NEXT_PARAM, "")
        if url and url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return url
        return None

    def _back(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        url = self.next_url(request)
        if (
            url is None
            or response.status_code != 302
            or any(button in request.POST for button in _STAY_BUTTONS)
            or IS_POPUP_VAR in request.POST
            or IS_POPUP_VAR in request.GET
        ):
            return response
        return HttpResponseRedirect(url)

    def response_add(self, request: HttpRequest, obj: Any, *args: Any, **kwargs: Any) -> Any:
        return self._back(request, super().response_add(request, obj, *args, **kwargs))

    def response_change(self, request: HttpRequest, obj: Any) -> Any:
        return self._back(request, super().response_change(request, obj))
