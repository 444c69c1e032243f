"""Who is calling: the FastAPI dependency every route declares, per the auth mode.

In mode `none` every request acts for the one implicit tenant. In mode `token` a
request carries `authorization: Bearer <access token>`; when that token has expired
and a `refresh-token` header comes with it, the request is still served and the
response carries a fresh pair in the same two headers (with `Cache-Control: no-store`),
so a client only has to copy them back. Python callers holding the app's handle are
inside the Ray cluster's trust boundary and pass their `Principal` themselves.
"""

from typing import Annotated

from fastapi import Header, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from reasoning.schemas import TokenPair
from reasoning.service.auth import AuthError, CredentialStore, Principal
from serve_app.problems import Problem
from serve_app.settings import Settings
from serve_app.throttle import AuthThrottle

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
IMPLICIT = Principal()


def unauthorized(detail: str, code: str = "invalid_token") -> Problem:
    """A 401 whose WWW-Authenticate tells the client what to fix (RFC 6750)."""
    quoted = detail.replace('"', "'")
    challenge = f'Bearer realm="reasoning", error="{code}", error_description="{quoted}"'
    return Problem(401, detail, headers={"WWW-Authenticate": challenge, **NO_STORE})


def bearer_token(authorization: str | None) -> str:
    """The token of an `authorization: Bearer <token>` header, or the 401 saying what is
    wrong with the header."""
    if not authorization:
        raise unauthorized("this request needs 'authorization: Bearer <access token>'",
                           "invalid_request")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the authorization header must be 'Bearer <access token>'",
                           "invalid_request")
    return token.strip()


def client_address(scope: Scope) -> str:
    """The caller's address as this replica sees it (behind a proxy: the proxy's)."""
    client = scope.get("client")
    return client[0] if client else ""


def credential_store(settings: Settings) -> CredentialStore:
    return settings.stores().credentials(settings.token_policy())


class Authenticator:
    """Turns a request's two headers into a Principal, or a 401."""

    def __init__(self, settings: Settings) -> None:
        self.mode = settings.auth_mode
        self.store = credential_store(settings) if self.mode == "token" else None
        self.throttle = AuthThrottle(settings.throttle_limits())

    async def principal(
        self, authorization: str | None, refresh_token: str | None, address: str = ""
    ) -> tuple[Principal, TokenPair | None]:
        """The caller, and a fresh token pair when an expired one was refreshed."""
        if self.store is None:
            return IMPLICIT, None
        token = bearer_token(authorization)
        try:
            return self.store.verify(token), None  # no I/O: a signature check
        except AuthError as err:
            if err.code != "expired" or not refresh_token:
                raise unauthorized(err.detail, "invalid_token") from None
        try:
            return await run_in_threadpool(self.store.refresh, token, refresh_token)
        except AuthError as err:
            self.throttle.failed(address)
            raise unauthorized(err.detail, "invalid_token") from None

    async def exchange(self, api_key: str, address: str = "") -> TokenPair:
        """Tokens for an API key; throttled per address and per key id before the store is
        asked, so a burst of bad keys waits alone."""
        if self.store is None:
            raise Problem(400, "authentication is off (auth_mode none): no tokens to issue")
        key_id = self.store.key_id(api_key)
        self.throttle.check_exchange(address)
        self.throttle.check_key(key_id)
        try:
            return await run_in_threadpool(self.store.exchange, api_key)
        except AuthError as err:
            self.throttle.failed(address, key_id)
            raise unauthorized(err.detail, "invalid_client") from None


async def authenticated(
    request: Request,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
    refresh_token: Annotated[str | None, Header()] = None,
) -> Principal:
    """FastAPI dependency: the request's principal (the ingress put its Authenticator in
    the app's state, since dependencies cannot see the Serve replica's `self`)."""
    auth: Authenticator = request.app.state.authenticator
    principal, fresh = await auth.principal(authorization, refresh_token,
                                            client_address(request.scope))
    if fresh is not None:
        headers = {"authorization": f"Bearer {fresh.access_token}",
                   "refresh-token": fresh.refresh_token, **NO_STORE}
        response.headers.update(headers)
        # The old refresh token is spent: if the route then fails, its error answer must
        # still carry the new pair (problems.py adds these to every error response).
        request.state.fresh_tokens = headers
    return principal
