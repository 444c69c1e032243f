"""One real service on loopback for the whole test session (Ray + Serve start once).

It runs in auth mode `token` with two tenants, as a shared deployment would: `client`
acts for TENANT and `other_client` for OTHER. (The restart test and `make demo` cover
mode `none`.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from reasoning.synthetic import houses
from tests.integration.service import Service, create_key, login, upload

UPLOAD_LIMIT = 2_000_000
TENANT, OTHER = "alpha", "beta"

# A local Ray started by ray.init() requires token authentication from other drivers, and
# Ray reads the mode once, when it is first imported.
os.environ["RAY_AUTH_MODE"] = "token"


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("home")
    keys = {tenant: create_key(home, tenant) for tenant in (TENANT, OTHER)}
    svc = Service(
        home,
        REASONING_AUTH_MODE="token",
        REASONING_ACCESS_TOKEN_TTL="3600",
        REASONING_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT),
        # Impatient with teachers, so the fault tests fail fast.
        REASONING_TEACHER_TIMEOUT="2",
        REASONING_TEACHER_RETRIES="1",
        # The test teachers run on 127.0.0.1; every other non-public address stays refused.
        REASONING_TEACHER_ALLOW="127.0.0.1/32",
    ).start()
    svc.keys = keys
    yield svc
    svc.stop()


def _client_for(service: Service, tenant: str) -> httpx.Client:
    token = login(service.url, service.keys[tenant])["access_token"]
    return httpx.Client(base_url=service.url, timeout=60,
                        headers={"authorization": f"Bearer {token}"})


@pytest.fixture(scope="session")
def client(service: Service) -> Iterator[httpx.Client]:
    """Acts for TENANT, with an access token from its API key."""
    with _client_for(service, TENANT) as http:
        yield http


@pytest.fixture(scope="session")
def other_client(service: Service) -> Iterator[httpx.Client]:
    """Acts for OTHER, a second tenant that must see none of TENANT's things."""
    with _client_for(service, OTHER) as http:
        yield http


@pytest.fixture(scope="session")
def houses_dataset(client: httpx.Client) -> dict:
    """The housing table (every dtype, missing values) registered once."""
    return upload(client, houses(600, seed=1), "houses")


@pytest.fixture(scope="session")
def ray_driver(service: Service) -> Iterator[None]:
    """This test process joined to the service's Ray cluster, as a Python caller would."""
    import ray

    ray.init(address=service.info["ray_address"], namespace=service.info["namespace"],
             logging_level="WARNING")
    yield
    ray.shutdown()
