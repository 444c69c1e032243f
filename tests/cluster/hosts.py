"""Several "hosts" on this one machine, for testing the service as a multi-host Ray cluster.

Each host is a Linux network namespace with its own address on a private /24 (a veth into
a bridge in the root namespace, which holds .1 so the test process reaches every host).
Processes on different hosts share the filesystem, but not addresses, ports or loopback;
a host can also hide directories (an empty tmpfs over them, in a mount namespace of its
own), so what the head writes under `head_dir` does not exist on a worker, as on real
machines. A host "dies" by SIGKILL of every process in its namespace.

Everything is found and killed by namespace (`ip netns pids`), never by process name, so
other Ray clusters on the machine (the integration tests') are left alone. `close()`
undoes it all; it is registered with atexit, and `reap_stale()` cleans up after a run
whose test process was killed outright.

Ray runs with token authentication: the harness makes a token and passes RAY_AUTH_MODE
and RAY_AUTH_TOKEN to every process it starts; each host has its own HOME (so no
~/.ray/auth_token of the machine is read) and its own Ray temp dir.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin, not the base python's
PYTHON = VENV_BIN / "python"
RAY = VENV_BIN / "ray"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STATE_DIR = Path("/run/reasoning-test-cluster")  # one JSON per live run, for reap_stale()
RAY_PORT = 6379
OBJECT_STORE_BYTES = 300 * 1024 * 1024
# For the head (GCS): a dead host's node is declared dead after ~5 s (5 failed health checks
# 1 s apart) instead of Ray's ~15 s (3 s apart), so fault tests wait less. A killed host's
# ports refuse at once, so each check fails at once.
WARM_WORKERS = {"RAY_idle_worker_killing_time_threshold_ms": "600000",
                "RAY_worker_niceness": "0"}
"""What docs/ARCHITECTURE.md asks of a cluster's nodes: idle task workers (the warm trial
workers) kept 10 minutes, serving actors at niceness 0."""
FAST_NODE_FAILURE = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_initial_delay_ms": "1000",
}

Env = Mapping[str, str | None]  # None removes a variable from a host's environment


class HarnessError(RuntimeError):
    """A step of building or running the simulated cluster failed."""


class LoggedProcess(subprocess.Popen[bytes]):
    """A background process on a host, and the file its stdout and stderr go to."""

    log: Path


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`ip ARGS`, with a fixed environment and captured output."""
    done = subprocess.run(
        ["ip", *args], env={"PATH": SYSTEM_PATH}, capture_output=True, text=True, timeout=30
    )
    if check and done.returncode != 0:
        raise HarnessError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _ip_batch(commands: Iterable[str], netns: str | None = None) -> None:
    """Several `ip` commands in one process (`ip -batch -`), in `netns` if given."""
    text = "\n".join(commands) + "\n"
    done = subprocess.run(
        ["ip", *(["-n", netns] if netns else []), "-batch", "-"],
        input=text, env={"PATH": SYSTEM_PATH}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if done.returncode != 0:
        raise HarnessError(f"ip -batch:\n{text}{done.stderr.strip()}")


def netns_pids(netns: str) -> list[int]:
    """Every process whose network namespace is `netns` (zombies are not listed)."""
    done = _ip("netns", "pids", netns, check=False)
    return [int(word) for word in done.stdout.split()] if done.returncode == 0 else []


def kill_netns(netns: str, sig: int = signal.SIGKILL, timeout: float = 30.0) -> None:
    """Signal every process in `netns` until none is left (they may fork meanwhile)."""
    deadline = time.monotonic() + timeout
    while pids := netns_pids(netns):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise HarnessError(f"processes survive in {netns}: {pids}")
        time.sleep(0.05)


def _stop_postmasters(netns: str, timeout: float = 15.0) -> None:
    """Fast-shutdown (SIGINT) the PostgreSQL servers in `netns` and wait for them: one
    killed outright leaves its shared memory behind (SysV segment, /dev/shm files)."""
    postmasters = []
    for pid in netns_pids(netns):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            parent_argv0 = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if argv0.endswith(b"/postgres") and not parent_argv0.endswith(b"/postgres"):
            postmasters.append(pid)
    for pid in postmasters:
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while set(postmasters) & set(netns_pids(netns)) and time.monotonic() < deadline:
        time.sleep(0.1)


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "unshare", "nsenter", "setpriv", "mount"):
        if shutil.which(tool, path=SYSTEM_PATH) is None:
            return f"`{tool}` is not installed"
    probe = f"rt{secrets.token_hex(3)}-probe"
    done = _ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        return f"`ip netns add` fails: {done.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination in any routing table, and every address, of this machine."""
    kinds = {"local", "broadcast", "unicast", "multicast", "anycast", "blackhole",
             "unreachable", "prohibit", "throw", "nat"}  # fmt: skip
    used = []
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        words = line.split()
        if words and words[0] in kinds:
            words = words[1:]
        if not words or words[0] == "default":
            continue
        try:
            used.append(ipaddress.IPv4Network(words[0], strict=False))
        except ValueError:
            continue
    for line in _ip("-4", "-o", "addr").stdout.splitlines():
        words = line.split()
        if "inet" in words:
            used.append(ipaddress.IPv4Network(words[words.index("inet") + 1], strict=False))
    return used


