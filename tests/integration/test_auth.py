"""Auth mode `token` over HTTP: keys, access and refresh tokens, and tenant isolation."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest

from reasoning.service.auth import CredentialStore, TokenPolicy
from tests.integration.conftest import TENANT
from tests.integration.service import Service, admin, create_key, login

PUBLIC = {"/healthz", "/v1/auth/token", "/openapi.json", "/docs", "/docs/oauth2-redirect",
          "/redoc"}


@pytest.fixture(scope="module")
def store(service: Service) -> CredentialStore:
    """The service's own credential store, to forge tokens an attacker could not."""
    return service.stores.credentials(TokenPolicy())


def _claims(**override: object) -> dict:
    now = int(time.time())
    policy = TokenPolicy()
    return {"iss": policy.issuer, "aud": policy.audience, "sub": TENANT, "iat": now - 100,
            "exp": now + 600, **override}


def _unauthorized(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="reasoning"')
    return challenge


def _get(service: Service, path: str, token: str | None = None, **headers: str):
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.get(f"{service.url}{path}", headers=headers, timeout=30)


def test_every_route_but_the_public_ones_needs_a_token(service):
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]
    checked = 0
    for path, operations in paths.items():
        if path in PUBLIC:
            continue
        concrete = path.replace("{dataset_id}", str(uuid.uuid4())).replace(
            "{job_id}", str(uuid.uuid4())).replace("{model_id}", str(uuid.uuid4()))
        for method in operations:
            response = httpx.request(method.upper(), f"{service.url}{concrete}", json={},
                                     timeout=30)
            challenge = _unauthorized(response)
            assert 'error="invalid_request"' in challenge, (method, path)
            checked += 1
    assert checked >= 12
    assert httpx.get(f"{service.url}/healthz").status_code == 200


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-jwt",
                                    "Token abc"])
def test_malformed_authorization_is_a_401(service, header):
    _unauthorized(_get(service, "/v1/datasets", authorization=header))


def test_tokens_must_be_signed_by_the_service_with_the_pinned_algorithm(service, store):
    key = service.stores.keyring().derive("access-tokens")
    forged = {
        "alg none": jwt.encode(_claims(), None, algorithm="none"),
        "other algorithm": jwt.encode(_claims(), key * 2, algorithm="HS512"),
        "other key": jwt.encode(_claims(), b"k" * 32, algorithm="HS256"),
        "other audience": store.sign(_claims(aud="someone-else")),
        "other issuer": store.sign(_claims(iss="someone-else")),
        "no expiry": store.sign({k: v for k, v in _claims().items() if k != "exp"}),
        "bad tenant": store.sign(_claims(sub="../etc")),
    }
    for why, token in forged.items():
        response = _get(service, "/v1/datasets", token)
        assert response.status_code == 401, why
    assert _get(service, "/v1/datasets", store.sign(_claims())).status_code == 200


def test_key_exchange(service):
    bad = httpx.post(f"{service.url}/v1/auth/token", json={"api_key": "rsk_nope.nope"})
    assert 'error="invalid_client"' in _unauthorized(bad)
    good = httpx.post(f"{service.url}/v1/auth/token", json={"api_key": service.keys[TENANT]})
    assert good.status_code == 200 and good.headers["cache-control"] == "no-store"
    pair = good.json()
    assert pair["token_type"] == "bearer" and pair["expires_in"] == 3600
    assert pair["refresh_token"].startswith("rrt_")
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["sub"] == TENANT and {"exp", "iat", "iss", "aud"} <= claims.keys()


def test_expired_token_is_refreshed_once_and_reuse_revokes_the_family(service, store):
    pair = login(service.url, service.keys[TENANT])
    expired = store.sign(_claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 60))

    challenge = _unauthorized(_get(service, "/v1/datasets", expired))
    assert "expired" in challenge

    served = _get(service, "/v1/datasets", expired, **{"refresh-token": pair["refresh_token"]})
    assert served.status_code == 200, served.text
    assert served.headers["cache-control"] == "no-store"
    fresh_access = served.headers["authorization"].removeprefix("Bearer ")
    fresh_refresh = served.headers["refresh-token"]
    assert fresh_refresh != pair["refresh_token"]
    assert _get(service, "/v1/datasets", fresh_access).status_code == 200
    # A valid access token needs no refresh: the refresh token is not spent on it.
    plain = _get(service, "/v1/datasets", fresh_access, **{"refresh-token": fresh_refresh})
    assert plain.status_code == 200 and "refresh-token" not in plain.headers

    # The first refresh token again: someone has a copy, so the whole family dies ...
    reused = _get(service, "/v1/datasets", expired, **{"refresh-token": pair["refresh_token"]})
    assert "already used" in _unauthorized(reused)
    # ... including the token the rotation handed out.
    after = _get(service, "/v1/datasets", expired, **{"refresh-token": fresh_refresh})
    assert "revoked" in _unauthorized(after)


