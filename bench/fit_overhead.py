"""Fit overhead: the service's fit job against a plain single-process script doing the same work.

Both paths fit the same xgboost ReasoningModel on the same generated table
(`reasoning.synthetic.houses`, label `price`):

- service: a real `reasoning serve` on loopback (its own temp home). The table is uploaded as CSV,
  then POST /v1/reasoning/fit is timed from submit until GET /v1/jobs/{id} says `completed`.
  The job is polled every --poll seconds and the first time each stage is seen is noted
  (pending -> queued -> train -> finalize -> completed), which gives the stage timings.
- plain: this process, no Ray. The same CSV bytes are read with `reasoning.readers.read_table`
  and stored in a `DatasetStore` (that is the upload, untimed, as on the service side); then the
  timed part does what the job does: load, `prepare`, the same trial configurations one after
  another through `score_trial`, `finalize`, and the `ModelRegistry` write.

The configurations come from the generator the service uses, Ray Tune's
`BasicVariantGenerator(random_state=seed)`, driven without running Tune (`add_configurations`
then `next_trial`); after the service run they are checked against the model card's `trials`.

The service runs first (all repeats) and is stopped before the plain runs, so its idle Ray
processes do not take CPU from the plain script.

    .venv/bin/python bench/fit_overhead.py [--rows 50000] [--trials 8] [--seed 0] [--repeat 1]
        [--family xgboost] [--ratio R] [--wall SECONDS]

Issue 9's figures: `--rows 50000 --trials 8 --repeat 3 --ratio 1.0`, `--rows 400000
--trials 8 --ratio 0.8`, and the small job `--rows 2000 --family gam --trials 1 --repeat 3
--wall 1.5`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not an installed package

from actors.trainer import sample_configs  # noqa: E402
from bench.tables import table  # noqa: E402
from reasoning.readers import read_table  # noqa: E402
from reasoning.schemas import ReasoningFitRequest, Trial  # noqa: E402
from reasoning.service.dataset_store import DatasetStore  # noqa: E402
from reasoning.service.registry import ModelRegistry  # noqa: E402
from reasoning.service.stores import Stores  # noqa: E402
from reasoning.synthetic import houses  # noqa: E402
from reasoning.training import finalize, prepare, score_trial  # noqa: E402
from tests.integration.service import Service  # noqa: E402

LABEL = "price"
TARGET_START = 0.3
"""Seconds from submit to the first trial running (the train stage seen), at most."""
TARGET_OVERHEAD = 0.2
"""CPU-slot seconds per trial the service's train stage may hold beyond the fits, at most."""
PHASES = ("accepted", "pending", "queued", "train", "finalize", "completed")
"""Job phases in order: the POST's 202, then the job's status while pending/completed, else the
running job's stage."""


# ------------------------------------------------------------------------------ service


@dataclass
class ServiceRun:
    """One fit job through the REST API: wall time, first sighting of each phase, its card."""

    wall: float
    seen: dict[str, float]
    card: dict[str, Any]
    polls: int

    def start_of(self, phase: str) -> float:
        """When the phase began: the first poll that showed it or any later phase."""
        later = PHASES[PHASES.index(phase):]
        return min(self.seen[p] for p in later if p in self.seen)

    @property
    def to_train(self) -> float:
        return self.start_of("train")

    @property
    def train(self) -> float:
        return self.start_of("finalize") - self.start_of("train")

    @property
    def finalize(self) -> float:
        return self.wall - self.start_of("finalize")


def fit_request(dataset_id: str, family: str, n_trials: int, seed: int) -> dict[str, Any]:
    """The body of POST /v1/reasoning/fit, also used (validated) by the plain path."""
    return {
        "dataset_id": dataset_id,
        "task": {"task_kind": "regression", "label_column": LABEL},
        "model_types": [family],
        "n_hyperopt_steps": n_trials,
        "random_state": seed,
    }