def _pick_subnet() -> ipaddress.IPv4Network:
    """A random 10.R1.R2.0/24 that overlaps nothing this machine routes or holds."""
    used = _used_networks()
    for _ in range(200):
        subnet = ipaddress.IPv4Network(
            f"10.{random.randint(16, 250)}.{random.randint(1, 254)}.0/24"
        )
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise HarnessError("no free 10.x.y.0/24 found")


def _process_start(pid: int) -> str | None:
    """The start time of `pid` (field 22 of /proc/pid/stat), to tell a reused pid apart;
    None if it is not running (a zombie is not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def reap_stale() -> list[str]:
    """Clean up runs whose test process is gone (killed before it could clean up): their
    namespaces' processes, namespaces, links and files. Returns the run ids reaped."""
    reaped = []
    for record in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.exists() else []:
        try:
            state = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if _process_start(state["owner_pid"]) == state["owner_start"]:
            continue  # its owner is alive: a concurrent run
        _teardown(state)
        record.unlink(missing_ok=True)
        reaped.append(state["run_id"])
    return reaped


def _teardown(state: Mapping[str, Any]) -> list[str]:
    """Kill every process in the run's namespaces, delete links, namespaces and base dir.
    Every step is tried; the failures are returned."""
    errors = []
    for netns in state["namespaces"]:
        _stop_postmasters(netns)
    for netns in state["namespaces"]:
        try:
            kill_netns(netns)
        except HarnessError as error:
            errors.append(str(error))
    # Links before namespaces: a deleted namespace takes its veth pair along, but later,
    # asynchronously, which would race with deleting it here.
    for link in [*state["links"], state["bridge"]]:
        done = _ip("link", "del", link, check=False)
        if done.returncode != 0 and _ip("link", "show", link, check=False).returncode == 0:
            errors.append(f"ip link del {link}: {done.stderr.strip()}")
    for netns in state["namespaces"]:
        done = _ip("netns", "del", netns, check=False)
        if done.returncode != 0 and netns in _ip("netns", "list").stdout.split():
            errors.append(f"ip netns del {netns}: {done.stderr.strip()}")
    if not os.environ.get("REASONING_TEST_KEEP_CLUSTER_FILES"):
        shutil.rmtree(state["base"], ignore_errors=True)
    return errors


