"""The simulated multi-host cluster (see hosts.py), built once per session.

    store  .10  PostgreSQL (database `reasoning`) and moto's S3 (bucket `reasoning`)
    head   .11  the Ray head, 0 CPUs; its files live under `network.head_dir`
    worker .12  a Ray worker, 2 CPUs, which cannot see `network.head_dir`

`network.add_worker(name)` adds another worker host later. Everything here is marked
`cluster`, and skipped, with the reason, where namespaces or PostgreSQL are unavailable.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.hosts import (
    FAST_NODE_FAILURE,
    WARM_WORKERS,
    Network,
    netns_unavailable,
    reap_stale,
    start_ray_head,
    start_ray_worker,
    wait_for_nodes,
)
from tests.postgres import PostgresServer, postgres_binaries
from tests.s3server import S3Server, moto_server_path

HERE = Path(__file__).parent
BUCKET = "reasoning"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: runs on a multi-host Ray cluster in network namespaces (root)"
    )


@functools.cache
def _unavailable() -> str | None:
    """Why the cluster cannot be built on this machine, or None."""
    reason = netns_unavailable()
    if reason:
        return f"cluster tests: {reason}"
    if postgres_binaries() is None:
        return "cluster tests: no PostgreSQL server binaries (run tests/install_postgres.sh)"
    if not moto_server_path().exists():
        return "cluster tests: moto_server missing (pip install 'moto[server]')"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "cluster tests: psycopg missing (pip install 'psycopg[binary]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if HERE in item.path.parents]
    if not mine:
        return  # e.g. the unit suite alone: do not even probe for namespaces
    reason = _unavailable()
    for item in mine:
        item.add_marker(pytest.mark.cluster)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def sigterm_tears_down() -> Iterator[None]:
    """SIGTERM (`timeout pytest ...`) ends the session like Ctrl-C, so the cluster is torn
    down; by default it would kill pytest outright and leave the namespaces behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def hosts(sigterm_tears_down: None) -> Iterator[Network]:
    """The network with `store`, `head` and `worker` up (see the module's docstring)."""
    reap_stale()  # a previous run killed before its cleanup
    started = time.monotonic()
    with Network() as network:
        store = network.add_host("store", index=10)
        head = network.add_host("head", index=11)
        worker = network.add_host("worker", index=12, hidden=[network.head_dir])
        # The head starts in the background while the store's servers start.
        address = start_ray_head(head, num_cpus=0, env={**FAST_NODE_FAILURE, **WARM_WORKERS},
                                 wait=False)
        network.postgres = PostgresServer(
            store.ip, 5432, netns=store.netns, allow=[str(network.subnet)], parent=store.dir
        )
        network.on_close(network.postgres.stop)
        network.postgres.start()
        network.s3 = S3Server(store.ip, 9000, netns=store.netns, log_dir=store.logs)
        network.on_close(network.s3.stop)
        network.s3.start()
        network.s3.create_bucket(BUCKET)
        assert head.ray_process is not None
        wait_for_nodes(network, ips=[head.ip], watch=[head.ray_process])
        start_ray_worker(worker, address, num_cpus=2, env=WARM_WORKERS)
        print(f"cluster up in {time.monotonic() - started:.1f}s: {network.subnet}, {network.base}")
        yield network