def service_fit(
    client: httpx.Client, dataset_id: str, family: str, n_trials: int, seed: int, poll: float,
    timeout: float,
) -> ServiceRun:
    """Submit one fit job and poll it until it is completed; raise if it fails."""
    body = fit_request(dataset_id, family, n_trials, seed)
    start = time.perf_counter()
    response = client.post("/v1/reasoning/fit", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"fit was not accepted: {response.status_code} {response.text}")
    job_id = response.json()["job_id"]
    seen: dict[str, float] = {"accepted": time.perf_counter() - start}
    polls = 0
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        now = time.perf_counter() - start
        polls += 1
        phase = job["stage"] if job["status"] == "running" else job["status"]
        seen.setdefault(phase, now)
        if job["status"] == "failed":
            raise RuntimeError(f"job {job_id} failed: {job['message']}\n{job.get('error')}")
        if job["status"] == "completed":
            break
        if now > timeout:
            raise RuntimeError(f"job {job_id} did not finish in {timeout:.0f} s: {job}")
        time.sleep(poll)
    card = client.get(f"/v1/models/{job['model_id']}").json()
    return ServiceRun(wall=seen["completed"], seen=seen, card=card, polls=polls)


# -------------------------------------------------------------------------------- plain


@dataclass
class PlainRun:
    """One in-process fit: wall time, its parts, and what it produced."""

    wall: float
    load_split: float
    trial_times: list[float]
    finalize: float
    trials: list[Trial] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def plain_fit(
    store: DatasetStore, registry: ModelRegistry, dataset_id: str,
    configs: list[dict[str, Any]], seed: int,
) -> PlainRun:
    """What the job's pipeline does, in sequence: load, split, trials, finalize, register."""
    request = ReasoningFitRequest.model_validate(
        fit_request(dataset_id, configs[0]["family"], len(configs), seed))
    start = time.perf_counter()
    data = prepare(store.load(dataset_id), request)
    split_done = time.perf_counter()
    trials, times = [], []
    for config in configs:
        t0 = time.perf_counter()
        try:
            score = score_trial(data, config["family"], config["params"], request.random_state)
            ok = math.isfinite(score)
            trials.append(Trial(**config, score=score if ok else None))
        except Exception as exc:  # the service records a failed trial the same way
            trials.append(Trial(**config, score=None, error=f"{type(exc).__name__}: {exc}"))
        times.append(time.perf_counter() - t0)
    trials_done = time.perf_counter()
    model, card = finalize(data, request, trials, str(uuid.uuid4()), "reasoning_fit")
    registry.add(model, card)
    end = time.perf_counter()
    return PlainRun(
        wall=end - start, load_split=split_done - start, trial_times=times,
        finalize=end - trials_done, trials=trials, metrics=card.metrics.test,
    )


# ------------------------------------------------------------------------------- report


def compare_configs(configs: list[dict[str, Any]], card: dict[str, Any]) -> str:
    """Do the generated configurations equal the card's trials (in order)?"""
    served = [{"family": t["family"], "params": t["params"]} for t in card["trials"]]
    if served == configs:
        return f"yes, all {len(configs)} equal, in the same order"
    def canonical(items: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps(c, sort_keys=True) for c in items)

    if canonical(served) == canonical(configs):
        return "same set, different order"
    same = sum(c in served for c in configs)
    return f"NO: {same} of {len(configs)} generated configurations are in the card"


