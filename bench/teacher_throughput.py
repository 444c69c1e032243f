"""Teacher throughput: rows per second a same-server teacher labels, by three paths.

One model is trained on the service (POST /v1/models/fit on a generated table,
`reasoning.synthetic.houses`, regression on `price`) and then labels the same --rows rows
in batches of 256, 1024, 4096 and 8192 rows, three ways:

- actor: this process joins the service's Ray cluster as a driver and calls the model's
  TeacherModel actor (`actors.teacher.teacher_model`) with pandas batches, up to 4 in
  flight, as synth-gen does for `teacher_model_id` (no socket).
- HTTP: `reasoning.teachers.HttpTeacher` posts the batches to the same model's
  POST /v1/models/{id}/invocations on the same server (MLflow dataframe_split JSON), up to 4
  in flight, as synth-gen does for `teacher_predict_url`.
- in-process: the model loaded from the service's home with `ModelRegistry` (inside a plain,
  non-Ray `TeacherModel`, so it runs exactly the actor's code), batches one after another in
  this process: the limit, with no transport at all.

The rows labelled are a second generated table (other seed) uploaded to the service and
read back from its `DatasetStore`, so every path sees the dtypes the teacher was trained
on. Every path is warmed up at every batch size before it is timed; each measurement is
repeated --repeat times and the median is reported. The three paths' predictions are
checked to be the same.

Targets at batch 4096: actor >= 5x HTTP, and actor >= 0.5x in-process.

    .venv/bin/python bench/teacher_throughput.py [--rows 32768] [--family xgboost] [--repeat 3]
"""

from __future__ import annotations

import os

# A local Ray started by `reasoning serve` requires token authentication from other
# drivers, and Ray reads the mode once, when it is first imported.
os.environ["RAY_AUTH_MODE"] = "token"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import ray  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not an installed package

from actors.teacher import TeacherModel, teacher_model  # noqa: E402
from bench.tables import table  # noqa: E402
from reasoning.service.stores import Stores  # noqa: E402
from reasoning.synthetic import houses  # noqa: E402
from reasoning.teachers import HttpTeacher, TeacherAnswer  # noqa: E402
from tests.integration.service import Service, upload, wait_job  # noqa: E402

BATCH_SIZES = (256, 1024, 4096, 8192)
IN_FLIGHT = 4
"""Batches in flight on the actor and HTTP paths, as synth-gen keeps them."""
LABEL = "price"
TARGET_BATCH = 4096
TARGET_VS_HTTP = 5.0
TARGET_VS_INPROCESS = 0.5
PATHS = ("actor", "http", "in-process")

Labeller = Callable[[pd.DataFrame, int], TeacherAnswer]
"""Labels a frame in batches of the given size and returns the joined answer."""


# ------------------------------------------------------------------------------ labellers


def by_actor(handle: Any) -> Labeller:
    """Through the TeacherModel actor's handle, up to IN_FLIGHT batches pending."""

    def label(frame: pd.DataFrame, batch_size: int) -> TeacherAnswer:
        answers: list[TeacherAnswer] = []
        pending: list[ray.ObjectRef] = []
        for start in range(0, len(frame), batch_size):
            if len(pending) >= IN_FLIGHT:
                answers.append(ray.get(pending.pop(0)))
            pending.append(handle.predict.remote(frame.iloc[start : start + batch_size]))
        answers.extend(ray.get(pending))
        return TeacherAnswer.concat(answers)

    return label


def by_http(url: str) -> Labeller:
    """POST .../invocations with HttpTeacher, up to IN_FLIGHT requests in flight."""

    def label(frame: pd.DataFrame, batch_size: int) -> TeacherAnswer:
        client = HttpTeacher(url, batch_size=batch_size, max_in_flight=IN_FLIGHT, timeout=300)
        return client.predict(frame)

    return label


def in_process(teacher: TeacherModel) -> Labeller:
    """The loaded model in this process, one batch after another."""

    def label(frame: pd.DataFrame, batch_size: int) -> TeacherAnswer:
        return TeacherAnswer.concat([
            teacher.predict(frame.iloc[start : start + batch_size])
            for start in range(0, len(frame), batch_size)
        ])

    return label


# ---------------------------------------------------------------------------- measuring


@dataclass
class Cell:
    """One path at one batch size: the wall time of each repeat, and its last answer."""

    rows: int
    seconds: list[float] = field(default_factory=list)
    answer: np.ndarray | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows / statistics.median(self.seconds)


def measure(label: Labeller, frame: pd.DataFrame, batch_size: int, repeat: int) -> Cell:
    """Warm up with one batch, then time labelling every row `repeat` times."""
    label(frame.iloc[:batch_size], batch_size)
    cell = Cell(rows=len(frame))
    for _ in range(repeat):
        start = time.perf_counter()
        answer = label(frame, batch_size)
        cell.seconds.append(time.perf_counter() - start)
        cell.answer = answer.values
    return cell


def train_teacher(
    client: httpx.Client, dataset_id: str, family: str, trials: int, seed: int,
    timeout: float,
) -> dict[str, Any]:
    """POST /v1/models/fit and wait for it; return the model card."""
    response = client.post("/v1/models/fit", json={
        "dataset_id": dataset_id,
        "task": {"task_kind": "regression", "label_column": LABEL},
        "model_types": [family],
        "n_hyperopt_steps": trials,
        "random_state": seed,
    })
    if response.status_code != 202:
        raise RuntimeError(f"fit was not accepted: {response.status_code} {response.text}")
    job = wait_job(client, response.json()["job_id"], timeout=timeout)
    if job["status"] != "completed":
        raise RuntimeError(f"teacher fit failed: {job['message']}\n{job.get('error')}")
    return client.get(f"/v1/models/{job['model_id']}").json()


