"""RFC 9457 problem details: the one error shape of every route.

Routes and handle methods raise `Problem`; FastAPI's own validation errors and HTTP
errors are turned into the same shape, so clients parse a single format.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from reasoning.schemas import ProblemDetail

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error a client caused or can act on, with the HTTP status it maps to."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers

    def body(self) -> ProblemDetail:
        return ProblemDetail(
            title=HTTPStatus(self.status).phrase, status=self.status, detail=self.detail,
            errors=self.errors,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep every field when Ray carries the error back to a handle caller.
        return (Problem, (self.status, self.detail, self.errors, self.headers))


def invalid(loc: list[Any], msg: str) -> Problem:
    """A 422 for one field."""
    return Problem(422, f"{'.'.join(map(str, loc[1:] or loc))}: {msg}", [{"loc": loc, "msg": msg}])


MAX_ERRORS = 10
"""Errors a 422 lists; it says how many more there were (a request with a million bad
values gets a short answer)."""


def invalid_all(errors: list[dict[str, Any]]) -> Problem:
    """A 422 for many fields: the first MAX_ERRORS of them, and how many were left out."""
    shown, more = errors[:MAX_ERRORS], len(errors) - MAX_ERRORS
    detail = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in shown)
    if more > 0:
        detail += f"; and {more:,} more"
    return Problem(422, detail[:4000], shown)


def _response(
    request: Request, problem: Problem, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The problem's answer, with the token pair the request was refreshed to, if it was
    (serve_app.auth): the old refresh token is spent, so the client needs the new one even
    from an error."""
    fresh = getattr(request.state, "fresh_tokens", None) or {}
    return JSONResponse(
        jsonable_encoder(problem.body(), exclude_none=True), status_code=problem.status,
        media_type=MEDIA_TYPE, headers={**fresh, **(headers or {})} or None,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        out.append({"loc": list(err.get("loc", [])), "msg": msg.removeprefix("Value error, ")})
    return out


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return _response(request, exc, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _response(request, invalid_all(_validation_errors(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return _response(request, Problem(exc.status_code, str(exc.detail)), headers or None)


def _allowed_methods(request: Request) -> str | None:
    """Every method the request's path serves. Starlette's 405 names only the first route
    that matched the path, but GET and POST of one path are separate routes here."""
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods)) or None


def _routes(routes: list[Any]) -> Iterator[Any]:
    """The routes, with those of included routers: FastAPI >= 0.137 keeps an included router
    (Serve includes the ingress's routes so) as one node holding `original_router`."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


WHY: dict[int, str] = {
    400: "Bad Request: a body that cannot be parsed (the token route: not in auth mode none)",
    401: "Unauthorized: no valid bearer token (auth mode `token`)",
    403: "Forbidden: a state change from another web site (auth mode `none`)",
    404: "Not Found: no such id for your tenant",
    409: "Conflict: the job already ended (cancel), or jobs still use the dataset (retype)",
    413: "Content Too Large: the body, the upload's values, or your storage quota",
    415: "Unsupported Media Type: the body is not of the type this route takes",
    421: "Misdirected Request: a Host this service does not answer to (auth mode `none`)",
    422: "Unprocessable Content: a field, value or file that cannot be used, named",
    429: "Too Many Requests: rate limit or queue full; see Retry-After",
    503: "Service Unavailable: starting up; see Retry-After",
}
ALWAYS = (421, 503)
"""What any route may answer: a Host refused (auth mode `none`), or the service starting."""
CALLER = (401, 429)
"""What a route that needs a caller may answer: no valid token, or too many failures."""
BODY = (400, 403, 413, 415, 422)
"""What a route taking a body may answer: unparseable, cross-site, too large, wrong type,
invalid."""


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses a route declares in the OpenAPI document: only those it can
    give (with `ALWAYS`), each with why it happens."""
    return {
        status: {
            "model": ProblemDetail,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
            "description": WHY[status],
        }
        for status in sorted({*statuses, *ALWAYS})
    }