def compare_scores(plain: PlainRun, card: dict[str, Any]) -> str:
    """Do the plain run's validation losses and test metrics equal the service's?"""
    pairs = [
        (p.score, s["score"]) for p, s in zip(plain.trials, card["trials"], strict=True)
        if p.score is not None and s["score"] is not None
    ]
    worst = max((abs(a - b) / max(abs(b), 1e-12) for a, b in pairs), default=0.0)
    test = card["metrics"]["test"]
    metric_diff = max(
        (abs(plain.metrics[k] - v) / max(abs(v), 1e-12) for k, v in test.items()), default=0.0
    )
    verdict = "yes" if worst <= 1e-9 and metric_diff <= 1e-9 else "NO"
    return (f"{verdict} (max relative difference: trial scores {worst:.1e}, "
            f"test metrics {metric_diff:.1e})")


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(
    args: argparse.Namespace, slots: int, csv_bytes: int, upload_s: float,
    service: list[ServiceRun], plain: list[PlainRun], configs_match: str, scores_match: str,
) -> bool:
    """Print the tables and notes; return whether the target is met."""
    n = args.trials
    concurrent = min(n, slots)

    def overhead(s: ServiceRun, p: PlainRun) -> float:
        return (s.train * concurrent - sum(p.trial_times)) / n

    rows = []
    for i, (s, p) in enumerate(zip(service, plain, strict=True), 1):
        rows.append([str(i), f"{s.wall:.2f}", f"{p.wall:.2f}", f"{s.wall / p.wall:.2f}x",
                     f"{sum(p.trial_times):.2f}", f"{s.train:.2f}", f"{overhead(s, p):+.2f}"])
    ratios = [s.wall / p.wall for s, p in zip(service, plain, strict=True)]
    if len(rows) > 1:
        rows.append([
            "median", f"{median([s.wall for s in service]):.2f}",
            f"{median([p.wall for p in plain]):.2f}", f"{median(ratios):.2f}x",
            f"{median([sum(p.trial_times) for p in plain]):.2f}",
            f"{median([s.train for s in service]):.2f}",
            f"{median([overhead(s, p) for s, p in zip(service, plain, strict=True)]):+.2f}",
        ])
    print()
    print(table(["run", "service s", "plain s", "service/plain", "plain trials s",
                 "service train s", "overhead/trial s"], rows))

    s, p = service[-1], plain[-1]
    print()
    print(f"where the time goes (last run), seconds; polled every {args.poll} s "
          f"({s.polls} polls), so service stage edges are +/- {args.poll} s")
    print(table(["stage", "service", "plain"], [
        ["submit -> train: launch, load, split", f"{s.to_train:.2f}", f"{p.load_split:.2f}"],
        [f"train: {n} trials", f"{s.train:.2f}", f"{sum(p.trial_times):.2f}"],
        ["finalize: refit, test, explain, register", f"{s.finalize:.2f}", f"{p.finalize:.2f}"],
        ["total", f"{s.wall:.2f}", f"{p.wall:.2f}"],
    ]))
    print("plain per-trial fit times (s): " + ", ".join(f"{t:.2f}" for t in p.trial_times))
    print("service phases first seen at, s after submit (accepted = the POST returned):")
    for i, run in enumerate(service, 1):
        print(f"  run {i}: " + ", ".join(f"{k} {v:.2f}" for k, v in run.seen.items()))


    print()
    print(f"dataset: {args.rows:,} rows, CSV {csv_bytes / 1e6:.1f} MB, uploaded once in "
          f"{upload_s:.2f} s (not counted in either path)")
    print(f"configs: {n} sampled with BasicVariantGenerator(random_state={args.seed}); "
          f"equal to the model card's trials: {configs_match}")
    print(f"same results: plain trial scores and test metrics equal the service's: "
          f"{scores_match}")
    print(f"overhead/trial = (service train-stage wall x {concurrent} concurrent trials "
          f"- plain summed trial time) / {n} trials, where concurrent = min(trials, "
          f"{slots} trial slots)")
    print("  i.e. the CPU-slot time the service's train stage held beyond the fits themselves:")
    print("  worker start-up and imports, data transfer, reporting, slots left idle when")
    print("  trials do not pack evenly, and contention between trials running side by side.")
    start = median([r.to_train for r in service])
    per_trial = median([overhead(r, q) for r, q in zip(service, plain, strict=True)])
    wall = median([r.wall for r in service])
    checks = [
        (f"per-job start (submit -> train) <= {TARGET_START} s", f"{start:.2f} s",
         start <= TARGET_START),
        (f"overhead/trial <= {TARGET_OVERHEAD} s", f"{per_trial:+.2f} s",
         per_trial <= TARGET_OVERHEAD),
    ]
    if args.ratio is not None:
        checks.insert(0, (f"service <= {args.ratio:.1f}x plain on {slots} CPUs",
                          f"{median(ratios):.2f}x", median(ratios) <= args.ratio))
    if args.wall is not None:
        checks.append((f"submit -> completed <= {args.wall} s", f"{wall:.2f} s",
                       wall <= args.wall))
    print()
    print(table(["target (medians)", "result", "met"],
                [[what, got, "MET" if ok else "NOT MET"] for what, got, ok in checks]))
    return all(ok for _, _, ok in checks)


