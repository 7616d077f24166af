"""Strong ETags for JSON reads, and 304 Not Modified for a matching ``If-None-Match``.

The tag is the SHA-256 of the exact JSON body sent, so it changes whenever the representation
does (a correction changes the receipt's fields and its `corrections`; a release changes
`held`), and two replicas compute the same tag for the same data with no shared state.
"""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from pydantic import BaseModel

#: Clients may keep a copy but must revalidate it (cheaply, with If-None-Match) before use.
CACHE_CONTROL = "private, no-cache"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names `etag` (weak comparison, as RFC 9110 says for
    this header: ``W/"x"`` matches ``"x"``); ``*`` matches anything."""
    if not if_none_match:
        return False
    for raw in if_none_match.split(","):
        candidate = raw.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def conditional_json(request: Request, model: BaseModel) -> Response:
    """`model` as JSON with its ETag, or an empty 304 when the client has it already."""
    body = model.model_dump_json().encode()
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
