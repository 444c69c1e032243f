"""What the service answers besides its resources: problem documents, and its health."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class ProblemDetail(BaseModel):
    """RFC 9457 problem details; `errors` lists each invalid field on a 422."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
