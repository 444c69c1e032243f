"""The service secret and what is derived from it."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reasoning.service.keyring import Keyring, service_secret


def test_the_secret_is_made_once_private_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: service_secret(path), range(16)))
    assert len(secrets) == 1 and len(secrets.pop()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name != "secret.key"]


def test_sealed_values_open_only_with_the_same_secret(tmp_path: Path) -> None:
    ring = Keyring.at(tmp_path / "a.key")
    sealed = ring.seal({"x-api-key": "secret-123"})
    assert "secret-123" not in sealed
    assert Keyring.at(tmp_path / "a.key").unseal(sealed) == {"x-api-key": "secret-123"}
    with pytest.raises(ValueError, match="does not open"):
        Keyring.at(tmp_path / "b.key").unseal(sealed)


def test_fingerprints_ignore_key_order_and_differ_by_content(tmp_path: Path) -> None:
    ring = Keyring.at(tmp_path / "a.key")
    assert ring.fingerprint({"a": 1, "b": 2}) == ring.fingerprint({"b": 2, "a": 1})
    assert ring.fingerprint({"a": 1}) != ring.fingerprint({"a": 2})
    assert ring.derive("x") != ring.derive("y")


def test_a_damaged_secret_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(b"short")
    with pytest.raises(RuntimeError, match="delete it to reset"):
        service_secret(path)