# ------------------------------------------------------------------------------- report


def same_answers(results: dict[int, dict[str, Cell]]) -> str:
    """Do all paths give the in-process predictions, at every batch size?"""
    worst = 0.0
    for cells in results.values():
        reference = cells["in-process"].answer
        for path in ("actor", "http"):
            answer = cells[path].answer
            if answer is None or reference is None or answer.shape != reference.shape:
                return f"NO: the {path} path answered a different shape"
            worst = max(worst, float(np.max(np.abs(answer - reference), initial=0.0)))
    return f"{'yes' if worst <= 1e-9 else 'NO'} (max absolute difference {worst:.1e})"


def report(args: argparse.Namespace, card: dict[str, Any],
           results: dict[int, dict[str, Cell]]) -> bool:
    """Print the table and the verdict; return whether both targets hold."""
    rows = []
    for batch_size, cells in results.items():
        actor, http, local = (cells[p].rows_per_s for p in PATHS)
        rows.append([
            str(batch_size), f"{actor:,.0f}", f"{http:,.0f}", f"{local:,.0f}",
            f"{actor / http:.1f}x", f"{actor / local:.2f}x",
        ])
    print()
    print(table(["batch", "actor rows/s", "HTTP rows/s", "in-process rows/s", "actor/HTTP",
                 "actor/in-process"], rows))
    print()
    test = card["metrics"]["test"]
    print(f"teacher: {card['family']} model {card['model_id']} trained on {args.train_rows:,} "
          f"rows (test r2 {test.get('r2', float('nan')):.3f}); {len(card['features'])} "
          f"feature columns")
    print(f"each cell: {args.rows:,} rows labelled, median of {args.repeat} timed run(s) after "
          f"a warm-up; actor and HTTP keep up to {IN_FLIGHT} batches in flight")
    print(f"same predictions on all three paths: {same_answers(results)}")
    if TARGET_BATCH not in results:
        print(f"targets: batch {TARGET_BATCH} was not measured")
        return False
    cells = results[TARGET_BATCH]
    actor, http, local = (cells[p].rows_per_s for p in PATHS)
    vs_http, vs_local = actor / http, actor / local
    ok_http, ok_local = vs_http >= TARGET_VS_HTTP, vs_local >= TARGET_VS_INPROCESS
    print(f"target at batch {TARGET_BATCH}: actor >= {TARGET_VS_HTTP:g}x HTTP: {vs_http:.1f}x "
          f"-> {'MET' if ok_http else 'NOT MET'}")
    print(f"target at batch {TARGET_BATCH}: actor >= {TARGET_VS_INPROCESS:g}x in-process: "
          f"{vs_local:.2f}x -> {'MET' if ok_local else 'NOT MET'}")
    return ok_http and ok_local


# --------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=32_768,
                        help="rows labelled per measurement")
    parser.add_argument("--family", default="xgboost",
                        help="the teacher's family (any /v1/models/fit family)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per cell")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES),
                        help="rows per batch")
    parser.add_argument("--train-rows", type=int, default=5_000,
                        help="rows of the table the teacher is trained on")
    parser.add_argument("--trials", type=int, default=1, help="the teacher's n_hyperopt_steps")
    parser.add_argument("--seed", type=int, default=0, help="data seed and random_state")
    parser.add_argument("--timeout", type=float, default=1800, help="teacher fit, seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"teacher_throughput: {args.rows:,} rows per measurement, {args.family} teacher, "
          f"batches {', '.join(map(str, args.batch_sizes))}, repeat {args.repeat}")
    results: dict[int, dict[str, Cell]] = {}
    with tempfile.TemporaryDirectory(prefix="teacher-throughput-") as tmp:
        home = Path(tmp) / "service-home"
        print("starting the service ...", flush=True)
        service = Service(home)
        try:
            service.start()
            with httpx.Client(base_url=service.url, timeout=120) as client:
                train = upload(client, houses(args.train_rows, seed=args.seed), "houses-train")
                print(f"training the {args.family} teacher ...", flush=True)
                card = train_teacher(client, train["dataset_id"], args.family, args.trials,
                                     args.seed, args.timeout)
                rows = upload(client, houses(args.rows, seed=args.seed + 1), "houses-rows")
            model_id = card["model_id"]
            features = [f["name"] for f in card["features"]]
            store = Stores.resolve(home).datasets()
            frame = store.load(rows["dataset_id"])[features]
            trained = store.load(train["dataset_id"])[features]
            if not frame.dtypes.equals(trained.dtypes):
                raise RuntimeError(f"dtypes differ from the training table:\n{frame.dtypes}")

            info = service.info
            ray.init(address=info["ray_address"], namespace=info["namespace"],
                     logging_level="WARNING", log_to_driver=False)
            try:
                handle = teacher_model(model_id, str(home))
                ray.get(handle.features.remote())  # created and the model loaded
                labellers = {
                    "actor": by_actor(handle),
                    "http": by_http(f"{service.url}/v1/models/{model_id}/invocations"),
                    "in-process": in_process(TeacherModel(model_id, str(home))),
                }
                for batch_size in args.batch_sizes:
                    print(f"batch {batch_size} ...", flush=True)
                    results[batch_size] = {
                        path: measure(labellers[path], frame, batch_size, args.repeat)
                        for path in PATHS
                    }
            finally:
                ray.shutdown()
        finally:
            service.stop()
    report(args, card, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
