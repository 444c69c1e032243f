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

from reasoning.auth import AuthError, CredentialStore, Principal, TokenPair
from serve_app.problems import Problem
from serve_app.settings import Settings

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
IMPLICIT = Principal()


def unauthorized(detail: str, code: str = "invalid_token") -> Problem:
    """A 401 whose WWW-Authenticate tells the client what to fix (RFC 6750)."""
    quoted = detail.replace('"', "'")
    challenge = f'Bearer realm="reasoning", error="{code}", error_description="{quoted}"'
    return Problem(401, detail, headers={"WWW-Authenticate": challenge, **NO_STORE})


def credential_store(settings: Settings) -> CredentialStore:
    return settings.stores().credentials(settings.token_policy())


class Authenticator:
    """Turns a request's two headers into a Principal, or a 401."""

    def __init__(self, settings: Settings) -> None:
        self.mode = settings.auth_mode
        self.store = credential_store(settings) if self.mode == "token" else None

    async def principal(
        self, authorization: str | None, refresh_token: str | None
    ) -> tuple[Principal, TokenPair | None]:
        """The caller, and a fresh token pair when an expired one was refreshed."""
        if self.store is None:
            return IMPLICIT, None
        if not authorization:
            raise unauthorized("this request needs 'authorization: Bearer <access token>'",
                               "invalid_request")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the authorization header must be 'Bearer <access token>'",
                               "invalid_request")
        try:
            return self.store.verify(token.strip()), None  # no I/O: a signature check
        except AuthError as err:
            if err.code != "expired" or not refresh_token:
                raise unauthorized(err.detail, "invalid_token") from None
        try:
            return await run_in_threadpool(self.store.refresh, token.strip(), refresh_token)
        except AuthError as err:
            raise unauthorized(err.detail, "invalid_token") from None

    async def exchange(self, api_key: str) -> TokenPair:
        if self.store is None:
            raise Problem(400, "authentication is off (auth_mode none): no tokens to issue")
        try:
            return await run_in_threadpool(self.store.exchange, api_key)
        except AuthError as err:
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
    principal, fresh = await auth.principal(authorization, refresh_token)
    if fresh is not None:
        response.headers["authorization"] = f"Bearer {fresh.access_token}"
        response.headers["refresh-token"] = fresh.refresh_token
        response.headers.update(NO_STORE)
    return principal
