"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by daphne).

HTTP requests go through the middleware and the view in one worker thread. Django's own ASGI
handler runs the middleware chain in async mode, and every synchronous middleware step
(sessions, CSRF, auth, messages; WhiteNoise is sync-only, so the chain also switches modes half
way) then hops between the event loop and a thread: about ten hops per request, each a context
switch, for views that are all synchronous anyway. Here the whole chain runs synchronously in
one hop, as under WSGI, while daphne keeps WebSockets and slow clients on the event loop.

Views that declare an async form (``view.async_form``: the alert webhooks and the heartbeat
ping URLs, which carry their secret in the URL or a header, no session or CSRF token) are served
by that form on the event loop, where concurrent requests can be written together. They skip
more than the middleware: Django's handler wraps every request in a ``ThreadSensitiveContext``
and sends ``request_started``/``request_finished``, whose receivers (closing stale database
connections) run in a thread made for that one request; profiled under a storm of single alerts
that was a sixth of the web process's time. An async form touches the database only in threads
that manage their own connections, so none of it is needed there.
"""

import logging
import os

from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import HttpResponseServerError
from django.urls import Resolver404, ResolverMatch, resolve, set_script_prefix

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tocsin.settings")


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler with a synchronous middleware chain run in one thread hop."""

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)

    async def __call__(self, scope, receive, send):
        match = _async_form_match(scope) if scope["type"] == "http" else None
        if match is None:
            await super().__call__(scope, receive, send)
        else:
            await self._serve_async_form(match, scope, receive, send)

    async def get_response_async(self, request):
        # Thread-sensitive: the same thread as the request_started/finished signals, so the
        # request's database connection is the one they open and close.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    async def _serve_async_form(self, match: ResolverMatch, scope, receive, send) -> None:
        """The short road for a view's async form: body, request, view, response."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            request, response = self.create_request(scope, body_file)
            if request is not None:
                try:
                    response = await match.func.async_form(request, *match.args, **match.kwargs)
                except Exception:
                    logger.exception("%s failed", match.view_name)
                    response = HttpResponseServerError(
                        "Internal Server Error", content_type="text/plain"
                    )
            # What the middleware would have added to any response.
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("X-Frame-Options", "DENY")
            await self.send_response(response, send)
        finally:
            body_file.close()


def _async_form_match(scope) -> ResolverMatch | None:
    """The URL match of a request to a view that declares an async form (``view.async_form``:
    the alert webhooks and the heartbeat ping URLs, which merge concurrent requests); None for
    everything else."""
    try:
        match = resolve(scope["path"].removeprefix(get_script_prefix(scope)) or "/")
    except Resolver404:
        return None
    return match if hasattr(match.func, "async_form") else None


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

# Last, once everything a web process serves with is loaded (see tocsin.heap).
from tocsin.heap import freeze_startup_objects  # noqa: E402

freeze_startup_objects()
