"""What the alert, silence and maintenance page tests share: a logged-in client and a query
counter for "the list costs the same queries for more rows"."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def queries_for(client: Client, url: str) -> int:
    """How many queries one GET of ``url`` costs (it must answer 200)."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)
