"""The client address of the request being served, for the events it records.

A middleware (``ClientAddress``) puts it in a context variable for the length of the request;
``tocsin.events.record`` stores it on every event the request writes (``Event.ip``). Every
surface (UI, API, admin) goes through it without services having to pass the request along,
and events written outside requests (workers, commands) carry none. A context variable, not a
thread local: it follows the request through ``sync_to_async`` and back.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from tocsin.security.addresses import client_address

_address: ContextVar[str | None] = ContextVar("tocsin_client_address", default=None)


def current_address() -> str | None:
    return _address.get()


class ClientAddress:
    """Middleware: the client address of each request, for the events it records."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        token = _address.set(client_address(request) or None)
        try:
            return self.get_response(request)
        finally:
            _address.reset(token)

    async def _acall(self, request: Any) -> Any:
        token = _address.set(client_address(request) or None)
        try:
            return await self.get_response(request)
        finally:
            _address.reset(token)
