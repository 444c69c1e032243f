"""Load: many concurrent clients against submit, job status and predict while fits run.

The script starts a real `reasoning serve` on loopback with a temporary home, uploads a small
generated table (`reasoning.synthetic.houses`), fits one small model for predict, and submits
three fits and waits until the first runs. Then --clients closed-loop clients (asyncio, one
shared `httpx.AsyncClient` with a connection each) send requests for --seconds, each pausing
about --think seconds between an answer and its next request (0: none), each request one of

- submit: POST /v1/reasoning/fit, a small job (gam or linear, n_hyperopt_steps 1);
- status: GET /v1/jobs/{id} of a job submitted earlier;
- predict: POST /v1/models/{id}/predict with a few rows,

drawn at random with the weights of --mix. Every submit queues a real job, so fits run all
through the measurement (the JobManager runs `max_running_jobs` at once, the rest wait); a
sampler outside the measured clients checks that a job is running every two seconds. The
latency of a request is from sending it until its whole response has arrived; an error is
a response with another status than the route's success status, or a transport error.

It prints count, errors, throughput and p50 / p95 / p99 per route, the error kinds, and
whether the targets hold: zero errors, submit p99 <= 100 ms, job status p99 <= 50 ms,
predict p99 <= 150 ms, and back to back (--think 0) at least 200 requests/s in all. The
service is stopped at the end; the jobs still queued die with it.

    .venv/bin/python bench/load.py [--clients 50] [--seconds 60] [--think 0]
                                   [--mix submit=1,status=2,predict=1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not an installed package

from bench.tables import table  # noqa: E402
from reasoning.synthetic import houses  # noqa: E402
from tests.integration.service import Service, upload, wait_job  # noqa: E402

ROUTES = ("submit", "status", "predict")
SUCCESS = {"submit": 202, "status": 200, "predict": 200}
TARGET_P99_MS = {"submit": 100.0, "status": 50.0, "predict": 150.0}
"""p99 targets per route in milliseconds; every route must also have zero errors."""
TARGET_RATE = 200.0
"""Requests per second in all, back to back (--think 0)."""
FAMILIES = ("gam", "linear")
LABEL = "price"


@dataclass
class RouteStats:
    """Latencies of the successful and failed requests of one route, and the error kinds."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, seconds: float, error: str | None) -> None:
        self.latencies.append(seconds)
        if error is not None:
            self.errors[error] += 1

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


@dataclass
class Workload:
    """What the clients send: ids set up before the run, and the jobs submitted during it."""

    dataset_id: str
    model_id: str
    rows: list[dict[str, Any]]
    job_ids: list[str]
    seed: int

    def fit_body(self, rng: random.Random) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "task": {"task_kind": "regression", "label_column": LABEL},
            "model_types": [rng.choice(FAMILIES)],
            "n_hyperopt_steps": 1,
            "random_state": self.seed,
        }


