"""The request gate's rules, decided from the request line and headers alone (the real
service's wiring of them is in tests/integration/test_hostile.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reasoning.service.auth import TokenPolicy
from serve_app.auth import Authenticator
from serve_app.gate import GatePolicy, RequestGate
from serve_app.settings import Settings


def _scope(method: str, path: str, **headers: str) -> dict:
    return {"type": "http", "method": method, "path": path,
            "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]}


def _refused(policy: GatePolicy, method: str, path: str, **headers: str) -> int | None:
    problem = RequestGate.refusal(policy, _scope(method, path, **headers))
    return None if problem is None else problem.status


def _open(listen: str = "127.0.0.1", allowed: str = "") -> GatePolicy:
    return GatePolicy.of(Authenticator(Settings(auth_mode="none")), listen, allowed)


JSON = {"content_type": "application/json", "content_length": "20"}


@pytest.mark.parametrize(("host", "status"), [
    ("127.0.0.1:8000", None), ("localhost:8000", None), ("[::1]:8000", None),
    ("LOCALHOST", None), ("attacker.example:8000", 421), ("127.0.0.1.nip.io:8000", 421),
    ("", 421)])
def test_open_mode_answers_only_to_its_own_host_names(host, status):
    assert _refused(_open(), "GET", "/v1/jobs", host=host) == status


def test_the_host_allow_list_and_a_wildcard_bind():
    assert _refused(_open(allowed="lab.internal"), "GET", "/v1/jobs",
                    host="lab.internal:8000") is None
    # Behind a proxy on 0.0.0.0 the names are the proxy's: unchecked unless listed.
    assert _refused(_open("0.0.0.0"), "GET", "/v1/jobs", host="anything:1") is None
    listed = _open("0.0.0.0", "reasoning.example")
    assert _refused(listed, "GET", "/v1/jobs", host="reasoning.example") is None
    assert _refused(listed, "GET", "/v1/jobs", host="other.example") == 421


@pytest.mark.parametrize(("headers", "status"), [
    ({"origin": "https://attacker.example"}, 403),
    ({"origin": "null"}, 403),
    ({"sec_fetch_site": "cross-site"}, 403),
    ({"origin": "http://127.0.0.1:8000"}, None),  # the service's own pages (/docs)
    ({"sec_fetch_site": "same-origin", "origin": "http://127.0.0.1:8000"}, None),
    ({}, None),  # curl, httpx, the CLI: no browser headers at all
])
def test_open_mode_refuses_state_changes_from_other_sites(headers, status):
    policy = _open()
    assert _refused(policy, "POST", "/v1/reasoning/fit", host="127.0.0.1:8000",
                    **JSON, **headers) == status
    # Reading is not changing: a GET with a foreign origin gets an answer it cannot read
    # (no CORS headers), so it is not refused here.
    assert _refused(policy, "GET", "/v1/jobs", host="127.0.0.1:8000", **headers) is None


@pytest.mark.parametrize(("path", "content_type", "status"), [
    ("/v1/reasoning/fit", "text/plain", 415),  # what a page's fetch() sends unpreflighted
    ("/v1/reasoning/fit", "application/x-www-form-urlencoded", 415),
    ("/v1/models/00000000-0000-0000-0000-000000000001/predict", "multipart/form-data; b=x",
     415),  # a form type cannot lift a JSON route's limits
    ("/v1/reasoning/fit", "", 415),
    ("/v1/datasets", "application/json", 415),
    ("/v1/reasoning/fit", "application/json; charset=utf-8", None),
    ("/v1/reasoning/fit", "application/merge-patch+json", None),
    ("/v1/datasets", "multipart/form-data; boundary=x", None),
])
def test_a_body_goes_only_to_a_route_that_takes_its_type(path, content_type, status):
    headers = {"host": "127.0.0.1", "content_length": "20"}
    if content_type:
        headers["content_type"] = content_type
    assert _refused(_open(), "POST", path, **headers) == status
    if status == 415:
        problem = RequestGate.refusal(_open(), _scope("POST", path, **headers))
        assert problem is not None and problem.headers and "Accept-Post" in problem.headers


def test_a_request_without_a_body_needs_no_type():
    assert _refused(_open(), "POST", "/v1/jobs/x/cancel", host="127.0.0.1",
                    content_length="0") is None
    assert _refused(_open(), "POST", "/v1/reasoning/fit", host="127.0.0.1",
                    transfer_encoding="chunked") == 415


@pytest.fixture
def token_gate(tmp_path: Path) -> tuple[GatePolicy, Authenticator]:
    settings = Settings(auth_mode="token", home=str(tmp_path / "home"))
    settings.stores().upgrade()
    auth = Authenticator(settings)
    return GatePolicy.of(auth, "127.0.0.1", ""), auth


def test_token_mode_decides_identity_before_the_body(token_gate):
    policy, auth = token_gate
    assert auth.store is not None
    _, key = auth.store.create_key("team-a")
    pair = auth.store.exchange(key)
    big = {"content_type": "application/json", "content_length": str(30 * 2**20)}
    unauth = RequestGate.refusal(policy, _scope("POST", "/v1/reasoning/fit", **big))
    assert unauth is not None and unauth.status == 401
    assert "Bearer" in (unauth.headers or {})["WWW-Authenticate"]
    assert _refused(policy, "POST", "/v1/reasoning/fit", authorization="Bearer nonsense",
                    **big) == 401
    assert _refused(policy, "POST", "/v1/reasoning/fit",
                    authorization=f"Bearer {pair.access_token}", **big) is None
    # Anyone may ask for a token, check health or read the API's description.
    for path in ("/v1/auth/token", "/healthz", "/openapi.json", "/docs"):
        method = "POST" if path == "/v1/auth/token" else "GET"
        assert _refused(policy, method, path,
                        **(JSON if method == "POST" else {})) is None
    # No Host or Origin rules in token mode: credentials are what counts.
    assert _refused(policy, "GET", "/v1/jobs", host="anything.example",
                    authorization=f"Bearer {pair.access_token}") is None


def test_an_expired_token_passes_only_with_its_refresh_token(token_gate):
    policy, auth = token_gate
    assert auth.store is not None
    now, rules = int(time.time()), TokenPolicy()
    expired = auth.store.sign({"iss": rules.issuer, "aud": rules.audience, "sub": "team-a",
                               "iat": now - 7200, "exp": now - 60})
    assert _refused(policy, "GET", "/v1/jobs", authorization=f"Bearer {expired}") == 401
    # The route's dependency refreshes it (and refuses a bad refresh token).
    assert _refused(policy, "GET", "/v1/jobs", authorization=f"Bearer {expired}",
                    refresh_token="rrt_whatever") is None