class Host:
    """One simulated machine: a network namespace with address `ip`, a directory of its
    own (`dir`: HOME, TMPDIR, Ray's temp dir, logs) and, optionally, hidden directories.

    Processes run inside with `run`/`popen`/`python`. With hidden directories, they all
    share one mount namespace, held by a `sleep` "keeper" process started on first use
    (and again after `kill_all`, like a reboot: the hidden dirs come back empty)."""

    def __init__(
        self, network: Network, name: str, index: int, hidden: Sequence[Path] = ()
    ) -> None:
        self.network = network
        self.name = name
        self.index = index
        self.ip = str(network.subnet.network_address + index)
        self.netns = f"rt{network.run_id}-{name}"
        self.veth = f"rt{network.run_id}{index}"
        self.dir = network.base / name
        self.hidden = tuple(Path(path) for path in hidden)
        self.processes: list[LoggedProcess] = []
        self.ray_process: LoggedProcess | None = None  # its `ray start --block`
        self._keeper: subprocess.Popen[bytes] | None = None
        self._logs = 0

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.ip}, netns={self.netns})"

    # -- running things --------------------------------------------------------------------

    def env(self, extra: Env | None = None) -> dict[str, str]:
        """The environment of a process on this host: a fixed base (never the test
        process's own), the network's (Ray's token, the cluster's address), then `extra`;
        a None value removes that variable."""
        env: dict[str, str | None] = {
            "PATH": f"{VENV_BIN}:{SYSTEM_PATH}",
            "HOME": str(self.dir / "home"),
            "TMPDIR": str(self.dir / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "RAY_USAGE_STATS_ENABLED": "0",
            # A driver on a host other than the head must say which node is its own:
            # ray.init(_node_ip_address=os.environ["TEST_HOST_IP"]) (else it picks the head).
            "TEST_HOST_NAME": self.name,
            "TEST_HOST_IP": self.ip,
            **self.network.env,
            **(extra or {}),
        }
        return {key: value for key, value in env.items() if value is not None}

    def command(self, argv: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> list[str]:
        """`argv` wrapped to run on this host (the wrappers exec: the pid is argv's own)."""
        argv = [os.fspath(arg) for arg in argv]
        if not self.hidden:
            return ["ip", "netns", "exec", self.netns, *argv]
        keeper = self._ensure_keeper()
        return ["nsenter", f"--target={keeper}", "--mount", "--net",
                f"--wdns={cwd or self.dir}", "--", *argv]  # fmt: skip

    def _ensure_keeper(self) -> int:
        """The pid holding this host's mount namespace, with the hidden dirs covered."""
        if self._keeper is not None and self._keeper.poll() is None:
            return self._keeper.pid
        if self._keeper is not None:
            self._keeper.wait()
        for path in self.hidden:
            path.mkdir(parents=True, exist_ok=True)
        script = (
            'for d do mount -t tmpfs -o mode=0755,size=64m rt-hidden "$d" || exit 1; done; '
            "echo ready; exec sleep infinity >/dev/null 2>&1"
        )
        keeper = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation",
             "private", "--", "sh", "-c", script, "sh", *map(str, self.hidden)],
            env={"PATH": SYSTEM_PATH}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        assert keeper.stdout is not None
        line = keeper.stdout.readline()
        keeper.stdout.close()
        if line.strip() != b"ready":
            keeper.kill()
            keeper.wait()
            raise HarnessError(f"{self.name}: could not hide {self.hidden}")
        self._keeper = keeper
        return keeper.pid

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        env: Env | None = None,
        *,
        check: bool = True,
        timeout: float = 120.0,
        input: str | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` on this host to completion; output captured as text."""
        done = subprocess.run(
            self.command(argv, cwd), env=self.env(env), cwd=cwd or self.dir, input=input,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise HarnessError(
                f"{self.name}: {list(map(str, argv))[:3]}... exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def popen(
        self,
        argv: Sequence[str | os.PathLike[str]],
        env: Env | None = None,
        *,
        log: Path | None = None,
        cwd: Path | None = None,
    ) -> LoggedProcess:
        """Start `argv` on this host in the background, stdout and stderr appended to `log`
        (by default `host.logs`/<program>-<n>.log; `process.log` either way)."""
        if log is None:
            self._logs += 1
            log = self.dir / "logs" / f"{Path(os.fspath(argv[0])).name}-{self._logs}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            process = LoggedProcess(
                self.command(argv, cwd), env=self.env(env), cwd=cwd or self.dir,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        process.log = log
        self.processes.append(process)
        return process

    def python(self, code: str, env: Env | None = None, *, timeout: float = 120.0) -> str:
        """Run a Python snippet with the venv's interpreter on this host; its stdout.
        Raises HarnessError (with the snippet's stderr) if it fails."""
        return self.run([PYTHON, "-c", code], env, timeout=timeout).stdout

    # -- processes -------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Every process running on this host (by network namespace)."""
        return netns_pids(self.netns)

    def kill_all(self) -> None:
        """The host dies: SIGKILL every process in its namespace. (A PostgreSQL server
        killed so leaves shared memory behind; PostgresServer.stop() frees its segment.)"""
        kill_netns(self.netns)
        self._reap()

    def kill_process(self, comm: str, sig: int = signal.SIGKILL) -> list[int]:
        """Signal the processes on this host whose name (/proc/pid/comm, e.g. `raylet`,
        `gcs_server`) is `comm`; their pids."""
        hit = []
        for pid in self.pids():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == comm[:15]:
                    os.kill(pid, sig)
                    hit.append(pid)
            except (OSError, ProcessLookupError):
                continue
        self._reap()
        return hit

    def _reap(self) -> None:
        """Collect the exit status of our own children that died (no zombies left)."""
        for process in [*self.processes, self._keeper]:
            if process is not None:
                process.poll()

    def wait_gone(self, pids: Iterable[int], timeout: float = 10.0) -> None:
        """Wait until none of `pids` runs any more on this host."""
        wanted = set(pids)
        deadline = time.monotonic() + timeout
        while wanted & set(self.pids()):
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.name}: still running: {wanted & set(self.pids())}")
            self._reap()
            time.sleep(0.05)

    @property
    def logs(self) -> Path:
        return self.dir / "logs"


class Network:
    """A private /24, a bridge holding .1 in the root namespace, and hosts on it.

    Attributes filled by the fixture (tests/cluster/conftest.py) or by the Ray helpers:
    `gcs_address` and `head` once a Ray head runs, `postgres`, `s3`."""

    def __init__(self, base_parent: str | os.PathLike[str] = "/tmp") -> None:
        reason = netns_unavailable()
        if reason:
            raise HarnessError(reason)
        self.run_id = secrets.token_hex(3)
        self.subnet = _pick_subnet()
        self.gateway = str(self.subnet.network_address + 1)
        self.bridge = f"rt{self.run_id}br"
        # Short: Ray's Unix sockets live under it (sun_path holds 107 bytes).
        self.base = Path(base_parent) / f"rt{self.run_id}"
        self.base.mkdir(mode=0o755)
        self.base.chmod(0o755)  # the postgres user traverses it
        self.hosts: dict[str, Host] = {}
        self.ray_token = secrets.token_hex(32)
        self.env: dict[str, str] = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.ray_token}
        self.gcs_address: str | None = None
        self.head: Host | None = None
        self.postgres: Any = None
        self.s3: Any = None
        self._on_close: list[Any] = []
        self._closed = False
        self._save_state()
        atexit.register(self.close)
        try:
            _ip_batch([
                f"link add {self.bridge} type bridge",
                f"addr add {self.gateway}/{self.subnet.prefixlen} dev {self.bridge}",
                f"link set {self.bridge} up",
            ])  # fmt: skip
        except BaseException:
            self.close()
            raise

    def _save_state(self) -> None:
        """Record what this run creates, before creating it, for reap_stale()."""
        STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = {
            "run_id": self.run_id,
            "owner_pid": os.getpid(),
            "owner_start": _process_start(os.getpid()),
            "namespaces": [host.netns for host in self.hosts.values()],
            "links": [host.veth for host in self.hosts.values()],
            "bridge": self.bridge,
            "base": str(self.base),
        }
        path = STATE_DIR / f"{self.run_id}.json"
        path.with_suffix(".tmp").write_text(json.dumps(state))
        path.with_suffix(".tmp").replace(path)

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    @property
    def head_dir(self) -> Path:
        """Where the head host's files live (its Ray temp dir too); hidden on workers."""
        return self.base / "head"

    def add_host(self, name: str, *, index: int | None = None, hidden: Sequence[Path] = ()) -> Host:
        """A new host `name` at address .`index` (the next free one from .10 by default),
        hiding `hidden` directories from its processes."""
        if self._closed:
            raise HarnessError("network closed")
        if name in self.hosts:
            raise HarnessError(f"host {name!r} exists")
        used = {host.index for host in self.hosts.values()}
        if index is None:
            index = max(used | {9}) + 1
        if index in used or not 2 <= index <= 254:
            raise HarnessError(f"address .{index} taken or invalid")
        host = Host(self, name, index, hidden)
        for sub in ("home", "tmp", "logs"):
            (host.dir / sub).mkdir(parents=True, exist_ok=True)
        self.hosts[name] = host
        self._save_state()
        _ip_batch([
            f"netns add {host.netns}",
            f"link add {host.veth} type veth peer name eth0 netns {host.netns}",
            f"link set {host.veth} master {self.bridge} up",
        ])  # fmt: skip
        _ip_batch([
            f"addr add {host.ip}/{self.subnet.prefixlen} dev eth0",
            "link set eth0 up",
            "link set lo up",
        ], netns=host.netns)  # fmt: skip
        return host

    def add_worker(
        self,
        name: str,
        *,
        num_cpus: int = 2,
        env: Env | None = None,
        hidden: Sequence[Path] | None = None,
        timeout: float = 60.0,
    ) -> Host:
        """A fresh host running a Ray worker node joined to this network's head; by
        default it cannot see `head_dir`."""
        if self.gcs_address is None:
            raise HarnessError("no Ray head yet")
        host = self.add_host(name, hidden=[self.head_dir] if hidden is None else hidden)
        start_ray_worker(host, self.gcs_address, num_cpus=num_cpus, env=env, timeout=timeout)
        return host

    def on_close(self, callback: Any) -> None:
        """Call `callback()` first thing in close() (e.g. a server's graceful stop)."""
        self._on_close.append(callback)

    def wait_for_nodes(self, n: int | None = None, **kwargs: Any) -> list[str]:
        return wait_for_nodes(self, n, **kwargs)

    def close(self) -> None:
        """Stop what was registered, kill every process of every host, delete the
        namespaces, links and files. Safe to call twice; raises if something stayed."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        errors = []
        for callback in reversed(self._on_close):
            try:
                callback()
            except Exception as error:  # keep tearing down
                errors.append(f"{callback}: {error!r}")
        errors += _teardown({
            "namespaces": [host.netns for host in self.hosts.values()],
            "links": [host.veth for host in self.hosts.values()],
            "bridge": self.bridge,
            "base": str(self.base),
        })  # fmt: skip
        for host in self.hosts.values():
            for process in [*host.processes, host._keeper]:
                if process is not None and process.poll() is None:
                    try:
                        process.wait(5)
                    except subprocess.TimeoutExpired:
                        errors.append(f"{host.name}: pid {process.pid} did not exit")
        (STATE_DIR / f"{self.run_id}.json").unlink(missing_ok=True)
        if errors:
            raise HarnessError("cleanup incomplete:\n" + "\n".join(errors))

    def __enter__(self) -> Network:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- Ray ------------------------------------------------------------------------------------

_WAIT_FOR_NODES = """
import json, sys, time
from ray._raylet import GcsClient
from ray.core.generated.gcs_pb2 import GcsNodeInfo

address, n, ips, exact, timeout = sys.argv[1], int(sys.argv[2]), set(sys.argv[3].split()), \
    sys.argv[4] == "1", float(sys.argv[5])
deadline, alive, error = time.monotonic() + timeout, [], None
client = GcsClient(address=address)
while True:
    try:
        infos = client.get_all_node_info(timeout=5).values()
        alive = sorted(info.node_manager_address for info in infos
                       if info.state == GcsNodeInfo.GcsNodeState.ALIVE)
        error = None
    except Exception as exc:
        error = repr(exc)
    if error is None and ips <= set(alive) and (len(alive) == n if exact else len(alive) >= n):
        print(json.dumps(alive))
        sys.exit(0)
    if time.monotonic() > deadline:
        sys.exit(f"alive nodes {alive} (want {'' if exact else '>='}{n}, with {sorted(ips)}); "
                 f"last error: {error}")
    time.sleep(0.2)
"""


def wait_for_nodes(
    network: Network,
    n: int | None = None,
    *,
    ips: Sequence[str] = (),
    exact: bool = False,
    timeout: float = 60.0,
    watch: Sequence[LoggedProcess] = (),
) -> list[str]:
    """Wait until the GCS lists at least `n` (exactly `n` with `exact`, e.g. after a host
    died) ALIVE nodes, including one at each of `ips`; the IPs of the alive nodes. Asked
    from the head host. Fails early, with its log, if a `watch`ed process exits."""
    if network.gcs_address is None or network.head is None:
        raise HarnessError("no Ray head")
    n = len(ips) if n is None else n
    head = network.head
    probe = subprocess.Popen(
        head.command([PYTHON, "-c", _WAIT_FOR_NODES, network.gcs_address, str(n), " ".join(ips),
                      "1" if exact else "0", str(timeout)]),
        env=head.env(), cwd=head.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout + 30
    while probe.poll() is None:
        for process in watch:
            if process.poll() is not None:
                probe.kill()
                probe.communicate()
                raise HarnessError(
                    f"pid {process.pid} exited with {process.returncode} while waiting "
                    f"for nodes:\n{_log_tail(process)}"
                )
        if time.monotonic() > deadline:
            probe.kill()
            break
        time.sleep(0.1)
    out, err = probe.communicate()
    if probe.returncode != 0:
        logs = "\n".join(_log_tail(process) for process in watch)
        raise HarnessError(f"waiting for Ray nodes: {err.strip()[-3000:]}\n{logs}")
    return list(json.loads(out))


def _log_tail(process: LoggedProcess, lines: int = 40) -> str:
    try:
        text = process.log.read_text(errors="replace")
    except OSError:
        return ""
    return f"--- {process.log} ---\n" + "\n".join(text.splitlines()[-lines:])


def _ray_start(
    host: Host,
    args: Sequence[str],
    *,
    num_cpus: int,
    object_store_memory: int,
    env: Env | None,
    extra_args: Sequence[str],
) -> LoggedProcess:
    """`ray start ... --block` on `host`: the node's processes stay its children, and when
    one of them dies (the raylet killed) `ray start` takes the rest of the node down, as
    a machine or container running Ray would lose the node."""
    argv = [
        str(RAY), "start", *args, "--block",
        "--node-ip-address", host.ip,
        f"--num-cpus={num_cpus}",
        f"--object-store-memory={object_store_memory}",
        "--disable-usage-stats",
        # A temp dir per host: its own session dir, sockets, logs, ray_current_cluster.
        "--temp-dir", str(host.dir / "ray"),
        *extra_args,
    ]  # fmt: skip
    return host.popen(argv, env, log=host.logs / "ray-start.log")


def start_ray_head(
    host: Host,
    num_cpus: int = 0,
    env: Env | None = None,
    *,
    port: int = RAY_PORT,
    object_store_memory: int = OBJECT_STORE_BYTES,
    extra_args: Sequence[str] = (),
    wait: bool = True,
    timeout: float = 60.0,
) -> str:
    """A Ray head on `host` (no CPUs by default: nothing is scheduled on it unless
    asked); its GCS address. With `wait=False` it returns at once (`wait_for_nodes`
    later), so other servers can start meanwhile."""
    process = _ray_start(
        host, ["--head", "--port", str(port), "--include-dashboard=false"], num_cpus=num_cpus,
        object_store_memory=object_store_memory, env=env, extra_args=extra_args,
    )  # fmt: skip
    host.network.head = host
    host.network.gcs_address = f"{host.ip}:{port}"
    host.network.env["RAY_ADDRESS"] = host.network.gcs_address
    host.ray_process = process
    if wait:
        wait_for_nodes(host.network, ips=[host.ip], timeout=timeout, watch=[process])
    return host.network.gcs_address


def start_ray_worker(
    host: Host,
    head_address: str,
    num_cpus: int = 2,
    env: Env | None = None,
    *,
    object_store_memory: int = OBJECT_STORE_BYTES,
    extra_args: Sequence[str] = (),
    wait: bool = True,
    timeout: float = 60.0,
) -> LoggedProcess:
    """A Ray worker node on `host` joined to `head_address`; its `ray start` process.
    (Directories the worker must not see are the host's: `add_host(..., hidden=...)`.)"""
    process = _ray_start(
        host, ["--address", head_address], num_cpus=num_cpus,
        object_store_memory=object_store_memory, env=env, extra_args=extra_args,
    )  # fmt: skip
    host.ray_process = process
    if wait:
        wait_for_nodes(host.network, ips=[host.ip], timeout=timeout, watch=[process])
    return process
