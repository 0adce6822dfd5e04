"""Request parsers for the API: JSON, forms, and multipart that refuses a body it cannot read.

Django's multipart parser skips parts it cannot make sense of, so a malformed body (a part
without headers, say) parsed as "no fields" and a PATCH carrying it answered 200 as if it had
asked for nothing. Such a body is refused with a 400 instead; an empty form stays an empty form.
"""

from __future__ import annotations

import io
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import MultiPartParser


class StrictMultiPartParser(MultiPartParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        body = stream.read() if stream is not None else b""
        result = super().parse(io.BytesIO(body), media_type, parser_context)
        if result.data or result.files:
            return result
        boundary = ""
        for param in (media_type or "").split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.lower() == "boundary":
                boundary = value.strip('"')
        if body.strip() not in (b"", f"--{boundary}--".encode()):
            raise ParseError(
                "The multipart body holds no readable fields; send JSON or form fields."
            )
        return result
