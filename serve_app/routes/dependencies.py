"""What routes declare besides their own fields (the caller, the service, the idempotency
key), and `found`, the store lookup with its 404 that several routes share."""

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from reasoning.service.auth import Principal
from serve_app.auth import authenticated
from serve_app.problems import Problem
from serve_app.service import Service

T = TypeVar("T")


def current_service(request: Request) -> Service:
    """The replica's `Service` (the ingress, which put itself in the app's state: routes are
    functions of their own and cannot reach the Serve replica's `self`)."""
    return request.app.state.service


Served = Annotated[Service, Depends(current_service)]
"""A route's first argument; a Python caller's method call passes the ingress itself."""
Caller = Annotated[Principal, Depends(authenticated)]
"""Every route acts for a principal; Python handle callers pass theirs as `principal=`."""
IdempotencyKey = Annotated[
    str | None,
    Header(min_length=1, max_length=255,
           description="Retrying with the same key and body returns the same job"),
]


async def found(what: str, get: Callable[..., T], item_id: UUID, *args: Any) -> T:
    """`get(str(item_id), *args)`, a store read, off the event loop; a 404 naming the
    `what` when the store has no such item (its KeyError) for this tenant."""
    try:
        return await run_in_threadpool(get, str(item_id), *args)
    except KeyError:
        raise Problem(404, f"{what} {item_id} not found") from None
