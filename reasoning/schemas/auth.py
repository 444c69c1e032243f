"""Tenants, the request that exchanges an API key for tokens, and the tokens it returns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TENANT = "default"
"""The one implicit tenant of auth mode `none`, and the owner of data made before tenants."""
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class TokenRequest(BaseModel):
    """`POST /v1/auth/token`: an API key made by `reasoning admin create-key`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"api_key": "rk_live_..."}]})

    api_key: str = Field(min_length=1, max_length=512,
                         description="The key `reasoning admin create-key` printed")


class TokenPair(BaseModel):
    """What a key exchange or a refresh returns (OAuth 2's token response shape)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str
    refresh_expires_in: int = Field(description="seconds the refresh token is valid")
