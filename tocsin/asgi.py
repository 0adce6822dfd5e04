"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by daphne).

HTTP requests go through the middleware and the view in one worker thread. Django's own ASGI
handler runs the middleware chain in async mode, and every synchronous middleware step
(sessions, CSRF, auth, messages; WhiteNoise is sync-only, so the chain also switches modes half
way) then hops between the event loop and a thread: about ten hops per request, each a context
switch, for views that are all synchronous anyway. Here the whole chain runs synchronously in
one hop, as under WSGI, while daphne keeps WebSockets and slow clients on the event loop.

Views that declare an async form (``view.async_form``: the alert webhooks, which carry a key,
no session or CSRF token) skip the middleware and are served by that form on the event loop,
where concurrent requests can be processed together.
"""

import os

from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, resolve

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tocsin.settings")


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler with a synchronous middleware chain run in one thread hop."""

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)

    async def get_response_async(self, request):
        if request.method == "POST":
            response = await _async_form(request)
            if response is not None:
                return response
        # Thread-sensitive: the same thread as the request_started/finished signals, so the
        # request's database connection is the one they open and close.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


async def _async_form(request):
    """The response of the view's async form, for views that declare one (``view.async_form``:
    the alert webhooks, which merge concurrent requests); None for every other view."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    async_form = getattr(match.func, "async_form", None)
    if async_form is None:
        return None
    response = await async_form(request, *match.args, **match.kwargs)
    # What the middleware would have added to any response.
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


get_asgi_application()  # django.setup()
django_asgi_app = OneHopASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from tocsin.live.consumers import LiveEventsConsumer  # noqa: E402

websocket_urlpatterns = [
    path("ws/live/", LiveEventsConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
