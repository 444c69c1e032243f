"""What the tests read and do inside the service's Ray cluster: its actors and their
processes, placement groups and free CPUs, and processes frozen to hold a job in place.

The service runs without Ray's dashboard, so actors are found in the GCS actor table
(`ray._private.state.actors()`), not `ray.util.state`. Every helper needs the test
process joined to the cluster (the `ray_driver` fixture).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from tests.integration.service import process_tree


def actors(class_name: str, name: str | None = None, state: str | None = None,
           job_id: str | None = None) -> list[dict[str, Any]]:
    """Live actors of this class that have a process; optionally only those of this name
    or state, or those the runner of `job_id` started (a runner runs one job at a time)."""
    import ray

    owner = None if job_id is None else _where(runner_of(job_id)["Address"])
    # Ray names a class made inside a function by its qualified name (Tune's trial actors
    # show as "ImplicitFunc" or "wrap_function.<locals>.ImplicitFunc"): match the last part.
    return [a for a in ray._private.state.actors().values()
            if a["ActorClassName"].rsplit(".", 1)[-1] == class_name
            and a["State"] != "DEAD" and a["Pid"]
            and name in (None, a["Name"]) and state in (None, a["State"])
            and owner in (None, _where(a["OwnerAddress"]))]


def runner_of(job_id: str, timeout: float = 60) -> dict[str, Any]:
    """The live PipelineRunner actor that runs this job now, as the JobManager says."""
    import ray

    from actors import JOB_MANAGER_NAME, NAMESPACE

    manager = ray.get_actor(JOB_MANAGER_NAME, namespace=NAMESPACE)
    deadline = time.monotonic() + timeout
    while not (name := ray.get(manager.runner_of.remote(job_id), timeout=timeout)):
        job = ray.get(manager.get.remote(job_id), timeout=timeout)
        assert time.monotonic() < deadline, f"no runner holds job {job_id}: {job}"
        time.sleep(0.05)
    return wait_actor("PipelineRunner", name, "ALIVE", timeout=timeout)


def _where(address: dict[str, Any]) -> tuple[str, int]:
    """A worker process, as the GCS actor table names it."""
    return address["IPAddress"], address["Port"]


def wait_actor(class_name: str, name: str | None = None, state: str | None = None,
               job_id: str | None = None, timeout: float = 60) -> dict[str, Any]:
    """The first such actor, once one is there."""
    deadline = time.monotonic() + timeout
    while not (found := actors(class_name, name, state, job_id)):
        assert time.monotonic() < deadline, f"no live {class_name} actor appeared"
        time.sleep(0.05)
    return found[0]


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll `check` until it returns something true; fail naming `what` if it never does."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def placement_groups() -> list[dict[str, Any]]:
    """The cluster's placement groups not removed yet (the service makes none)."""
    from ray.util import placement_group_table

    return [g for g in placement_group_table().values() if g["state"] != "REMOVED"]


def nothing_held(timeout: float = 30) -> None:
    """No placement group is left and every CPU is free again."""
    import ray

    deadline = time.monotonic() + timeout
    while True:
        groups = placement_groups()
        free = ray.available_resources().get("CPU", 0)
        if not groups and free == ray.cluster_resources()["CPU"]:
            return
        assert time.monotonic() < deadline, f"still held: {free} CPUs free; {groups}"
        time.sleep(0.2)


_scope: list[int] = []
"""The process that started the Ray cluster the tests look into (the session's service), set
by the `ray_driver` fixture: another cluster on the machine (the demo's) has workers of the
same titles."""


def scope(root: int) -> None:
    """Look only at `root`'s descendants from now on."""
    _scope[:] = [root]


def processes(title: str) -> list[psutil.Process]:
    """Ray worker processes of the scoped cluster whose title contains `title`. Ray titles a
    worker `ray::<actor class or task>` (`ray::<task>` while it runs the task, `ray::IDLE`
    between tasks)."""
    ours = set(process_tree(_scope[0])) if _scope else None
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if (cmdline and cmdline[0].startswith("ray::") and title in cmdline[0]
                and (ours is None or process.pid in ours)):
            found.append(process)
    return found


def task_processes(task: str) -> list[int]:
    """The processes running a task of this name now."""
    return [p.pid for p in processes(f"ray::{task}")
            if p.info["cmdline"][0].split()[0] == f"ray::{task}"]


def wait_trial(timeout: float = 60) -> int:
    """The process of a hyperparameter trial running now (tests run one job at a time)."""
    return wait_until("a running trial", lambda: task_processes("_trial"), timeout)[0]


@contextmanager
def frozen(pid: int) -> Iterator[int]:
    """The process stopped (SIGSTOP) while the block runs; resumed on the way out unless
    the test killed it meanwhile."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def unread_call_bytes(actor: dict[str, Any]) -> int:
    """Bytes that callers sent to this actor's worker and it has not read yet: for a frozen
    actor, the sign that someone has called it.

    Only connections made *to* the worker's own port count (calls pushed to it), not the
    worker's own connections out (e.g. the GCS answering its subscriptions).
    """
    pid, port = actor["Pid"], actor["Address"]["Port"]
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:["):-1])
    unread = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[9] in sockets and local_port == port:
                unread += int(fields[4].split(":")[1], 16)
    return unread


def log_files(logs_dir: str | Path) -> list[Path]:
    """Every log file Ray wrote for the cluster: workers' stdout and stderr, the core
    workers' own logs, raylet, GCS, Serve."""
    return [p for p in Path(logs_dir).rglob("*") if p.is_file()]


def logs_mention(logs_dir: str | Path, needle: str) -> list[str]:
    """The Ray log files that contain `needle`."""
    data = needle.encode()
    return [str(p) for p in log_files(logs_dir) if data in p.read_bytes()]