def parse_mix(text: str) -> dict[str, float]:
    """`submit=1,status=2,predict=1` -> route weights."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in ROUTES:
            raise argparse.ArgumentTypeError(f"unknown route {name!r}; routes: {ROUTES}")
        mix[name.strip()] = float(weight)
    return mix


# ------------------------------------------------------------------------------- set-up


def prepare(client: httpx.Client, rows: int, seed: int) -> Workload:
    """Upload the table and fit the model predict uses."""
    frame = houses(rows, seed=seed).drop(columns="segment")  # derived from price: a leak
    dataset = upload(client, frame, "houses")
    workload = Workload(dataset["dataset_id"], "", [], [], seed)
    body = workload.fit_body(random.Random(seed)) | {"model_types": ["gam"]}
    first = client.post("/v1/reasoning/fit", json=body)
    first.raise_for_status()
    job = wait_job(client, first.json()["job_id"], timeout=600)
    if job["status"] != "completed":
        raise RuntimeError(f"the predict model's fit failed: {job['message']}")
    workload.model_id = job["model_id"]
    workload.job_ids.append(job["job_id"])
    features = frame.drop(columns=LABEL).head(5)
    workload.rows = json.loads(features.to_json(orient="records", date_format="iso"))
    return workload


def warm_up(client: httpx.Client, workload: Workload) -> None:
    """Each route a few times, so the first measured requests pay no one-off costs, and a
    fit running (the first of these submits) before the measurement starts."""
    for _ in range(3):
        predicted = client.post(f"/v1/models/{workload.model_id}/predict",
                                json={"dataframe_records": workload.rows, "top_k": 3})
        if predicted.status_code != 200:
            raise RuntimeError(f"predict failed: {predicted.status_code} {predicted.text}")
        submitted = client.post("/v1/reasoning/fit", json=workload.fit_body(random.Random()))
        submitted.raise_for_status()
        workload.job_ids.append(submitted.json()["job_id"])
        client.get(f"/v1/jobs/{workload.job_ids[-1]}").raise_for_status()
    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{workload.job_ids[-3]}").json()["status"] == "pending":
        if time.monotonic() > deadline:
            raise RuntimeError("no submitted job started running in 120 s")
        time.sleep(0.2)


# --------------------------------------------------------------------------------- load


async def one_request(
    client: httpx.AsyncClient, route: str, workload: Workload, rng: random.Random
) -> tuple[float, str | None]:
    """Send one request of the route; its latency in seconds and its error kind (or None)."""
    start = time.perf_counter()
    try:
        if route == "submit":
            response = await client.post("/v1/reasoning/fit", json=workload.fit_body(rng))
        elif route == "status":
            response = await client.get(f"/v1/jobs/{rng.choice(workload.job_ids)}")
        else:
            response = await client.post(
                f"/v1/models/{workload.model_id}/predict",
                json={"dataframe_records": workload.rows, "top_k": 3},
            )
    except httpx.HTTPError as err:
        return time.perf_counter() - start, type(err).__name__
    elapsed = time.perf_counter() - start
    if response.status_code != SUCCESS[route]:
        return elapsed, f"HTTP {response.status_code}"
    if route == "submit":
        workload.job_ids.append(response.json()["job_id"])
    return elapsed, None


async def run_client(
    client: httpx.AsyncClient, workload: Workload, mix: dict[str, float], stop_at: float,
    think: float, rng: random.Random, stats: dict[str, RouteStats],
) -> None:
    """One client: a request, its answer, a pause of mean `think` seconds (none if 0), again."""
    routes, weights = list(mix), list(mix.values())
    if think > 0:  # start spread out, not all at once
        await asyncio.sleep(rng.uniform(0, think))
    while time.perf_counter() < stop_at:
        route = rng.choices(routes, weights)[0]
        elapsed, error = await one_request(client, route, workload, rng)
        stats[route].record(elapsed, error)
        if think > 0:
            await asyncio.sleep(rng.expovariate(1 / think))


async def sample_running(client: httpx.AsyncClient, stop_at: float, every: float) -> list[int]:
    """Running jobs every `every` seconds during the run (not counted in the routes' stats)."""
    samples = []
    while time.perf_counter() < stop_at:
        response = await client.get("/v1/jobs", params={"status": "running", "limit": 10})
        samples.append(len(response.json()["jobs"]) if response.status_code == 200 else -1)
        await asyncio.sleep(every)
    return samples


@dataclass
class Result:
    stats: dict[str, RouteStats]
    wall: float
    running_samples: list[int]
    jobs_before: dict[str, int]
    jobs_after: dict[str, int]
    client_cpu: float = 0.0


async def run_load(url: str, workload: Workload, args: argparse.Namespace) -> Result:
    stats = {route: RouteStats() for route in ROUTES}
    limits = httpx.Limits(max_connections=args.clients + 1,
                          max_keepalive_connections=args.clients + 1)
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits) as client:
        before = await job_counts(client)
        start = time.perf_counter()
        stop_at = start + args.seconds
        rngs = [random.Random(args.seed * 1000 + i) for i in range(args.clients)]
        sampler = asyncio.create_task(sample_running(client, stop_at, 2.0))
        await asyncio.gather(*(
            run_client(client, workload, args.mix, stop_at, args.think, rng, stats)
            for rng in rngs
        ))
        wall = time.perf_counter() - start
        samples = await sampler
        after = await job_counts(client)
    return Result(stats, wall, samples, before, after)


async def job_counts(client: httpx.AsyncClient) -> dict[str, int]:
    """Jobs per status (at most 1000 each)."""
    out = {}
    for status in ("pending", "running", "completed", "failed"):
        response = await client.get("/v1/jobs", params={"status": status, "limit": 1000})
        out[status] = len(response.json()["jobs"])
    return out


