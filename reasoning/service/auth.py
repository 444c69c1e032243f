"""Tenants, API keys and tokens: who is calling, decided without Ray or HTTP.

- An API key (`rsk_<key id>.<secret>`) is made by `reasoning admin create-key`, shown
  once, and stored as a SHA-256 hash (the secret is 256 random bits, so a slow hash
  would add nothing); it is compared in constant time.
- `exchange` turns a key into a short-lived access token (a JWT: HS256 only, with
  `exp`, `iat`, `iss`, `aud` and `sub` = tenant, all required) and an opaque refresh
  token (`rrt_<id>.<secret>`, also stored hashed).
- `refresh` rotates: a refresh token works once, and a used one presented again
  revokes every token descended from the same key exchange (its family), since one
  of the two presenters has stolen it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, insert, select, update

from reasoning.schemas import DEFAULT_TENANT, TENANT_PATTERN, TokenPair
from reasoning.service.database import api_keys, reading, refresh_tokens, writing
from reasoning.service.keyring import Keyring

ALGORITHM = "HS256"
CLOCK_SKEW = 60
"""Seconds a token's `iat` may lie ahead of this service's clock (another replica's)."""

class Principal(BaseModel):
    """Who a request acts for; every dataset, model and job belongs to one tenant."""

    model_config = ConfigDict(frozen=True)

    tenant: str = Field(DEFAULT_TENANT, pattern=TENANT_PATTERN)


class AuthError(Exception):
    """Missing or bad credentials; `code` is the RFC 6750 error for WWW-Authenticate."""

    def __init__(self, detail: str, code: str = "invalid_token") -> None:
        super().__init__(detail)
        self.detail, self.code = detail, code


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str = "reasoning-service"
    audience: str = "reasoning-api"
    access_ttl: int = 900
    refresh_ttl: int = 14 * 24 * 3600
    reuse_grace: float = 10.0
    """Seconds after its first use in which a refresh token presented again buys another
    pair instead of revoking its family: two requests of one client refreshing the same
    expired token at once are not an attack (RFC 9700, 4.14.2). 0: no grace."""


def check_tenant(name: str) -> str:
    if not re.fullmatch(TENANT_PATTERN, name):
        raise ValueError(
            f"tenant {name!r} is not a valid name: lowercase letters, digits, '-' and '_',"
            " starting with a letter or digit, at most 63 characters"
        )
    return name


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(credential: str, prefix: str) -> tuple[str, str]:
    """(id, secret) of `<prefix><id>.<secret>`; ("", "") when the shape is wrong."""
    if not credential.startswith(prefix) or "." not in credential:
        return "", ""
    ident, _, secret = credential.removeprefix(prefix).partition(".")
    return ident, secret


class CredentialStore:
    """API keys and refresh tokens in the metadata store; access tokens are stateless JWTs.

    Each rule holds with many replicas on one database: a refresh token is marked used
    by an UPDATE that only an unused token passes, so of two presenters racing with the
    same token exactly one wins, and the other is treated as the reuse it is.
    """

    KEY_PREFIX, REFRESH_PREFIX = "rsk_", "rrt_"

    def __init__(
        self,
        engine: Engine,
        keyring: Keyring,
        policy: TokenPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine, self.policy = engine, policy or TokenPolicy()
        self.clock = clock
        """Seconds since the epoch; every expiry is judged by it (tests move it on)."""
        self._signing_key = keyring.derive("access-tokens")

    # -- keys (the admin CLI) ------------------------------------------------------------

    def create_key(self, tenant: str) -> tuple[str, str]:
        """A new API key for `tenant` (created by its first key): (key id, the key)."""
        check_tenant(tenant)
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with writing(self._engine) as db:
            db.execute(insert(api_keys).values(
                key_id=key_id, tenant=tenant, hash=_digest(secret), created_at=self.clock()))
        return key_id, f"{self.KEY_PREFIX}{key_id}.{secret}"

    def revoke_key(self, key_id: str) -> bool:
        """Revoke a key and every refresh token it led to; access tokens run out on their own."""
        with writing(self._engine) as db:
            changed = db.execute(
                update(api_keys)
                .where((api_keys.c.key_id == key_id) & api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
            db.execute(update(refresh_tokens).where(refresh_tokens.c.key_id == key_id)
                       .values(revoked=1))
            return changed.rowcount == 1

    def list_keys(self) -> list[dict[str, Any]]:
        query = select(api_keys.c.key_id, api_keys.c.tenant, api_keys.c.created_at,
                       api_keys.c.revoked_at).order_by(api_keys.c.created_at)
        with reading(self._engine) as db:
            return [dict(r) for r in db.execute(query).mappings()]

    # -- tokens --------------------------------------------------------------------------

    @classmethod
    def key_id(cls, api_key: str) -> str:
        """The id part of an API key ("" when it is not shaped like one): not a secret."""
        return _split(api_key, cls.KEY_PREFIX)[0]

    def exchange(self, api_key: str) -> TokenPair:
        """Access and refresh tokens for a valid, unrevoked API key."""
        key_id, secret = _split(api_key, self.KEY_PREFIX)
        with writing(self._engine) as db:
            row = db.execute(
                select(api_keys.c.tenant, api_keys.c.hash, api_keys.c.revoked_at)
                .where(api_keys.c.key_id == key_id)
            ).mappings().first()
            # Compare even for an unknown id, so timing does not tell which ids exist.
            stored = row["hash"] if row is not None else _digest("")
            if not hmac.compare_digest(stored, _digest(secret)) or row is None:
                raise AuthError("the API key is not valid", "invalid_client")
            if row["revoked_at"] is not None:
                raise AuthError("the API key has been revoked", "invalid_client")
            return self._issue(db, row["tenant"], key_id, secrets.token_hex(16))

    def verify(self, access_token: str) -> Principal:
        """The token's principal; AuthError says why not (`expired` when only time is up)."""
        claims = self._decode(access_token, verify_exp=True)
        return Principal(tenant=claims["sub"])

    def refresh(self, access_token: str, refresh_token: str) -> tuple[Principal, TokenPair]:
        """Rotate: the expired access token and its refresh token buy a fresh pair, once."""
        tenant = self._decode(access_token, verify_exp=False)["sub"]
        token_id, secret = _split(refresh_token, self.REFRESH_PREFIX)
        now, reused = self.clock(), False
        with writing(self._engine) as db:
            row = db.execute(
                select(refresh_tokens, api_keys.c.revoked_at.label("key_revoked"))
                .join(api_keys, api_keys.c.key_id == refresh_tokens.c.key_id)
                .where(refresh_tokens.c.token_id == token_id)
            ).mappings().first()
            stored = row["hash"] if row is not None else _digest("")
            if not hmac.compare_digest(stored, _digest(secret)) or row is None:
                raise AuthError("the refresh token is not valid")
            if row["tenant"] != tenant:
                raise AuthError("the refresh token belongs to another principal")
            if row["revoked"] or row["key_revoked"] is not None:
                raise AuthError("the refresh token has been revoked")
            if row["used_at"] is None and row["expires_at"] <= now:
                raise AuthError("the refresh token has expired")
            first_use = row["used_at"] is None and db.execute(
                update(refresh_tokens)
                .where((refresh_tokens.c.token_id == token_id)
                       & refresh_tokens.c.used_at.is_(None))
                .values(used_at=now)
            ).rowcount == 1
            # A token another request marked used after this one read it was used just now
            # (and that request's clock may have read a little later than this one's).
            used_at = row["used_at"] if row["used_at"] is not None else now
            if first_use or max(0.0, now - used_at) < self.policy.reuse_grace:
                pair = self._issue(db, tenant, row["key_id"], row["family_id"])
            else:
                # Reuse: someone holds a copy. Revoke the family so neither copy works (and
                # commit that before refusing: an exception here would roll it back).
                db.execute(update(refresh_tokens)
                           .where(refresh_tokens.c.family_id == row["family_id"])
                           .values(revoked=1))
                reused = True
        if reused:
            raise AuthError("the refresh token was already used; its family is revoked")
        return Principal(tenant=tenant), pair

    def _issue(self, db: Connection, tenant: str, key_id: str, family: str) -> TokenPair:
        now, policy = int(self.clock()), self.policy
        claims = {
            "iss": policy.issuer, "aud": policy.audience, "sub": tenant,
            "iat": now, "exp": now + policy.access_ttl, "jti": secrets.token_hex(8),
        }
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        db.execute(insert(refresh_tokens).values(
            token_id=token_id, family_id=family, key_id=key_id, tenant=tenant,
            hash=_digest(secret), expires_at=now + policy.refresh_ttl, used_at=None, revoked=0,
        ))
        return TokenPair(
            access_token=self.sign(claims),
            expires_in=policy.access_ttl,
            refresh_token=f"{self.REFRESH_PREFIX}{token_id}.{secret}",
            refresh_expires_in=policy.refresh_ttl,
        )

    def sign(self, claims: dict[str, Any]) -> str:
        """A token signed with this service's key (tests also use it to forge expired ones)."""
        return jwt.encode(claims, self._signing_key, algorithm=ALGORITHM)

    def _decode(self, token: str, *, verify_exp: bool) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                self._signing_key,
                algorithms=[ALGORITHM],  # pinned: never what the token's header says
                audience=self.policy.audience,
                issuer=self.policy.issuer,
                # PyJWT judges time by the wall clock; the store judges it by its own
                # clock (below), so expiry is one rule whoever asks.
                options={"require": ["exp", "iat", "iss", "aud", "sub"],
                         "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as err:
            raise AuthError(f"the access token is not valid: {err}") from None
        exp, iat = claims["exp"], claims["iat"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat)):
            raise AuthError("the access token is not valid: exp and iat must be numbers")
        now = self.clock()
        if iat > now + CLOCK_SKEW:
            raise AuthError("the access token is not valid: it was issued in the future")
        if verify_exp and exp <= now:
            raise AuthError("the access token has expired", "expired")
        if not re.fullmatch(TENANT_PATTERN, str(claims["sub"])):
            raise AuthError("the access token names no valid tenant")
        return claims
