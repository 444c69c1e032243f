"""A real PostgreSQL server for tests, from the distribution's binaries.

The service's job store speaks SQL to PostgreSQL in a shared deployment, so the cluster
tests run the real server rather than a fake: one per session, in a throwaway data dir,
with fsync off (the data dies with the test anyway). The server refuses to run as root,
so initdb and the postmaster run as the `postgres` user; the test process (root) talks
to it as superuser over the Unix socket (`trust`, the socket dir is private) and the
service as `reasoning` over TCP with a random password (scram), from the allowed
subnets only.

`tests/install_postgres.sh` installs Debian's binaries when `postgres_binaries()` finds
none.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from glob import glob
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DATABASE = "reasoning"
USER = "reasoning"
OS_USER = "postgres"


def postgres_binaries() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding a server, or None."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for bin_dir in glob("/usr/lib/postgresql/*/bin"):
        path = Path(bin_dir)
        if not ((path / "postgres").is_file() and (path / "initdb").is_file()):
            continue
        version = tuple(int(part) for part in re.findall(r"\d+", path.parent.name))
        found.append((version, path))
    return max(found)[1] if found else None


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` right now (the usual small race is accepted)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    """argv run inside network namespace `netns` (`ip netns exec` execs: same pid)."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class PostgresServer:
    """One PostgreSQL server: database `reasoning`, owned by user `reasoning`.

    `host` is the address it listens on (loopback by default); with `netns` it runs in
    that network namespace (`ip netns exec`), e.g. on a test host's address. `allow` are
    the networks `reasoning` may log in from with its password (loopback always; by
    default the /24 around a non-loopback `host`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        netns: str | None = None,
        allow: Sequence[str] | None = None,
        parent: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port if port is not None else (5432 if netns else free_port(host))
        self.netns = netns
        if allow is None:
            address = ipaddress.ip_address(host)
            allow = [] if address.is_loopback else [str(ipaddress.ip_network(f"{host}/24", False))]
        self.allow = ["127.0.0.1/32", "::1/128", *allow]
        self.password = secrets.token_urlsafe(24)
        self.parent = parent
        self.bin_dir: Path | None = None
        self.root: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- addresses -------------------------------------------------------------------------

    def url_for(self, database: str = DATABASE) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for `reasoning` on `database`."""
        return (
            f"postgresql+psycopg://{USER}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{database}"
        )

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    @property
    def dsn(self) -> str:
        """libpq connection string (psycopg.connect(dsn)), same credentials as `url`."""
        return (
            f"host={self.host} port={self.port} dbname={DATABASE} user={USER} "
            f"password={self.password} connect_timeout=5"
        )

    @property
    def data_dir(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "sock"

    @property
    def log_path(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "postgres.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    # -- life cycle ------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """initdb, start the postmaster, wait until it accepts TCP connections, create the
        role and the database. Raises with the server's log if any step fails."""
        if self.process is not None:
            raise RuntimeError("already started")
        self.bin_dir = postgres_binaries()
        if self.bin_dir is None:
            raise RuntimeError(
                "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
                "(run tests/install_postgres.sh)"
            )
        try:
            pw = pwd.getpwnam(OS_USER)
        except KeyError:
            raise RuntimeError(f"no OS user {OS_USER!r} to run the server as") from None
        self.root = Path(tempfile.mkdtemp(prefix="reasoning-pg-", dir=self.parent))
        try:
            self._start(pw, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, pw: pwd.struct_passwd, timeout: float) -> None:
        assert self.root is not None and self.bin_dir is not None
        self.data_dir.mkdir()
        self.socket_dir.mkdir()
        for path in (self.root, self.data_dir, self.socket_dir):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)  # the socket trusts whoever reaches it: root and postgres
        env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": str(self.root)}
        initdb = subprocess.run(
            [
                "runuser", "-u", OS_USER, "--",
                str(self.bin_dir / "initdb"), "-D", str(self.data_dir),
                "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                "--auth-local=trust", "--auth-host=scram-sha-256",
            ],
            env=env, capture_output=True, text=True, timeout=120, cwd=self.root,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
        hba = ["local all postgres trust"]
        hba += [f"host all {USER} {net} scram-sha-256" for net in self.allow]
        (self.data_dir / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",  # a test database: speed over durability
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "32MB",
            # Parallel-query segments as files in the data dir, not /dev/shm: a server
            # killed outright leaves nothing outside the dir that stop() removes.
            "dynamic_shared_memory_type": "mmap",
        }
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # setpriv execs (runuser would stay as a parent): the pid we hold is the postmaster.
        argv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
                "--", *argv]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                _in_netns(self.netns, argv),
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.root, start_new_session=True,
            )  # fmt: skip
        self._wait_ready(timeout)
        self.psql(
            f"CREATE ROLE {USER} LOGIN PASSWORD '{self.password}'",
            f"CREATE DATABASE {DATABASE} OWNER {USER}",
        )

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None and self.bin_dir is not None
        deadline = time.monotonic() + timeout
        probe = _in_netns(
            self.netns,
            [str(self.bin_dir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port),
             "-d", "postgres", "-t", "2"],
        )  # fmt: skip
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self.process.returncode}:\n{_tail(self.log_path)}"
                )
            env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
            if subprocess.run(probe, env=env, capture_output=True).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"postgres not ready on {self.host}:{self.port} after {timeout:.0f}s:\n"
                    f"{_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def psql(self, *commands: str, database: str = "postgres") -> str:
        """Run SQL as superuser over the Unix socket; its output (raises on error)."""
        assert self.bin_dir is not None, "not started"
        argv = [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                "-d", database]  # fmt: skip
        for command in commands:
            argv += ["-c", command]
        env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": str(self.root)}
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({commands}): {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """A fresh database owned by `reasoning` (e.g. one per test); its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.psql(f"CREATE DATABASE {name} OWNER {USER}")
        return self.url_for(name)

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT) of the postmaster by its pid, SIGKILL if it lingers, then
        remove the data dir. Safe to call twice, and after the process died."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            self._reap_orphans(process.pid)
        root, self.root = self.root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    def _reap_orphans(self, postmaster: int, timeout: float = 10.0) -> None:
        """After the postmaster was killed outright (SIGKILL, its host "died"): kill its
        children, still in its process group (it leads a session of its own), and remove
        the SysV segment it made, which outlives them. The segment is found through
        postmaster.pid (left behind only by an unclean exit) and checked against
        /proc/sysvipc/shm: made by that pid."""
        try:
            os.killpg(postmaster, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            shmid = (self.data_dir / "postmaster.pid").read_text().splitlines()[6].split()[1]
        except (AssertionError, OSError, IndexError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = [row.split() for row in Path("/proc/sysvipc/shm").read_text().splitlines()]
            # key shmid perms size cpid lpid nattch ...
            mine = [row for row in rows[1:] if row[1] == shmid and row[4] == str(postmaster)]
            if not mine:
                return
            if mine[0][6] == "0":
                subprocess.run(["ipcrm", "-m", shmid], env={"PATH": SYSTEM_PATH},
                               capture_output=True)  # fmt: skip
                return
            time.sleep(0.1)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
