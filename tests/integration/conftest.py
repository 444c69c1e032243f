"""One real service on loopback for the whole test session (Ray + Serve start once)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from reasoning.synthetic import houses
from tests.integration.service import Service, upload

UPLOAD_LIMIT = 2_000_000

# A local Ray started by ray.init() requires token authentication from other drivers, and
# Ray reads the mode once, when it is first imported.
os.environ["RAY_AUTH_MODE"] = "token"


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(
        tmp_path_factory.mktemp("home"),
        REASONING_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT),
        # Impatient with teachers, so the fault tests fail fast.
        REASONING_TEACHER_TIMEOUT="2",
        REASONING_TEACHER_RETRIES="1",
        # The test teachers run on 127.0.0.1; every other non-public address stays refused.
        REASONING_TEACHER_ALLOW="127.0.0.1/32",
    ).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=60) as http:
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
