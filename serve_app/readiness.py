"""The service's own answer while it starts: a 503 problem with Retry-After.

Serve routes requests to the ingress as soon as its replica's constructor returns; on a
first start the JobManager's pool is not up yet, and the replica waits for it in a thread
(`ReasoningIngress._await_pool`). Until then every request gets this answer, which
clients and load balancers know how to wait on, rather than a hang or Serve's plain-text
404 for a route it does not know yet.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from serve_app.limits import problem_response

RETRY_AFTER = 2
"""Seconds a request refused while starting is told to wait."""


class Readiness:
    """Pure-ASGI middleware, outermost: a 503 until `ready()` says the app can serve; then
    out of the way (one call of `ready` per request until it has said yes once)."""

    def __init__(self, app: ASGIApp, ready: Callable[[], str | None]) -> None:
        self.app, self._ready = app, ready
        self._up = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._up or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        waiting = self._ready()
        if waiting is None:
            self._up = True
            await self.app(scope, receive, send)
            return
        await problem_response(503, waiting, {"Retry-After": str(RETRY_AFTER)})(
            scope, receive, send)
