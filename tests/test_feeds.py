"""The Atom checker the status-page tests rely on: it passes a correct feed and catches the
mistakes feed readers choke on (so a green feed test means something)."""

from __future__ import annotations

import pytest

from tests.feeds import assert_valid_atom

ENTRY = (
    "<entry><title>Outage</title><id>urn:tocsin:1</id><updated>2026-03-01T10:00:00Z</updated>"
    '<link href="https://status.example.com/incidents/1"/></entry>'
)


def feed(head: str = "<author><name>Tocsin</name></author>", entry: str = ENTRY) -> bytes:
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>Status</title><id>urn:tocsin</id>'
        f"<updated>2026-03-01T10:00:00Z</updated>{head}{entry}</feed>"
    ).encode()


def test_a_correct_feed_passes():
    assert assert_valid_atom(feed()).tag == "{http://www.w3.org/2005/Atom}feed"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (feed(entry=ENTRY.replace("<id>urn:tocsin:1</id>", "")), "extra content"),
        (feed(entry=ENTRY.replace("2026-03-01T10:00:00Z", "1 March")), "updated"),
        (feed(head=""), "no author"),
        (
            feed(entry=ENTRY.replace('<link href="https://status.example.com/incidents/1"/>', "")),
            "neither an alternate link nor content",
        ),
    ],
)
def test_it_catches_what_feed_readers_reject(document, message):
    with pytest.raises(AssertionError, match=message):
        assert_valid_atom(document)
