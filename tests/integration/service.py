"""A real `reasoning serve` process on loopback, with helpers that talk to it over HTTP."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

TERMINAL = ("completed", "failed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """Starts, stops and restarts one service process with its own home and port."""

    def __init__(self, home: Path, port: int | None = None, **env: str) -> None:
        self.home, self.port = home, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "service.log"
        self.keys: dict[str, str] = {}
        """API keys by tenant, for a service in auth mode `token`."""

    def start(self, timeout: float = 240) -> Service:
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "serve_app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--home", str(self.home)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)
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


def create_key(home: Path, tenant: str) -> str:
    """An API key made the way an operator makes one: `reasoning admin create-key`."""
    out = subprocess.run(
        [sys.executable, "-m", "serve_app.cli", "admin", "--home", str(home),
         "create-key", "--tenant", tenant],
        capture_output=True, text=True, check=True,
    ).stdout
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
