"""`/v1/auth/token`: an API key exchanged for access and refresh tokens."""

from fastapi import APIRouter, Request, Response

from reasoning.schemas import TokenPair, TokenRequest
from serve_app.auth import NO_STORE, client_address
from serve_app.problems import BODY, responses
from serve_app.routes.dependencies import Served

router = APIRouter(tags=["auth"])


@router.post("/v1/auth/token", responses=responses(400, 401, 429, *BODY))
async def issue_token(
    service: Served, request: TokenRequest, response: Response, http: Request
) -> TokenPair:
    """Exchange an API key (from `reasoning admin create-key`) for access and refresh
    tokens (auth mode `token`). Rate-limited per client address and per key id."""
    response.headers.update(NO_STORE)
    return await service.auth.exchange(request.api_key, client_address(http.scope))
