"""An S3 endpoint for tests: moto in server mode, a real HTTP server in its own process.

In a shared deployment the service's artifacts live in an object store that every host
reaches over the network; the cluster tests need that to be a separate process on a
separate host (not moto's in-process mock), so workers in other namespaces reach it as
they would reach S3. moto accepts any credentials, so the ones in `env` are fixed fakes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tests.postgres import SYSTEM_PATH, free_port

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"

# Run with the venv's python -I -S (fast, no site imports): exits 0 once `url` answers
# (any HTTP status), 1 otherwise.
_PROBE = """
import sys, urllib.error, urllib.request
method, url = sys.argv[1], sys.argv[2]
request = urllib.request.Request(url, method=method)
try:
    urllib.request.urlopen(request, timeout=2).read()
except urllib.error.HTTPError as error:
    sys.exit(0 if method == "GET" else f"{method} {url}: HTTP {error.code}")
except OSError as error:
    sys.exit(f"{method} {url}: {error}")
"""


def moto_server_path() -> Path:
    """The `moto_server` console script installed next to this interpreter."""
    return Path(sys.executable).parent / "moto_server"


def _in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


class S3Server:
    """moto's S3 on `host`:`port` (loopback by default, or inside network namespace
    `netns`). Requests the harness itself makes (readiness, buckets) run inside `netns`
    too, so a server on a namespace's loopback works as well as one on a bridge.

    Its log goes to `log_dir` (kept: that dir's owner cleans up) or to a temp file that
    stop() deletes."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        netns: str | None = None,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port if port is not None else (9000 if netns else free_port(host))
        self.netns = netns
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What an S3 client (boto3, pyarrow, the service) needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata to wait for
        }

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 30.0) -> S3Server:
        """Start moto_server and wait until it answers HTTP."""
        if self.process is not None:
            raise RuntimeError("already started")
        script = moto_server_path()
        if not script.exists():
            raise RuntimeError(f"{script} missing: pip install 'moto[server]'")
        fd, log_name = tempfile.mkstemp(prefix="reasoning-moto-", suffix=".log", dir=self.log_dir)
        self.log_path = Path(log_name)
        env = {"PATH": f"{script.parent}:{SYSTEM_PATH}", "LANG": "C.UTF-8",
               "HOME": tempfile.gettempdir(), **self.env}  # fmt: skip
        with os.fdopen(fd, "wb") as log:
            self.process = subprocess.Popen(
                _in_netns(self.netns, [str(script), "-H", self.host, "-p", str(self.port)]),
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _request(self, method: str, path: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-I", "-S", "-c", _PROBE, method, self.endpoint + path]
        env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
        return subprocess.run(
            _in_netns(self.netns, argv), env=env, capture_output=True, text=True, timeout=30
        )

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}: "
                                   f"{self._log_tail()}")  # fmt: skip
            if self._request("GET", "/").returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"moto_server not answering at {self.endpoint}: "
                                   f"{self._log_tail()}")  # fmt: skip
            time.sleep(0.1)

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def create_bucket(self, name: str) -> None:
        """Create bucket `name` (moto takes an unsigned PUT)."""
        done = self._request("PUT", "/" + name)
        if done.returncode != 0:
            raise RuntimeError(f"create_bucket({name!r}): {done.stderr.strip()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop moto by its pid (SIGTERM, then SIGKILL). Safe to call twice."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self.log_path is not None and self.log_dir is None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
