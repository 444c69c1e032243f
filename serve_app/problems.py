"""RFC 9457 problem details: the one error shape of every route.

Routes and handle methods raise `Problem`; FastAPI's own validation errors and HTTP
errors are turned into the same shape, so clients parse a single format.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reasoning.schemas import ProblemDetail

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error a client caused or can act on, with the HTTP status it maps to."""

    def __init__(
        self, status: int, detail: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors

    def body(self) -> ProblemDetail:
        return ProblemDetail(
            title=HTTPStatus(self.status).phrase, status=self.status, detail=self.detail,
            errors=self.errors,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep every field when Ray carries the error back to a handle caller.
        return (Problem, (self.status, self.detail, self.errors))


def invalid(loc: list[Any], msg: str) -> Problem:
    """A 422 for one field."""
    return Problem(422, f"{'.'.join(map(str, loc[1:] or loc))}: {msg}", [{"loc": loc, "msg": msg}])


def _response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(problem.body(), exclude_none=True), status_code=problem.status,
        media_type=MEDIA_TYPE, headers=headers,
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
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return _response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors
        )
        return _response(Problem(422, detail[:2000], errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _response(Problem(exc.status_code, str(exc.detail)), getattr(exc, "headers", None))


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": ProblemDetail,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
        "description": HTTPStatus(status).phrase,
    }
    for status in (404, 409, 413, 422)
}
"""Declared on every route so the OpenAPI document shows the errors it really returns."""
