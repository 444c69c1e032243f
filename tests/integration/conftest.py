"""One real service on loopback for the whole test session (Ray + Serve start once).

Its metadata store is the default SQLite file in its home; with
REASONING_TEST_STORE=postgresql it is a real PostgreSQL server on loopback started for
the session instead (`make test` runs the store-touching tests once that way).

It runs in auth mode `token` with two tenants, as a shared deployment would: `client`
acts for TENANT and `other_client` for OTHER. (`make demo` and the CLI test cover mode
`none`.) Its body limits are small, so the tests of them send kilobytes, not megabytes.

The fits most tests only read (a model of each task, a teacher, the defaults) are
submitted together once, in `fits`, so their fixed costs overlap.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reasoning.service.stores import Stores
from reasoning.synthetic import houses
from tests.integration import ray_state
from tests.integration.service import (
    DemoOnACluster,
    Service,
    login,
    submit,
    upload,
    wait_job,
)
from tests.postgres import PostgresServer

UPLOAD_LIMIT = 400_000
JSON_LIMIT = 1_000_000
TENANT, OTHER = "alpha", "beta"
PENDING_CAP = 30

# A local Ray started by ray.init() requires token authentication from other drivers, and
# Ray reads the mode once, when it is first imported.
os.environ["RAY_AUTH_MODE"] = "token"

TEST_STORE = os.environ.get("REASONING_TEST_STORE", "sqlite")
_postgres: list[PostgresServer] = []


def _store_url() -> str | None:
    """The session's metadata store URL: None for the default, or a fresh PostgreSQL's."""
    if TEST_STORE == "sqlite":
        return None
    if TEST_STORE != "postgresql":
        raise pytest.UsageError(f"REASONING_TEST_STORE={TEST_STORE!r}: sqlite or postgresql")
    _postgres.append(PostgresServer().start())
    return _postgres[-1].url


def _launch_service() -> Service:
    """The session's service, launched: keys made in-process, small limits."""
    home = Path(tempfile.mkdtemp(prefix="reasoning-test-home-"))
    # Made in-process (test_auth runs `reasoning admin create-key` itself).
    url = _store_url()
    stores = Stores.resolve(home, url)
    stores.upgrade()
    credentials = stores.credentials()
    keys = {tenant: credentials.create_key(tenant)[1] for tenant in (TENANT, OTHER)}
    svc = Service(
        home,
        **({"REASONING_STORE": url} if url else {}),
        REASONING_AUTH_MODE="token",
        REASONING_ACCESS_TOKEN_TTL="3600",
        # No grace for a reused refresh token, so test_auth sees reuse revoke at once.
        REASONING_REFRESH_REUSE_GRACE="0",
        # Every test calls from 127.0.0.1, many with bad credentials on purpose: the
        # per-address limits would hold up the rest. The per-key limit stays as shipped.
        REASONING_TOKEN_EXCHANGES_PER_MINUTE="100000",
        REASONING_AUTH_FAILURES_PER_MINUTE="100000",
        # Small enough for test_jobs to fill, large enough for the shared fits.
        REASONING_MAX_PENDING_JOBS_PER_TENANT=str(PENDING_CAP),
        REASONING_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT),
        REASONING_MAX_JSON_BYTES=str(JSON_LIMIT),
        # Impatient with teachers, so the fault tests fail fast.
        REASONING_TEACHER_TIMEOUT="2",
        REASONING_TEACHER_RETRIES="1",
        # The test teachers run on 127.0.0.1; every other non-public address stays refused.
        REASONING_TEACHER_ALLOW="127.0.0.1/32",
    ).launch()
    svc.keys = keys
    return svc


