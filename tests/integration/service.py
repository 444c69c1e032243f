"""A real `reasoning serve` process on loopback, with helpers that talk to it over HTTP."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from reasoning.service.stores import Stores

TERMINAL = ("completed", "failed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """Starts, stops and restarts one service process with its own home and port."""

    def __init__(self, home: Path, port: int | None = None, args: tuple[str, ...] = (),
                 **env: str) -> None:
        self.home, self.port, self.args = home, port or free_port(), args
        self.stores = Stores.resolve(home, env.get("REASONING_STORE"))
        """The service's stores, for tests that look inside them."""
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "service.log"
        self.keys: dict[str, str] = {}
        """API keys by tenant, for a service in auth mode `token`."""

    def start(self, timeout: float = 240) -> Service:
        return self.launch().wait_ready(timeout)

    def launch(self) -> Service:
        """Start `reasoning serve` and return at once; `wait_ready` waits for it."""
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "serve_app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--home", str(self.home), *self.args]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 240) -> Service:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited early:\n{self.log.read_text()[-4000:]}")
            if (self.home / "service.json").exists():
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"service did not come up:\n{self.log.read_text()[-4000:]}")

    @property
    def info(self) -> dict[str, Any]:
        return json.loads((self.home / "service.json").read_text())

    def stop(self, timeout: float = 60) -> None:
        """Ctrl-C, as a user would; kill the process group if it does not stop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def admin(service: Service, *args: str) -> str:
    """`reasoning admin ARGS` on the service's stores, as an operator runs it; its output."""
    return subprocess.run(
        [sys.executable, "-m", "serve_app.cli", "admin", "--home", str(service.home), *args],
        capture_output=True, text=True, check=True, env=service.env,
    ).stdout


def create_key(service: Service, tenant: str) -> str:
    """An API key made the way an operator makes one: `reasoning admin create-key`."""
    out = admin(service, "create-key", "--tenant", tenant)
    return next(line.split(": ", 1)[1] for line in out.splitlines()
                if line.startswith("api key: "))


def login(url: str, api_key: str) -> dict[str, Any]:
    """The token pair that POST /v1/auth/token gives for an API key."""
    response = httpx.post(f"{url}/v1/auth/token", json={"api_key": api_key}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def upload(client: httpx.Client, frame: pd.DataFrame, name: str = "table") -> dict[str, Any]:
    buf = io.BytesIO()
    frame.to_csv(buf, index=False)
    response = client.post("/v1/datasets", files={"file": (f"{name}.csv", buf.getvalue())},
                           data={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def submit(client: httpx.Client, path: str, body: dict[str, Any], **headers: str) -> str:
    """POST a fit request; returns the accepted job's id."""
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "pending" and accepted["dataset_id"] == body["dataset_id"]
    return accepted["job_id"]


def wait_job(client: httpx.Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def wait_for(client: httpx.Client, job_id: str, predicate: Any, timeout: float = 120) -> dict:
    """Poll the job until predicate(job) holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the state: {job}")


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it (Ray's workers take process groups of
    their own, so a process group is not enough)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


class RayHead:
    """A Ray cluster's head started the way an operator starts one (`ray start --head`),
    with ports of its own so it can run beside the session's service. It is stopped by
    process id, `ray start` and everything it started: killed outright, since a SIGTERM
    makes Ray drain the node for up to 30 s first."""

    def __init__(self, num_cpus: int = 2) -> None:
        # Ray's socket paths must stay short: a folder directly under /tmp.
        self.temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        ports = {flag: free_port() for flag in (
            "ray-client-server-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
            "metrics-export-port", "runtime-env-agent-port", "node-manager-port",
            "object-manager-port")}
        self.cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                    f"--port={self.port}", f"--num-cpus={num_cpus}", "--include-dashboard=false",
                    f"--temp-dir={self.temp_dir}",
                    *(f"--{flag}={port}" for flag, port in ports.items())]
        self.log = Path(self.temp_dir) / "ray-start.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RayHead:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
        deadline = time.monotonic() + 120
        while b"Ray runtime started" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"ray start failed:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.2)
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc is None:
            return
        for pid in process_tree(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(30)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


class DemoOnACluster:
    """`reasoning demo --address` on a Ray head of its own, run in a thread from creation;
    then `reasoning serve` in auth mode `none` on the same cluster and home, as a laptop
    user runs it, for the browser tests (`open_service`) until the session ends.

    It shares nothing with the session's service, so the session starts it when collection
    ends (conftest.py) and its minute of process starts overlaps the unit tests; the test
    waits for it and reads what it printed.
    """

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="reasoning-demo-"))
        self.done: subprocess.CompletedProcess[str] | None = None
        self.head_outlived_demo = False
        self.error: BaseException | None = None
        self.open: Service | None = None
        self.open_ready, self.closing = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name="demo", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with RayHead() as head:
                self.done = subprocess.run(
                    [sys.executable, "-m", "serve_app.cli", "demo", "--address", head.address,
                     "--port", str(free_port()), "--home", str(self.home / "home")],
                    capture_output=True, text=True, timeout=300,
                    env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
                )
                # The demo ended its own work but must leave the cluster it joined running.
                self.head_outlived_demo = head.proc is not None and head.proc.poll() is None
                self.open = Service(self.home / "home", args=("--address", head.address),
                                    REASONING_AUTH_MODE="none").start()
                self.open_ready.set()
                self.closing.wait()
                self.open.stop()
        except BaseException as err:  # handed to the test, which raises it
            self.error = err
        finally:
            self.open_ready.set()

    def result(self, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        deadline = time.monotonic() + timeout
        while self.done is None and self.error is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if self.error is not None:
            raise self.error
        assert self.done is not None, "the demo did not end in time"
        return self.done

    def open_service(self, timeout: float = 600) -> Service:
        """The service in auth mode `none` that runs after the demo."""
        self.open_ready.wait(timeout)
        if self.error is not None:
            raise self.error
        assert self.open is not None, "the open service did not start in time"
        return self.open

    def close(self) -> None:
        self.closing.set()
        self.thread.join(420)  # the head is stopped by the thread itself
        shutil.rmtree(self.home, ignore_errors=True)
