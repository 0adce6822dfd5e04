"""Feed validation for tests: an Atom document checked against RFC 4287's own grammar."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
_SCHEMA = Path(__file__).parent / "fixtures" / "atom.rng"


@cache
def _atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(_SCHEMA)))


def assert_valid_atom(document: bytes) -> etree._Element:
    """The parsed feed, after checking it against the RELAX NG grammar and the grammar's two
    Schematron rules (which RELAX NG alone does not apply): every entry has an author (its
    own or the feed's) and a link or content. Fails with the validator's messages."""
    root = etree.fromstring(document)
    schema = _atom_schema()
    assert schema.validate(root), "\n".join(str(error) for error in schema.error_log)
    feed_author = root.find(f"{ATOM}author") is not None
    for entry in root.iter(f"{ATOM}entry"):
        title = entry.findtext(f"{ATOM}title")
        assert feed_author or entry.find(f"{ATOM}author") is not None, f"{title}: no author"
        links = [link.get("rel", "alternate") for link in entry.iter(f"{ATOM}link")]
        assert "alternate" in links or entry.find(f"{ATOM}content") is not None, (
            f"{title}: neither an alternate link nor content"
        )
    return root