def test_a_refresh_during_a_request_that_fails_still_hands_over_the_new_pair(service, store):
    pair = login(service.url, service.keys[TENANT])
    expired = store.sign(_claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 60))
    # The refresh succeeds, then the route answers 404: the spent refresh token's successor
    # must come back anyway, or the client could never refresh again.
    missing = _get(service, f"/v1/models/{uuid.uuid4()}", expired,
                   **{"refresh-token": pair["refresh_token"]})
    assert missing.status_code == 404, missing.text
    assert missing.headers["cache-control"] == "no-store"
    fresh_access = missing.headers["authorization"].removeprefix("Bearer ")
    assert _get(service, "/v1/datasets", fresh_access).status_code == 200
    # The same for a 422 from the request's own validation.
    invalid = httpx.post(f"{service.url}/v1/reasoning/fit", json={"dataset_id": "nope"},
                         headers={"authorization": f"Bearer {expired}",
                                  "refresh-token": missing.headers["refresh-token"]},
                         timeout=30)
    assert invalid.status_code == 422 and invalid.headers["refresh-token"]


def test_a_refresh_token_only_refreshes_its_own_tenant(service, store):
    other = login(service.url, service.keys["beta"])
    expired = store.sign(_claims(exp=int(time.time()) - 60))
    response = _get(service, "/v1/datasets", expired, **{"refresh-token": other["refresh_token"]})
    assert "another principal" in _unauthorized(response)


def test_a_revoked_key_gets_no_tokens_and_its_refresh_tokens_die(service, store):
    key = create_key(service, TENANT)
    pair = login(service.url, key)
    key_id = key.removeprefix("rsk_").split(".")[0]
    admin(service, "revoke-key", key_id)
    _unauthorized(httpx.post(f"{service.url}/v1/auth/token", json={"api_key": key}))
    expired = store.sign(_claims(exp=int(time.time()) - 60))
    _unauthorized(_get(service, "/v1/datasets", expired, **{"refresh-token":
                                                           pair["refresh_token"]}))


# -- tenants ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alpha_model(fits: dict[str, dict]) -> dict:
    """A completed job and model of TENANT (a differentiable family, so /grads serves it)."""
    job = fits["regression"]
    assert job["status"] == "completed", job
    return job


def test_another_tenants_ids_are_404_everywhere(client, other_client, houses_dataset,
                                               alpha_model):
    dataset_id, job_id = houses_dataset["dataset_id"], alpha_model["job_id"]
    model_id = alpha_model["model_id"]
    rows = {"dataframe_records": [{"area": 80.0}]}
    split = {"dataframe_split": {"columns": ["area"], "data": [[80.0]]}}
    reg = {"task_kind": "regression", "label_column": "price"}
    calls = {
        "dataset": ("GET", f"/v1/datasets/{dataset_id}", None),
        "job": ("GET", f"/v1/jobs/{job_id}", None),
        "cancel": ("POST", f"/v1/jobs/{job_id}/cancel", None),
        "model": ("GET", f"/v1/models/{model_id}", None),
        "predict": ("POST", f"/v1/models/{model_id}/predict", rows),
        "invocations": ("POST", f"/v1/models/{model_id}/invocations", split),
        "grads": ("POST", f"/v1/models/{model_id}/grads", split),
        "fit on its dataset": ("POST", "/v1/reasoning/fit", {"dataset_id": dataset_id,
                                                             "task": reg}),
        "model fit on its dataset": ("POST", "/v1/models/fit", {"dataset_id": dataset_id,
                                                                "task": reg}),
    }
    for what, (method, path, body) in calls.items():
        # The owner gets past the lookup (any status but 404) ...
        if method == "GET":
            assert client.request(method, path).status_code == 200, what
        # ... the other tenant is told the thing does not exist.
        response = other_client.request(method, path, json=body)
        assert response.status_code == 404, (what, response.text)
        assert "not found" in response.json()["detail"]

    own = other_client.post("/v1/datasets", files={"file": ("t.csv", b"area,price\n1,2\n3,4\n")})
    assert own.status_code == 201
    assert own.json()["tenant"] == "beta"
    teacher = other_client.post("/v1/reasoning/fit", json={
        "dataset_id": own.json()["dataset_id"], "task": reg, "teacher_model_id": model_id})
    assert teacher.status_code == 404 and model_id in teacher.json()["detail"]


def test_lists_hold_only_the_tenants_own(client, other_client, houses_dataset, alpha_model):
    lists = {"/v1/datasets": ("datasets", "dataset_id", houses_dataset["dataset_id"]),
             "/v1/jobs": ("jobs", "job_id", alpha_model["job_id"]),
             "/v1/models": ("models", "model_id", alpha_model["model_id"])}
    for path, (key, field, mine) in lists.items():
        own = {item[field] for item in client.get(path).json()[key]}
        theirs = other_client.get(path).json()[key]
        assert mine in own, path
        assert mine not in {item[field] for item in theirs}, path
        assert {item["tenant"] for item in client.get(path).json()[key]} == {TENANT}, path
        assert {item["tenant"] for item in theirs} <= {"beta"}, path
    # beta's own dataset (uploaded above) is in beta's list.
    assert other_client.get("/v1/datasets").json()["datasets"], "beta sees none of its own"
