"""Request-body limits, counted on the stream: a header can lie or be absent.

`BodyLimit` is a pure-ASGI middleware. It counts the bytes that arrive through
`receive()` and answers 413 problem+json once a body passes its limit, whatever
Content-Length said (a declared length over the limit is refused before reading). JSON
bodies get `BodyLimits.json_bytes`, multipart uploads `upload_bytes` plus room for the
form's framing (the file's own bytes are counted exactly by serve_app.uploads). A JSON
body nested deeper than `json_depth` is a 422: Python's json parser recurses, and a deep
enough body would otherwise become a RecursionError, a 500, or a crash when pickled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.problems import MEDIA_TYPE, Problem

FORM_OVERHEAD = 64 * 1024
"""Bytes a multipart body may carry beyond the file: boundaries, part headers, `name`."""
DEFAULT_JSON_DEPTH = 64
SMALL_BODIES = {"/v1/auth/token": 4096}
"""Routes anyone may call take small bodies only: an API key, not megabytes to parse."""


@dataclass(frozen=True)
class BodyLimits:
    """How much a request body may hold."""

    json_bytes: int
    upload_bytes: int
    json_depth: int = DEFAULT_JSON_DEPTH

    def for_content_type(self, content_type: str) -> tuple[int, str]:
        """The byte limit of a body of this type (uploads are multipart), and the 413's text."""
        if content_type.lower().startswith("multipart/"):
            return self.upload_bytes + FORM_OVERHEAD, (
                f"the upload is larger than the limit of {self.upload_bytes:,} bytes "
                f"(plus {FORM_OVERHEAD:,} for the form)"
            )
        return self.json_bytes, (
            f"the request body is larger than the limit of {self.json_bytes:,} bytes"
        )


class BodyTooLarge(HTTPException):
    """Raised from `receive()` once the body passes its limit; handled as a 413 problem."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


class JsonTooDeep(HTTPException):
    """Raised from `receive()` when a JSON body nests deeper than the limit: a 422."""

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(
            422, f"the JSON body is nested {depth:,} levels deep; at most {limit} are accepted"
        )


# A JSON string, escapes included (unrolled so the regex engine never backtracks).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_CHUNK = 1 << 20


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, without parsing it.

    Strings are removed first (brackets inside them do not nest); the rest is a running
    sum of +1 per opener and -1 per closer, in chunks so memory stays bounded.
    """
    brackets = np.frombuffer(_STRING.sub(b"", body).translate(None, _NOT_BRACKETS), np.uint8)
    level = peak = 0
    for start in range(0, len(brackets), _CHUNK):
        chunk = brackets[start : start + _CHUNK]
        steps = np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1)
        levels = level + np.cumsum(steps, dtype=np.int64)
        peak, level = max(peak, int(levels.max())), int(levels[-1])
    return peak


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The problem+json answer a middleware sends itself (before the app is reached)."""
    body = jsonable_encoder(Problem(status, detail).body(), exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _is_json(content_type: str) -> bool:
    """What FastAPI may parse as JSON: a json media type, or none at all."""
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media == "application/json" or media.endswith("+json")


class BodyLimit:
    """Pure-ASGI middleware capping request bodies; see the module docstring.

    `limits` is called once, at the first request: inside Ray Serve the settings exist
    only after the ingress replica is constructed, after this middleware was declared.
    """

    def __init__(self, app: ASGIApp, limits: Callable[[], BodyLimits]) -> None:
        self.app, self._get_limits = app, limits
        self._limits: BodyLimits | None = None

    @property
    def limits(self) -> BodyLimits:
        if self._limits is None:
            self._limits = self._get_limits()
        return self._limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "")
        limit, too_large = self.limits.for_content_type(content_type)
        if scope["path"] in SMALL_BODIES:
            limit = SMALL_BODIES[scope["path"]]
            too_large = f"{scope['path']} takes at most {limit:,} bytes"
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await problem_response(413, too_large)(scope, receive, send)
            return
        counter = _CountingReceive(
            receive, limit, too_large, self.limits.json_depth, _is_json(content_type)
        )
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counter, send_tracking)
        except (BodyTooLarge, JsonTooDeep) as err:
            # Normally the app's HTTPException handler answers; this catches the rest.
            if started:
                raise
            await problem_response(err.status_code, err.detail)(scope, receive, send)


class _CountingReceive:
    """`receive()` that counts body bytes and, for JSON, checks the depth at the end."""

    def __init__(
        self, receive: Receive, limit: int, too_large: str, depth: int, is_json: bool
    ) -> None:
        self.receive, self.limit, self.too_large, self.depth = receive, limit, too_large, depth
        self.size = 0
        self.chunks: list[bytes] | None = [] if is_json else None

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] != "http.request":
            return message
        body = message.get("body", b"")
        self.size += len(body)
        if self.size > self.limit:
            raise BodyTooLarge(self.too_large)
        if self.chunks is not None:
            self.chunks.append(body)
            if not message.get("more_body", False):
                whole, self.chunks = b"".join(self.chunks), None
                found = json_depth(whole)
                if found > self.depth:
                    raise JsonTooDeep(found, self.depth)
        return message
