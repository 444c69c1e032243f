"""Starting and stopping the service: Ray (local or a cluster), Serve, and the app."""

from __future__ import annotations

import ipaddress
import json
import logging
import logging.handlers
import os
from pathlib import Path
from typing import Any

from reasoning.service.artifacts import forwarded_env
from serve_app.settings import APP_NAME, Settings

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

log = logging.getLogger(__name__)
POOL_WAIT = 120.0
"""Seconds `start` waits for the JobManager's runners and warm trial workers."""
RAY_SYSTEM_CONFIG = {
    # How long Ray keeps an idle task worker. Trials run as tasks, and a worker that ran
    # one holds pandas, scikit-learn and xgboost imported; Ray's default (1 s, once a node
    # has more processes than CPUs, which the service's actors make it) would start and
    # import them again for nearly every job.
    "idle_worker_killing_time_threshold_ms": 600_000,
    # Ray starts every worker at niceness 15, serving actors included. At 0 they keep
    # priority over the fit processes, which lower their own (actors.lower_priority).
    "worker_niceness": 0,
}
"""What the service asks of a Ray it starts. A cluster the service joins sets the same on
each node's `ray start`, as RAY_<name> environment variables (docs/ARCHITECTURE.md)."""


def start(settings: Settings, verbose: bool = True) -> dict[str, Any]:
    """Migrate the metadata store, connect to (or start) Ray, start Serve on host:port,
    deploy the app and wait for it.

    Returns what it writes to the home's service.json (when the stores use the home): the
    URL and the Ray address that Python callers pass to `ray.init` to reach the app's
    handles. Not `verbose`: Ray's and Serve's own logs go to files in Ray's log folder
    (`ray_logs`), and the console gets nothing from them.
    """
    check_bind(settings)
    import ray
    from ray import serve

    from actors import JOB_MANAGER_NAME, NAMESPACE
    from serve_app.app import build_app

    stores = settings.stores()
    settings = settings.model_copy(update={"home": stores.home})
    # Before any actor opens the store: they all expect this release's schema.
    stores.upgrade()
    env = forwarded_env()
    # RAY_ADDRESS, as Ray reads it, or --address: join a cluster. Otherwise start a Ray of
    # our own, even when another one runs on this machine ("local"; None would join it).
    joining = bool(settings.address or os.environ.get("RAY_ADDRESS"))
    held = None if verbose else _hold_driver_logs()
    ray.init(
        address=settings.address or "local",
        namespace=NAMESPACE,
        include_dashboard=False,
        logging_level=logging.WARNING,
        # Every actor and trial of this job (on any host) reaches the artifact store.
        runtime_env={"env_vars": env} if env else None,
        # Only a Ray this process starts takes a system config.
        _system_config=None if joining else RAY_SYSTEM_CONFIG,
        # Workers' and Serve replicas' output stays in their log files.
        log_to_driver=verbose,
    )
    # Where Ray writes this node's logs (workers' output, Serve's logs). Ray offers no
    # public call for it; the node object is its own record.
    logs = ray._private.worker.global_worker.node.get_logs_dir_path()
    if held is not None:
        _driver_logs_to(Path(logs) / DRIVER_LOG, held)
        # Errors the cluster reports to this driver (a task retried, a worker lost) are
        # printed to stdout by Ray's error listener thread, whatever log_to_driver says;
        # its printer is a module global, looked up on each message.
        ray._private.worker.print_to_stdstream = _cluster_errors_to_log
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(
        build_app(settings.model_dump(mode="json")),
        name=APP_NAME,
        route_prefix="/",
        blocking=False,
    )
    # Up once a job would start at once: the runners and warm trial workers as well. The
    # ingress makes the JobManager in its start-up thread, once its replica runs.
    manager = _named_actor(JOB_MANAGER_NAME, NAMESPACE, POOL_WAIT)
    if not ray.get(manager.ready.remote(POOL_WAIT)):
        log.warning("the job pool was not up after %.0f s; the first jobs will wait for it",
                    POOL_WAIT)
    info = {
        "url": f"http://{settings.host}:{settings.port}",
        "ray_address": ray.get_runtime_context().gcs_address,
        "namespace": NAMESPACE,
        "app": APP_NAME,
        "pid": os.getpid(),
        "ray_logs": logs,
    }
    if stores.uses_home:
        _service_file(settings).write_text(json.dumps(info, indent=2))
    return info


def _named_actor(name: str, namespace: str, timeout: float) -> Any:
    """The named actor, waiting up to `timeout` seconds for someone to create it."""
    import time

    import ray

    deadline = time.monotonic() + timeout
    while True:
        try:
            return ray.get_actor(name, namespace=namespace)
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


RAY_LOGGERS = ("ray", "ray.serve")
DRIVER_LOG = "reasoning-serve.log"
"""This process's own Ray and Serve log lines, beside Ray's logs, when not verbose."""


def _hold_driver_logs() -> logging.handlers.MemoryHandler:
    """Take the console away from Ray's and Serve's loggers in this process, keeping what
    they say until the file it goes to is known (Ray's log folder exists once Ray runs)."""
    held = logging.handlers.MemoryHandler(capacity=10_000, flushLevel=logging.CRITICAL + 1)
    for name in RAY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(held)
        logger.propagate = False
    logging.getLogger("ray.serve").setLevel(logging.INFO)
    return held


def _driver_logs_to(path: Path, held: logging.handlers.MemoryHandler) -> None:
    """What Ray's and Serve's loggers said so far, and all they say from now on, to `path`."""
    target = logging.FileHandler(path)
    target.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    held.setTarget(target)
    held.flush()
    for name in RAY_LOGGERS:
        logging.getLogger(name).removeHandler(held)
        logging.getLogger(name).addHandler(target)


def _cluster_errors_to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
    for line in data.get("lines", []):
        logging.getLogger("ray").warning("(%s) %s", data.get("pid"), line)


def _service_file(settings: Settings) -> Path:
    """Where a running service says where it is, for tools and tests (in the home)."""
    return Path(settings.stores().home) / "service.json"


def serve_listen_host(default: str) -> str:
    """The address Serve's proxies listen on, as its controller was told (a Serve config's
    `http_options.host`, which the app's own settings do not see); `default` outside Serve.
    Ray offers no public call for it: the controller's client is its record."""
    from ray.serve.context import _get_global_client

    try:
        client = _get_global_client(raise_if_no_controller_running=False)
    except Exception:  # noqa: BLE001 - no Serve here: the settings are all there is
        return default
    return client.http_config.host if client is not None else default


class UnsafeBind(RuntimeError):
    """Listening beyond this machine with no authentication."""


def check_bind(settings: Settings) -> None:
    """Auth mode `none` serves anyone who can connect: loopback only, unless told."""
    if settings.auth_mode != "none" or settings.allow_open_bind or is_loopback(settings.host):
        return
    raise UnsafeBind(
        f"refusing to listen on {settings.host} with auth mode 'none': anyone who can reach"
        " it could read and change every dataset, model and job. Use --auth-mode token"
        " (REASONING_AUTH_MODE=token), or --allow-open-bind (REASONING_ALLOW_OPEN_BIND=1)"
        " if something in front of the service authenticates."
    )


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (IPv6 in brackets or not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def stop(settings: Settings) -> None:
    """Stop Serve on a cluster this process joined; stop a local Ray this process started
    (which ends Serve with it: draining its replicas first would only add seconds)."""
    import ray
    from ray import serve

    try:
        if settings.address is not None:
            serve.shutdown()
    finally:
        ray.shutdown()
        if settings.stores().uses_home:
            _service_file(settings).unlink(missing_ok=True)
