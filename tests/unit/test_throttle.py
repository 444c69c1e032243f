"""Authentication rate limits: per client address and per API key id, each with a 429
saying how long to wait."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from serve_app.auth import Authenticator
from serve_app.gate import GatePolicy, RequestGate
from serve_app.problems import Problem
from serve_app.settings import Settings
from serve_app.throttle import AuthThrottle, ThrottleLimits


def _status(call) -> int | None:
    try:
        call()
    except Problem as problem:
        assert problem.status == 429 and int(problem.headers["Retry-After"]) >= 1
        return problem.status
    return None


def test_token_requests_per_address_are_limited():
    throttle = AuthThrottle(ThrottleLimits(exchanges_per_address=3))
    assert [_status(lambda: throttle.check_exchange("10.0.0.1")) for _ in range(4)] == [
        None, None, None, 429]
    assert _status(lambda: throttle.check_exchange("10.0.0.2")) is None  # another caller


def test_failures_per_address_make_that_address_wait():
    throttle = AuthThrottle(ThrottleLimits(failures_per_address=2))
    throttle.failed("10.0.0.1")
    assert _status(lambda: throttle.check_address("10.0.0.1")) is None
    throttle.failed("10.0.0.1")
    assert _status(lambda: throttle.check_address("10.0.0.1")) == 429
    assert _status(lambda: throttle.check_exchange("10.0.0.1")) == 429
    assert _status(lambda: throttle.check_address("10.0.0.9")) is None


def test_failures_naming_a_key_make_that_key_wait_wherever_they_come_from():
    throttle = AuthThrottle(ThrottleLimits(failures_per_key=3))
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        throttle.failed(address, "abc123")
    assert _status(lambda: throttle.check_key("abc123")) == 429
    assert _status(lambda: throttle.check_key("other")) is None


@pytest.fixture
def token_auth(tmp_path: Path) -> Authenticator:
    settings = Settings(auth_mode="token", home=str(tmp_path / "home"),
                        key_failures_per_minute=3, auth_failures_per_minute=1000)
    settings.stores().upgrade()
    return Authenticator(settings)


def test_a_guessed_key_id_is_locked_even_for_its_right_secret(token_auth):
    assert token_auth.store is not None
    key_id, key = token_auth.store.create_key("team-a")
    wrong = key[: -4] + "XXXX"
    for _ in range(3):
        with pytest.raises(Problem) as refused:
            asyncio.run(token_auth.exchange(wrong, "10.0.0.1"))
        assert refused.value.status == 401
    with pytest.raises(Problem) as locked:
        asyncio.run(token_auth.exchange(key, "10.0.0.7"))
    assert locked.value.status == 429 and "for this API key" in locked.value.detail
    # Another tenant's key, from the same address, is not held up.
    _, other = token_auth.store.create_key("team-b")
    assert asyncio.run(token_auth.exchange(other, "10.0.0.1")).access_token


def test_the_gate_answers_429_to_an_address_that_failed_too_often(tmp_path: Path):
    settings = Settings(auth_mode="token", home=str(tmp_path / "home"),
                        auth_failures_per_minute=2)
    settings.stores().upgrade()
    auth = Authenticator(settings)
    policy = GatePolicy.of(auth, "127.0.0.1", "")
    scope = {"type": "http", "method": "GET", "path": "/v1/jobs", "client": ("10.0.0.5", 1),
             "headers": [(b"authorization", b"Bearer forged")]}
    statuses = [RequestGate.refusal(policy, scope).status for _ in range(3)]
    assert statuses == [401, 401, 429]