# ------------------------------------------------------------------------------- report


def report(args: argparse.Namespace, result: Result) -> bool:
    """Print the tables; True when every target holds."""
    rows, ok = [], True
    for route in ROUTES:
        s = result.stats[route]
        n, errors = len(s.latencies), sum(s.errors.values())
        rows.append([
            route, f"{n:,}", f"{errors:,}", f"{n / result.wall:.1f}",
            *(f"{s.percentile_ms(q):.1f}" for q in (50, 95, 99)),
            f"{max(s.latencies, default=float('nan')) * 1000:.1f}",
        ])
    print()
    print(table(["route", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                rows))
    kinds = [[route, kind, f"{count:,}"] for route in ROUTES
             for kind, count in result.stats[route].errors.most_common()]
    print()
    print(table(["route", "error", "count"], kinds) if kinds else "errors: none")
    samples = result.running_samples
    busy = sum(1 for n in samples if n > 0)
    print(f"\nfits running in {busy} of {len(samples)} samples (every 2 s); jobs before -> after:"
          f" " + ", ".join(f"{k} {result.jobs_before[k]} -> {result.jobs_after[k]}"
                           for k in result.jobs_before) + " (counts capped at 1000)")
    print(f"the clients' own CPU: {result.client_cpu:.1f} s in {result.wall:.1f} s "
          f"({result.client_cpu / result.wall:.0%} of a core)")
    print("\ntargets:")
    errors = sum(sum(s.errors.values()) for s in result.stats.values())
    ok = errors == 0
    print(f"  zero errors: {errors} -> {'met' if errors == 0 else 'NOT met'}")
    for route, target in TARGET_P99_MS.items():
        p99 = result.stats[route].percentile_ms(99)
        met = p99 <= target
        ok = ok and met
        print(f"  {route} p99 <= {target:.0f} ms: {p99:.1f} ms -> {'met' if met else 'NOT met'}")
    if args.think == 0:
        rate = sum(len(s.latencies) for s in result.stats.values()) / result.wall
        met = rate >= TARGET_RATE
        ok = ok and met
        print(f"  back to back, >= {TARGET_RATE:.0f} req/s in all: {rate:.1f} -> "
              f"{'met' if met else 'NOT met'}")
    if busy < len(samples):
        print("  (warning: some samples saw no running fit)")
    return ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=60, help="length of the measurement")
    parser.add_argument("--mix", type=parse_mix, default=parse_mix("submit=1,status=2,predict=1"),
                        help="route weights, e.g. submit=1,status=2,predict=1")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean pause of a client between its requests, seconds (exponential);"
                        " 0: back to back, so --clients requests are always in flight")
    parser.add_argument("--url", default=None,
                        help="use this running service instead of starting one (development)")
    parser.add_argument("--rows", type=int, default=2000, help="rows of the table fitted on")
    parser.add_argument("--seed", type=int, default=0, help="data seed, random_state, client rngs")
    parser.add_argument("--timeout", type=float, default=30, help="per request, seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mix = ", ".join(f"{k} {v:g}" for k, v in args.mix.items())
    print(f"load: {args.clients} clients for {args.seconds:g} s, think {args.think:g} s, mix {mix};"
          f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    if args.url:
        result = measure(args.url, args)
    else:
        with tempfile.TemporaryDirectory(prefix="load-") as tmp:
            service = Service(Path(tmp) / "service-home")
            print("starting the service ...", flush=True)
            try:
                service.start()
                result = measure(service.url, args)
            except BaseException:
                if service.log.exists():
                    print(f"service log (end):\n{service.log.read_text()[-6000:]}",
                          file=sys.stderr)
                raise
            finally:
                service.stop()
    return 0 if report(args, result) else 1


def measure(url: str, args: argparse.Namespace) -> Result:
    """Set up the workload on the service at `url`, then run the clients against it."""
    with httpx.Client(base_url=url, timeout=120) as client:
        print("fitting the predict model ...", flush=True)
        workload = prepare(client, args.rows, args.seed)
        warm_up(client, workload)
    print(f"running {args.clients} clients for {args.seconds:g} s ...", flush=True)
    cpu = time.process_time()
    result = asyncio.run(run_load(url, workload, args))
    result.client_cpu = time.process_time() - cpu
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return result


if __name__ == "__main__":
    sys.exit(main())
