"""What a request must show before the service reads its body: who it is, where it comes
from, and what it carries.

`RequestGate` is a pure-ASGI middleware in front of everything else, deciding from the
request line and headers alone:

- auth mode `token`: a route that needs a caller gets a bearer token that verifies (or an
  expired one with a `refresh-token` beside it, which the route's dependency refreshes),
  or a 401 before a byte of the body is read, so a stranger cannot make the service read
  or parse a large body;
- every body goes to a route that takes its type: JSON routes take JSON and the upload
  route takes a multipart form, anything else is a 415 (so a multipart content type
  cannot lift a JSON route's limits, and `text/plain` or a form, which a web page may
  send cross-site without a preflight, never reaches a JSON route);
- auth mode `none`, where nothing else stands between a web page and the service: the
  `Host` must be an address the service answers to (DNS rebinding points a name the
  attacker controls at 127.0.0.1) and a state-changing request from a browser must come
  from the service's own origin (`Origin`, `Sec-Fetch-Site`). The service sends no CORS
  headers, so no other origin can read an answer either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from reasoning.service.auth import AuthError
from serve_app.auth import Authenticator, bearer_token, client_address, unauthorized
from serve_app.limits import problem_response
from serve_app.problems import Problem
from serve_app.runtime import is_loopback

PUBLIC = frozenset({"/healthz", "/v1/auth/token", "/docs", "/docs/oauth2-redirect", "/redoc",
                    "/openapi.json"})
"""Routes anyone may call: the rest need a caller."""
DOCS_ASSETS = "/static-offline-docs/"
"""Swagger UI's and ReDoc's files, served by the service itself for /docs and /redoc."""
UPLOAD = "/v1/datasets"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class GatePolicy:
    """What the gate lets in, from the service's settings."""

    authenticator: Authenticator
    hosts: frozenset[str] = field(default_factory=frozenset)
    """Host names (and addresses) requests may name in auth mode `none`; empty: any."""

    @classmethod
    def of(cls, authenticator: Authenticator, listen_host: str, allowed: str) -> GatePolicy:
        """Loopback names when listening on loopback, plus the listen address itself and the
        allow-list; a wildcard bind with no allow-list leaves the Host unchecked (a proxy
        in front names the service by names the service cannot know)."""
        extra = {name.strip().lower().strip("[]") for name in allowed.split(",") if name.strip()}
        host = listen_host.lower().strip("[]")
        if _wildcard(host) and not extra:
            return cls(authenticator)
        names = {host, *extra}
        if is_loopback(host):
            names |= LOOPBACK_NAMES
        return cls(authenticator, frozenset(names - {"0.0.0.0", "::"}))


def _wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def _hostname(authority: str) -> str:
    """`name:port`, `[v6]:port` or `name` → the name, lower-cased."""
    return (urlsplit(f"//{authority}").hostname or "").lower()


def _media(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() != "0")


class RequestGate:
    """Pure-ASGI middleware; see the module docstring. `policy` is called at the first
    request: inside Ray Serve the settings exist only once the ingress replica does."""

    def __init__(self, app: ASGIApp, policy: Callable[[], GatePolicy]) -> None:
        self.app, self._get_policy = app, policy
        self._policy: GatePolicy | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._policy is None:
            self._policy = self._get_policy()
        refusal = self.refusal(self._policy, scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await problem_response(refusal.status, refusal.detail, refusal.headers)(
            scope, receive, send)

    @staticmethod
    def refusal(policy: GatePolicy, scope: Scope) -> Problem | None:
        """Why the request is refused, or None to let it in."""
        headers = Headers(scope=scope)
        path, method = scope["path"], scope["method"]
        open_mode = policy.authenticator.mode == "none"
        if open_mode and policy.hosts and _hostname(headers.get("host", "")) not in policy.hosts:
            return Problem(421, f"this service does not answer to the host "
                           f"{headers.get('host', '')!r}; allow it with REASONING_ALLOWED_HOSTS")
        if open_mode and method not in SAFE_METHODS and _cross_site(headers, policy):
            return Problem(403, "a state-changing request from another web site was refused: "
                           "this service has no credentials in auth mode 'none', so only its "
                           "own pages and clients that are not browsers may change it")
        public = path in PUBLIC or path.startswith(DOCS_ASSETS)
        if not public and policy.authenticator.store is not None:
            if stranger := _unauthenticated(policy.authenticator, headers,
                                            client_address(scope)):
                return stranger  # a stranger learns nothing else about the request
        if _has_body(headers):
            wanted = "multipart/form-data" if path == UPLOAD else "application/json"
            media = _media(headers)
            if media != wanted and not (wanted == "application/json" and media.endswith("+json")):
                return Problem(415, f"{method} {path} takes {wanted}, not "
                               f"{media or 'an untyped body'}", headers={"Accept-Post": wanted})
        return None


def _cross_site(headers: Headers, policy: GatePolicy) -> bool:
    """A browser says where a request comes from: `Sec-Fetch-Site`, and `Origin` on every
    cross-origin POST. Clients that are not browsers send neither."""
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    if origin == "null":  # sandboxed frames, file: pages, redirects across origins
        return True
    source = urlsplit(origin).hostname or ""
    own = _hostname(headers.get("host", ""))
    return source != own and (not policy.hosts or source not in policy.hosts)


def _unauthenticated(auth: Authenticator, headers: Headers, address: str) -> Problem | None:
    """The token check of serve_app.auth, minus the refresh (which needs the store): a
    signature and claims check, no I/O. A caller that failed too often lately waits."""
    assert auth.store is not None
    try:
        token = bearer_token(headers.get("authorization"))
        auth.throttle.check_address(address)
        auth.store.verify(token)
    except Problem as refused:  # a bad header, or a caller that must wait
        return refused
    except AuthError as err:
        if err.code == "expired" and headers.get("refresh-token"):
            return None  # the route's dependency refreshes it
        auth.throttle.failed(address)
        return unauthorized(err.detail, "invalid_token")
    return None
