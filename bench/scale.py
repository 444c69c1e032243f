"""Scale: the same xgboost fit (5 trials) at 10k, 100k and 1M rows of the generated table.

A real `reasoning serve` on loopback (its own temp home). For each size the table
(`reasoning.synthetic.houses`, label `price`) is uploaded once as Parquet (untimed), then
POST /v1/reasoning/fit is timed from submit until the job is `completed`, --repeat times.
Meanwhile the machine's memory in use is sampled every 0.2 s; the job's peak memory is
the highest sample above the idle service's level just before the submit (every process
of the job counts: the runner, the trial workers, the object store's copy of the split).

    .venv/bin/python bench/scale.py [--rows 10000,100000,1000000] [--trials 5] [--repeat 3]

Target (issue 9): the 1M-row fit completes within the machine's memory, and its time per
row is at most 1.5x that at 100k.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not an installed package

from bench.fit_overhead import service_fit  # noqa: E402
from bench.tables import table  # noqa: E402
from reasoning.synthetic import houses  # noqa: E402
from tests.integration.service import Service  # noqa: E402

FAMILY = "xgboost"
TARGET_PER_ROW = 1.5
"""Time per row at the largest size, at most this many times that at the one before."""


class MemoryPeak:
    """Samples the machine's memory in use on a thread; `peak` is the highest sample."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak = every, self.used()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def used() -> int:
        memory = psutil.virtual_memory()
        return memory.total - memory.available

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.used())

    def __enter__(self) -> MemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def parquet(rows: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    houses(rows, seed=seed).to_parquet(buffer, index=False)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="10000,100000,1000000",
                        help="comma-separated table sizes")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600, help="per job, seconds")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.rows.split(",")]
    total = psutil.virtual_memory().total
    print(f"scale: {FAMILY}, {args.trials} trials, sizes {sizes}, repeat {args.repeat}, "
          f"{total / 2**30:.0f} GiB memory")

    results: list[tuple[int, list[float], list[int]]] = []
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        service = Service(Path(tmp) / "service-home")
        try:
            service.start()
            with httpx.Client(base_url=service.url, timeout=600) as client:
                for rows in sizes:
                    body = parquet(rows, args.seed)
                    response = client.post("/v1/datasets", data={"name": f"houses-{rows}"},
                                           files={"file": ("houses.parquet", body)})
                    if response.status_code != 201:
                        raise RuntimeError(f"upload: {response.status_code} {response.text}")
                    dataset_id = response.json()["dataset_id"]
                    walls, peaks = [], []
                    for i in range(args.repeat):
                        print(f"{rows:,} rows: fit {i + 1}/{args.repeat} ...", flush=True)
                        time.sleep(2)  # the last job's processes settle
                        idle = MemoryPeak.used()
                        with MemoryPeak() as memory:
                            run = service_fit(client, dataset_id, FAMILY, args.trials,
                                              args.seed, 0.1, args.timeout)
                        walls.append(run.wall)
                        peaks.append(memory.peak - idle)
                    results.append((rows, walls, peaks))
        finally:
            service.stop()

    table_rows = []
    per_row: dict[int, float] = {}
    for rows, walls, peaks in results:
        wall = statistics.median(walls)
        per_row[rows] = wall / rows
        table_rows.append([
            f"{rows:,}", " / ".join(f"{w:.1f}" for w in walls), f"{wall:.2f}",
            f"{max(peaks) / 2**20:,.0f}", f"{per_row[rows] * 1e6:.1f}",
        ])
    print()
    print(table(["rows", "wall s (each run)", "wall s (median)", "peak memory MiB",
                 "time per row µs"], table_rows))
    if len(sizes) < 2:
        return 0
    small, big = sizes[-2], sizes[-1]
    ratio = per_row[big] / per_row[small]
    met = ratio <= TARGET_PER_ROW
    print(f"\ntime per row at {big:,} / at {small:,}: {ratio:.2f}x (target <= "
          f"{TARGET_PER_ROW}x) -> {'MET' if met else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