_launched: list[Service] = []
_demos: list[DemoOnACluster] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Launch the service as soon as the session knows it will run integration tests, and
    the CLI test's demo (on a Ray of its own, which then serves in auth mode `none` for the
    hostile tests) if either will run, so that their process starts and imports overlap the
    unit tests, which run first."""
    if session.config.option.collectonly:
        return
    chosen = [item for item in session.items if item.get_closest_marker("integration")]
    if chosen:
        _launched.append(_launch_service())
    if any(item.path.name in ("test_cli.py", "test_hostile.py") for item in chosen):
        _demos.append(DemoOnACluster())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """What was launched and no test asked for (the session stopped early) stops too."""
    while _launched:
        unused = _launched.pop()
        unused.stop()
        shutil.rmtree(unused.home, ignore_errors=True)
    while _demos:
        _demos.pop().close()
    while _postgres:  # after the service, which the session's teardown stopped
        _postgres.pop().stop()


@pytest.fixture(scope="session")
def demo_run() -> Iterator[DemoOnACluster]:
    demo = _demos.pop() if _demos else DemoOnACluster()
    try:
        yield demo
    finally:
        demo.close()


@pytest.fixture(scope="session")
def open_service(demo_run: DemoOnACluster) -> Service:
    """`reasoning serve` in auth mode `none` (the default a laptop user gets), on the demo's
    cluster and home once the demo is done."""
    return demo_run.open_service()


@pytest.fixture(scope="session")
def service(request: pytest.FixtureRequest) -> Iterator[Service]:
    svc = _launched.pop() if _launched else _launch_service()
    try:
        yield svc.wait_ready()
    finally:
        _leave_ray()  # a driver left joined would wait a minute for the stopped Ray, then exit
        svc.stop()
        if request.session.testsfailed:
            print(f"\nthe service's home and log are kept for a look: {svc.home}")
        else:
            shutil.rmtree(svc.home, ignore_errors=True)


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


REG = {"task_kind": "regression", "label_column": "price"}
FITS: dict[str, tuple[str, dict[str, Any]]] = {
    # One model per task kind, each of another family; "regression" is the session's
    # "some model" (linear, so /grads serves it too).
    "regression": ("/v1/reasoning/fit", {"task": REG, "model_types": ["linear"],
                                         "n_hyperopt_steps": 3}),
    "binary": ("/v1/reasoning/fit", {
        "task": {"task_kind": "classification", "label_column": "has_garden"},
        "model_types": ["xgboost"], "n_hyperopt_steps": 3}),
    "multiclass": ("/v1/reasoning/fit", {
        "task": {"task_kind": "classification", "label_column": "segment"},
        "model_types": ["decision_tree"], "n_hyperopt_steps": 3}),
    # A same-server model searched over two families, to distil from.
    "teacher": ("/v1/models/fit", {"task": REG, "model_types": ["xgboost", "random_forest"],
                                   "n_hyperopt_steps": 4}),
    # Nothing but the dataset and the task: every other field takes the seed's default.
    "defaults": ("/v1/reasoning/fit", {"task": REG}),
    # "regression" again, run beside it: the same request gives the same model.
    "regression again": ("/v1/reasoning/fit", {"task": REG, "model_types": ["linear"],
                                               "n_hyperopt_steps": 3}),
    # A filter that keeps part of the table, and one that keeps too few rows to fit.
    "filtered": ("/v1/reasoning/fit", {
        "task": REG, "model_types": ["gam"], "n_hyperopt_steps": 3,
        "filter": {"kind": "cmp", "col": "listed_at", "op": ">=", "value": "2021-01-01"}}),
    "starved": ("/v1/reasoning/fit", {
        "task": REG, "model_types": ["linear"], "n_hyperopt_steps": 3,
        "filter": {"kind": "cmp", "col": "rooms", "op": ">", "value": 8}}),
}


@pytest.fixture(scope="session")
def fits(client: httpx.Client, houses_dataset: dict) -> dict[str, dict[str, Any]]:
    """FITS' name -> the finished job: submitted together and awaited together, so their
    fixed costs overlap."""
    job_ids = {name: submit(client, path, {"dataset_id": houses_dataset["dataset_id"], **body})
               for name, (path, body) in FITS.items()}
    return {name: wait_job(client, job_id) for name, job_id in job_ids.items()}


@pytest.fixture(scope="session")
def some_model(client: httpx.Client, fits: dict[str, dict]) -> dict[str, Any]:
    """A completed linear regression model's card, for tests that need any model."""
    job = fits["regression"]
    assert job["status"] == "completed", job
    return client.get(f"/v1/models/{job['model_id']}").json()


_joined: dict[str, str] = {}


def _leave_ray() -> None:
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


@pytest.fixture
def ray_driver(service: Service) -> Iterator[None]:
    """This test process joined to the service's Ray cluster, as a Python caller would;
    joined again if the service (and so its Ray) was restarted since."""
    import ray

    address = service.info["ray_address"]
    assert service.proc is not None
    ray_state.scope(service.proc.pid)
    if ray.is_initialized() and _joined.get("address") != address:
        ray.shutdown()
    if not ray.is_initialized():
        ray.init(address=address, namespace=service.info["namespace"],
                 logging_level="WARNING")
        _joined["address"] = address
    yield
