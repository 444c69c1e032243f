"""The service's one secret, and what is derived from it: token signing and sealed values.

The secret is 32 random bytes in a file (mode 0600; `<home>/secret.key` by default, made
on first use; on a cluster `REASONING_SECRET_KEY_FILE`, a secret mounted on every host).
Every replica and actor reads the same bytes, so tokens signed by one replica verify on
another and a job's sealed teacher headers open in whichever runner re-runs it.
Purpose-specific keys are derived with HMAC so one key never serves two uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

SECRET_BYTES = 32


def service_secret(path: Path) -> bytes:
    """The secret at `path`, created atomically (first writer wins) if missing.

    The file appears whole or not at all (written aside, then hard-linked into place), so a
    file of the wrong size is damage, not a writer caught half-way.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        _create(path)
        data = path.read_bytes()
    if len(data) != SECRET_BYTES:
        raise RuntimeError(f"{path} does not hold a {SECRET_BYTES}-byte secret; delete it to reset")
    return data


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(SECRET_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process got there first: theirs is kept
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


class Keyring:
    """Keys derived from the service secret, one per purpose."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._fernet = Fernet(base64.urlsafe_b64encode(self.derive("sealed-values")))

    @classmethod
    def at(cls, path: Path) -> Keyring:
        return cls(service_secret(path))

    def derive(self, purpose: str) -> bytes:
        return hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()

    def seal(self, value: Any) -> str:
        """Encrypt and authenticate a JSON-able value (e.g. a job's teacher headers)."""
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def unseal(self, token: str) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ValueError("sealed value does not open with this service's secret") from None

    def fingerprint(self, value: Any) -> str:
        """A keyed digest of a JSON-able value: equal values, equal digests, nothing leaked."""
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
        return hmac.new(self.derive("fingerprint"), canonical.encode(), hashlib.sha256).hexdigest()
