"""The page behind a signed action link: GET asks for confirmation, POST acts.

No login: the signature is the credential. Mail clients and link scanners fetch links with
GET, so GET only shows what the link would do.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from incidents.notifications import links


@never_cache
@require_http_methods(["GET", "POST"])
def action_link(request: HttpRequest, token: str) -> HttpResponse:
    context: dict = {"token": token}
    try:
        if request.method == "POST":
            links.use(token)
            # POST -> redirect -> GET: a reload shows the outcome instead of posting again.
            return HttpResponseRedirect(request.path + "?done=1", status=303)
        link = links.read(token)
        used = links.is_used(link)
        context.update(link=link, used=used, done=used and request.GET.get("done") == "1")
    except links.LinkError as exc:
        context.update(error=exc.message, code=exc.code)
        status = 410 if exc.code in {"expired", "used", "gone"} else 400
        if exc.code == "forbidden":
            status = 403
        return render(request, "incidents/action_link.html", context, status=status)
    return render(request, "incidents/action_link.html", context)
