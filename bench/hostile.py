"""Hostile requests: what each class costs the service in memory and time, against its limit.

The script starts a real `reasoning serve` on loopback in auth mode `token` (temporary
home, the shipped limits), and sends one request of each hostile class, one at a time:

- parquet bomb: 20,000 rows of one 60,000-character text (kilobytes; 1.2 GB decoded);
- zip bomb: a plain-encoded Parquet whose text compresses 1000:1 (declares 1.2 GB);
- long cell: a CSV with one cell of 1 MB;
- wide upload: a CSV of 5,000 columns;
- stranger's body: 30 MB of JSON with no token, sent slowly (only the first 64 KB arrive
  before the answer is read);
- wide design: a fit on a table with a 50,000-level categorical (a design matrix far over
  the limit);
- big filter: 10,001 values in an `in` list; 2,000 values that do not fit the column;
- bad keys: 200 exchanges with wrong secrets from 20 threads, while another tenant
  exchanges its key (its latency is the figure).

While each runs, a sampler reads the resident memory (RSS) of the ingress replica's
process every 20 ms. It prints per class the answer, the time to it, and the ingress's
peak RSS above its level before the request; then how long the other tenant's exchange
took during the burst. The limits: every class refused with its 4xx, the ingress's peak
growth far below the decoded size the class asked for, every answer within a second or
two, the other tenant unaffected.

    .venv/bin/python bench/hostile.py
"""

from __future__ import annotations

import io
import json
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not an installed package

from bench.tables import table  # noqa: E402
from reasoning.service.stores import Stores  # noqa: E402
from tests.integration.service import Service  # noqa: E402

INGRESS_TITLE = "ServeReplica:reasoning:ReasoningIngress"


def ingress_process() -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        if any(INGRESS_TITLE in part for part in proc.info["cmdline"] or []):
            return proc
    raise RuntimeError("no ingress replica process found")


class PeakRss:
    """Samples a process's RSS in a thread; `peak - base` is what a request added."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self.base, self.peak = proc, proc.memory_info().rss, 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.running = False
        self.thread.join()


def parquet(table_: pa.Table, **options: object) -> bytes:
    out = io.BytesIO()
    pq.write_table(table_, out, compression="zstd", **options)
    return out.getvalue()


def upload(http: httpx.Client, name: str, content: bytes) -> httpx.Response:
    return http.post("/v1/datasets", files={"file": (name, content)})


def stranger_body(service: Service) -> str:
    """30 MB declared, 64 KB sent, no token: the answer must come before the body."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        head = (f"POST /v1/reasoning/fit HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {30 * 2**20}\r\n\r\n")
        sock.sendall(head.encode() + b"{\"x\": \"" + b"a" * 65_536)
        answer = sock.recv(4096)
    return answer.split(b"\r\n", 1)[0].decode()


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="reasoning-bench-hostile-"))
    stores = Stores.resolve(home)
    stores.upgrade()
    credentials = stores.credentials()
    keys = {t: credentials.create_key(t)[1] for t in ("alpha", "beta")}
    service = Service(home, REASONING_AUTH_MODE="token").start()
    try:
        token = httpx.post(f"{service.url}/v1/auth/token", json={"api_key": keys["alpha"]},
                           timeout=30).json()["access_token"]
        http = httpx.Client(base_url=service.url, timeout=120,
                            headers={"authorization": f"Bearer {token}"})
        wide_levels = "\n".join(f"{i},street-{i},{i % 7}" for i in range(50_000))
        dataset = upload(http, "streets.csv",
                         f"price,street,rooms\n{wide_levels}\n".encode()).json()
        rows = 20_000
        bomb = pa.DictionaryArray.from_arrays(pa.array([0] * rows, type=pa.int32()),
                                              pa.array(["x" * 60_000]))
        # Made before the clock starts: only the service's part is timed.
        bomb_file = parquet(pa.table({"s": bomb}))
        zip_file = parquet(pa.table({"s": ["y" * 600_000] * (rows // 10)}),
                           use_dictionary=False)
        cases: list[tuple[str, str, Callable[[], str]]] = [
            ("parquet bomb", "1.2 GB", lambda: str(upload(
                http, "b.parquet", bomb_file).status_code)),
            ("zip bomb", "1.2 GB", lambda: str(upload(http, "z.parquet", zip_file).status_code)),
            ("long cell", "1 MB cell", lambda: str(upload(
                http, "c.csv", b"a,b\n1," + b"z" * 2**20 + b"\n").status_code)),
            ("wide upload", "5,000 columns", lambda: str(upload(
                http, "w.csv", (",".join(f"c{i}" for i in range(5_000)) + "\n"
                                + ",".join("1" * 5_000) + "\n").encode()).status_code)),
            ("stranger's body", "30 MB", lambda: stranger_body(service)),
            ("wide design", "50,000 levels", lambda: str(http.post("/v1/reasoning/fit", json={
                "dataset_id": dataset["dataset_id"],
                "task": {"task_kind": "regression", "label_column": "price"}}).status_code)),
            ("big filter", "10,001 values", lambda: str(http.post("/v1/reasoning/fit", json={
                "dataset_id": dataset["dataset_id"],
                "task": {"task_kind": "regression", "label_column": "price"},
                "filter": {"col": "rooms", "op": "in", "value": list(range(10_001))},
            }).status_code)),
            ("bad values", "2,000 errors", lambda: str(http.post("/v1/reasoning/fit", json={
                "dataset_id": dataset["dataset_id"],
                "task": {"task_kind": "regression", "label_column": "price"},
                "filter": {"col": "rooms", "op": "in", "value": [f"r{i}" for i in range(2000)]},
            }).status_code)),
        ]
        ingress = ingress_process()
        results = []
        for name, size, send in cases:
            with PeakRss(ingress) as rss:
                started = time.monotonic()
                answer = send()
                took = time.monotonic() - started
            results.append([name, size, answer, f"{took:.2f}",
                            f"{(rss.peak - rss.base) / 2**20:.0f}"])
        print(table(["class", "asks for", "answer", "seconds", "ingress RSS peak +MiB"],
                    results))

        # The attacker calls from 127.0.0.2 (loopback is a /8): another address than the
        # tenants', as it would be on a network.
        attacker = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"),
                                timeout=30)
        wrong = keys["alpha"][:-6] + "WRONG!"

        def exchange(key: str, client: httpx.Client | None = None) -> tuple[float, int]:
            t0 = time.monotonic()
            status = (client or httpx).post(f"{service.url}/v1/auth/token",
                                            json={"api_key": key}).status_code
            return time.monotonic() - t0, status

        alone, _ = exchange(keys["beta"])
        with ThreadPoolExecutor(20) as pool:
            burst = [pool.submit(exchange, wrong, attacker) for _ in range(200)]
            time.sleep(0.2)
            during, status = exchange(keys["beta"])
            answers = Counter(f.result()[1] for f in burst)
        print(f"\nanother tenant's token exchange: {alone * 1000:.0f} ms alone, "
              f"{during * 1000:.0f} ms (HTTP {status}) during 200 bad-key exchanges from 20 "
              f"threads at another address, which got {dict(answers)}")
        print(json.dumps({"cases": results, "exchange_ms": [alone * 1000, during * 1000],
                          "burst": dict(answers)}))
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
