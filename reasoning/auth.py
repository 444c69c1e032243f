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
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field

from reasoning.keyring import Keyring
from reasoning.schemas import DEFAULT_TENANT, TENANT_PATTERN

ALGORITHM = "HS256"
CLOCK_SKEW = 60
"""Seconds a token's `iat` may lie ahead of this service's clock (another replica's)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    hash TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_family ON refresh_tokens (family_id);
"""


class Principal(BaseModel):
    """Who a request acts for; every dataset, model and job belongs to one tenant."""

    model_config = ConfigDict(frozen=True)

    tenant: str = Field(DEFAULT_TENANT, pattern=TENANT_PATTERN)


class AuthError(Exception):
    """Missing or bad credentials; `code` is the RFC 6750 error for WWW-Authenticate."""

    def __init__(self, detail: str, code: str = "invalid_token") -> None:
        super().__init__(detail)
        self.detail, self.code = detail, code


class TokenPair(BaseModel):
    """What a key exchange or a refresh returns (OAuth 2's token response shape)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str
    refresh_expires_in: int = Field(description="seconds the refresh token is valid")


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str = "reasoning-service"
    audience: str = "reasoning-api"
    access_ttl: int = 900
    refresh_ttl: int = 14 * 24 * 3600


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
    """API keys and refresh tokens in one SQLite file; access tokens are stateless JWTs."""

    KEY_PREFIX, REFRESH_PREFIX = "rsk_", "rrt_"

    def __init__(
        self,
        path: Path,
        keyring: Keyring,
        policy: TokenPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path, self.policy = path, policy or TokenPolicy()
        self.clock = clock
        """Seconds since the epoch; every expiry is judged by it (tests move it on)."""
        self._signing_key = keyring.derive("access-tokens")
        db = sqlite3.connect(path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: set once, on creation
            db.executescript(_SCHEMA)
        finally:
            db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One short transaction; a connection each, so threads and processes can share."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # -- keys (the admin CLI) ------------------------------------------------------------

    def create_key(self, tenant: str) -> tuple[str, str]:
        """A new API key for `tenant` (created by its first key): (key id, the key)."""
        check_tenant(tenant)
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self._tx() as db:
            db.execute(
                "INSERT INTO api_keys (key_id, tenant, hash, created_at) VALUES (?, ?, ?, ?)",
                (key_id, tenant, _digest(secret), self.clock()),
            )
        return key_id, f"{self.KEY_PREFIX}{key_id}.{secret}"

    def revoke_key(self, key_id: str) -> bool:
        """Revoke a key and every refresh token it led to; access tokens run out on their own."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (self.clock(), key_id),
            )
            db.execute("UPDATE refresh_tokens SET revoked = 1 WHERE key_id = ?", (key_id,))
            return cur.rowcount == 1

    def list_keys(self) -> list[dict[str, Any]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT key_id, tenant, created_at, revoked_at FROM api_keys ORDER BY created_at"
            ).fetchall()
        return [dict(r) for r in rows]

    # -- tokens --------------------------------------------------------------------------

    def exchange(self, api_key: str) -> TokenPair:
        """Access and refresh tokens for a valid, unrevoked API key."""
        key_id, secret = _split(api_key, self.KEY_PREFIX)
        with self._tx() as db:
            row = db.execute(
                "SELECT tenant, hash, revoked_at FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
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
        with self._tx() as db:
            row = db.execute(
                "SELECT r.*, k.revoked_at AS key_revoked FROM refresh_tokens r"
                " JOIN api_keys k ON k.key_id = r.key_id WHERE r.token_id = ?",
                (token_id,),
            ).fetchone()
            stored = row["hash"] if row is not None else _digest("")
            if not hmac.compare_digest(stored, _digest(secret)) or row is None:
                raise AuthError("the refresh token is not valid")
            if row["tenant"] != tenant:
                raise AuthError("the refresh token belongs to another principal")
            if row["revoked"] or row["key_revoked"] is not None:
                raise AuthError("the refresh token has been revoked")
            if row["used_at"] is not None:
                # Reuse: someone holds a copy. Revoke the family so neither copy works (and
                # commit that before refusing: an exception here would roll it back).
                db.execute(
                    "UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ?",
                    (row["family_id"],),
                )
                reused = True
            elif row["expires_at"] <= now:
                raise AuthError("the refresh token has expired")
            else:
                db.execute("UPDATE refresh_tokens SET used_at = ? WHERE token_id = ?",
                           (now, token_id))
                pair = self._issue(db, tenant, row["key_id"], row["family_id"])
        if reused:
            raise AuthError("the refresh token was already used; its family is revoked")
        return Principal(tenant=tenant), pair

    def _issue(self, db: sqlite3.Connection, tenant: str, key_id: str, family: str) -> TokenPair:
        now, policy = int(self.clock()), self.policy
        claims = {
            "iss": policy.issuer, "aud": policy.audience, "sub": tenant,
            "iat": now, "exp": now + policy.access_ttl, "jti": secrets.token_hex(8),
        }
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        db.execute(
            "INSERT INTO refresh_tokens (token_id, family_id, key_id, tenant, hash, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (token_id, family, key_id, tenant, _digest(secret), now + policy.refresh_ttl),
        )
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