# --------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the generated table")
    parser.add_argument("--trials", type=int, default=8, help="n_hyperopt_steps")
    parser.add_argument("--family", default="xgboost", help="the one family searched")
    parser.add_argument("--ratio", type=float, default=None,
                        help="target: service wall at most this times the plain script's")
    parser.add_argument("--wall", type=float, default=None,
                        help="target: submit -> completed at most this many seconds")
    parser.add_argument("--seed", type=int, default=0, help="data seed and random_state")
    parser.add_argument("--repeat", type=int, default=1, help="fits per path")
    parser.add_argument("--poll", type=float, default=0.05, help="job poll interval, seconds")
    parser.add_argument("--slots", type=int, default=len(os.sched_getaffinity(0)),
                        help="CPUs the service's Ray has for trials (default: this machine's)")
    parser.add_argument("--timeout", type=float, default=3600, help="per job, seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"fit_overhead: {args.rows:,} rows, {args.trials} {args.family} trials, "
          f"seed {args.seed}, repeat {args.repeat}, {args.slots} CPUs")
    frame = houses(args.rows, seed=args.seed)
    csv = frame.to_csv(index=False).encode()
    configs = sample_configs([args.family], args.trials, args.seed)

    with tempfile.TemporaryDirectory(prefix="fit-overhead-") as tmp:
        service_runs: list[ServiceRun] = []
        print("starting the service ...", flush=True)
        service = Service(Path(tmp) / "service-home")
        try:
            service.start()
            with httpx.Client(base_url=service.url, timeout=120) as client:
                t0 = time.perf_counter()
                response = client.post("/v1/datasets", data={"name": "houses"},
                                       files={"file": ("houses.csv", csv)})
                upload_s = time.perf_counter() - t0
                if response.status_code != 201:
                    raise RuntimeError(f"upload failed: {response.status_code} {response.text}")
                dataset_id = response.json()["dataset_id"]
                for i in range(args.repeat):
                    print(f"service fit {i + 1}/{args.repeat} ...", flush=True)
                    service_runs.append(service_fit(
                        client, dataset_id, args.family, args.trials, args.seed, args.poll,
                        args.timeout,
                    ))
        finally:
            service.stop()

        plain = Stores.resolve(Path(tmp) / "plain-home")
        plain.upgrade()
        store, registry = plain.datasets(), plain.models()
        uploaded = read_table("houses.csv", csv)
        plain_id = str(store.add(uploaded, "houses").dataset_id)
        assert store.load(plain_id).dtypes.equals(uploaded.dtypes), "dtypes changed in store"
        plain_runs: list[PlainRun] = []
        for i in range(args.repeat):
            print(f"plain fit {i + 1}/{args.repeat} ...", flush=True)
            plain_runs.append(plain_fit(store, registry, plain_id, configs, args.seed))

    card = service_runs[-1].card
    met = report(
        args, args.slots, len(csv), upload_s, service_runs, plain_runs,
        compare_configs(configs, card), compare_scores(plain_runs[-1], card),
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
