"""Distillation quality: what a distilled ReasoningModel gains over one fitted on the labels.

For each dataset a teacher (`xgboost` or `mlp`) is trained on the service with
POST /v1/models/fit; then, for each reasoning family, POST /v1/reasoning/fit distils it
(`teacher_model_id`, with a task naming the label so the card measures the student against
the labels too). The model card gives, on held-out real rows:

- fidelity to the teacher: R² and RMSE (regression), agreement and mean KL (classification);
- accuracy against the labels: test R² or accuracy of the distilled student;
- the label-only baseline: the same family and configuration fitted on the labels alone.

Datasets: Friedman #1 (`sklearn.datasets.make_friedman1`, --friedman-rows rows, 10 columns,
noise 1.0), scikit-learn's diabetes (regression) and breast_cancer (classification, labels
`malignant` / `benign`). Jobs run one at a time on a real `reasoning serve` on loopback
with a temporary home.

Target: the distilled student at least matches the label-only one on accuracy in most rows;
the table says where it does not.

    .venv/bin/python bench/distill_quality.py [--teacher xgboost] [--trials 3] [--datasets ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, make_friedman1

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not an installed package

from bench.tables import table  # noqa: E402
from tests.integration.service import Service, upload, wait_job  # noqa: E402

FAMILIES = ("linear", "gam", "decision_tree", "xgboost")
TEACHERS = ("xgboost", "mlp")
LABEL = "y"


# ------------------------------------------------------------------------------ datasets


@dataclass(frozen=True)
class Dataset:
    """A table with its label column and task kind."""

    name: str
    frame: pd.DataFrame
    task_kind: str

    @property
    def task(self) -> dict[str, str]:
        return {"task_kind": self.task_kind, "label_column": LABEL}

    @property
    def accuracy_metric(self) -> str:
        return "r2" if self.task_kind == "regression" else "accuracy"

    @property
    def fidelity_metrics(self) -> tuple[str, str]:
        return ("r2", "rmse") if self.task_kind == "regression" else ("agreement", "mean_kl")


def friedman1(args: argparse.Namespace) -> Dataset:
    X, y = make_friedman1(n_samples=args.friedman_rows, n_features=10, noise=1.0,
                          random_state=args.seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, 11)]).assign(**{LABEL: y})
    return Dataset("friedman1", frame, "regression")


def diabetes(args: argparse.Namespace) -> Dataset:
    bunch = load_diabetes(as_frame=True)
    return Dataset("diabetes", bunch.frame.rename(columns={"target": LABEL}), "regression")


def breast_cancer(args: argparse.Namespace) -> Dataset:
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.rename(columns=lambda c: c.replace(" ", "_"))
    frame[LABEL] = bunch.target.map(dict(enumerate(bunch.target_names))).astype(str)
    return Dataset("breast_cancer", frame, "classification")


DATASETS: dict[str, Callable[[argparse.Namespace], Dataset]] = {
    "friedman1": friedman1, "diabetes": diabetes, "breast_cancer": breast_cancer,
}


# ---------------------------------------------------------------------------------- jobs


def fit(client: httpx.Client, path: str, body: dict[str, Any], timeout: float
        ) -> tuple[dict[str, Any], float]:
    """Submit a fit, wait for it; return (the finished job, its wall seconds)."""
    start = time.perf_counter()
    response = client.post(path, json=body)
    if response.status_code != 202:
        raise RuntimeError(f"{path} was not accepted: {response.status_code} {response.text}")
    job = wait_job(client, response.json()["job_id"], timeout=timeout)
    return job, time.perf_counter() - start


def card_of(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    return client.get(f"/v1/models/{job['model_id']}").json()


@dataclass
class Row:
    """One distilled family on one dataset: its card's metrics, or why the job failed."""

    dataset: Dataset
    family: str
    seconds: float
    metrics: dict[str, dict[str, float]] | None = None
    error: str | None = None

    def _metric(self, part: str, name: str) -> float | None:
        return (self.metrics or {}).get(part, {}).get(name)

    @property
    def student(self) -> float | None:
        return self._metric("test", self.dataset.accuracy_metric)

    @property
    def baseline(self) -> float | None:
        return self._metric("label_only", self.dataset.accuracy_metric)

    def matches(self, tolerance: float) -> bool:
        """Does the distilled student at least match the label-only one on accuracy?"""
        if self.student is None or self.baseline is None:
            return False
        return self.student >= self.baseline - tolerance

    def why_not(self) -> str:
        name = self.dataset.accuracy_metric
        if self.error is not None:
            return f"the job failed: {self.error}"
        if self.student is None or self.baseline is None:
            return f"the card has no {name} for the student and the label-only baseline"
        return (f"{name} {self.student:.4f} < label-only {self.baseline:.4f} "
                f"({self.student - self.baseline:+.4f})")


def run_dataset(
    client: httpx.Client, dataset: Dataset, args: argparse.Namespace
) -> tuple[dict[str, Any], float, list[Row]]:
    """Upload, train the teacher, distil it into each family; (teacher card, s, rows)."""
    info = upload(client, dataset.frame, dataset.name)
    print(f"{dataset.name}: training the {args.teacher} teacher ...", flush=True)
    job, teacher_s = fit(client, "/v1/models/fit", {
        "dataset_id": info["dataset_id"], "task": dataset.task, "model_types": [args.teacher],
        "n_hyperopt_steps": args.trials, "random_state": args.seed,
    }, args.timeout)
    if job["status"] != "completed":
        raise RuntimeError(f"the {dataset.name} teacher failed: {job['message']}")
    teacher = card_of(client, job)
    rows = []
    for family in args.families:
        print(f"{dataset.name}: distilling into {family} ...", flush=True)
        job, seconds = fit(client, "/v1/reasoning/fit", {
            "dataset_id": info["dataset_id"], "task": dataset.task, "model_types": [family],
            "n_hyperopt_steps": args.trials, "random_state": args.seed,
            "teacher_model_id": teacher["model_id"],
        }, args.timeout)
        if job["status"] == "completed":
            rows.append(Row(dataset, family, seconds, metrics=card_of(client, job)["metrics"]))
        else:
            rows.append(Row(dataset, family, seconds, error=job["message"]))
    return teacher, teacher_s, rows


# ------------------------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def dataset_table(dataset: Dataset, teacher: dict[str, Any], teacher_s: float,
                  rows: list[Row], tolerance: float) -> str:
    """The per-dataset table, with a line about the teacher above it."""
    acc = dataset.accuracy_metric
    first, second = dataset.fidelity_metrics
    counts = teacher["rows"]
    head = (f"{dataset.name}: {dataset.task_kind}, {len(dataset.frame):,} rows "
            f"({counts['train']} train / {counts['validation']} validation / {counts['test']} "
            f"test), {len(dataset.frame.columns) - 1} features; teacher {teacher['family']} "
            f"test {acc} {fmt(teacher['metrics']['test'].get(acc))} (fitted in {teacher_s:.1f} s)")
    body = []
    for row in rows:
        if row.error is not None:
            body.append([row.family, "-", "-", "-", "-", "-", "FAILED", f"{row.seconds:.1f}"])
            continue
        fidelity = (row.metrics or {}).get("fidelity", {})
        gain = (None if row.student is None or row.baseline is None
                else row.student - row.baseline)
        body.append([
            row.family, fmt(fidelity.get(first)), fmt(fidelity.get(second)), fmt(row.student),
            fmt(row.baseline), "-" if gain is None else f"{gain:+.4f}",
            "yes" if row.matches(tolerance) else "NO", f"{row.seconds:.1f}",
        ])
    header = ["family", f"fidelity {first}", f"fidelity {second}", f"test {acc}",
              f"label-only {acc}", "gain", "matches", "job s"]
    return head + "\n" + table(header, body)


def report(args: argparse.Namespace, results: list[tuple[Dataset, dict, float, list[Row]]]
           ) -> bool:
    """Print a table per dataset and the count; return whether most rows match."""
    all_rows = []
    for dataset, teacher, teacher_s, rows in results:
        print()
        print(dataset_table(dataset, teacher, teacher_s, rows, args.tolerance))
        all_rows.extend(rows)
    good = [r for r in all_rows if r.matches(args.tolerance)]
    bad = [r for r in all_rows if not r.matches(args.tolerance)]
    print()
    print(f"teacher {args.teacher}, {args.trials} trial(s) per fit, random_state {args.seed}; "
          "metrics on each dataset's held-out test rows (real rows, never synthetic)")
    print("matches = the distilled student's test accuracy (r2 or accuracy against the labels) "
          "is at least the label-only baseline's"
          + (f" minus {args.tolerance:g}" if args.tolerance else ""))
    print(f"distilled >= label-only in {len(good)} of {len(all_rows)} rows")
    for row in bad:
        print(f"  not in {row.dataset.name} / {row.family}: {row.why_not()}")
    verdict = len(good) > len(all_rows) / 2
    print(f"target: the distilled student at least matches the label-only one in most rows "
          f"-> {'MET' if verdict else 'NOT MET'}")
    return verdict


# --------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", choices=TEACHERS, default="xgboost",
                        help="the teacher's family")
    parser.add_argument("--trials", type=int, default=3,
                        help="n_hyperopt_steps of the teacher and of each student")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES),
                        help="reasoning families to distil into")
    parser.add_argument("--friedman-rows", type=int, default=2_000, help="Friedman #1 rows")
    parser.add_argument("--seed", type=int, default=0, help="data seed and random_state")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="how far below the baseline still counts as matching")
    parser.add_argument("--timeout", type=float, default=3600, help="per job, seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"distill_quality: {args.teacher} teacher, {args.trials} trial(s), datasets "
          f"{', '.join(args.datasets)}, families {', '.join(args.families)}")
    datasets = [DATASETS[name](args) for name in args.datasets]
    results = []
    with tempfile.TemporaryDirectory(prefix="distill-quality-") as tmp:
        print("starting the service ...", flush=True)
        service = Service(Path(tmp) / "service-home")
        try:
            service.start()
            with httpx.Client(base_url=service.url, timeout=120) as client:
                for dataset in datasets:
                    results.append((dataset, *run_dataset(client, dataset, args)))
        finally:
            service.stop()
    report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
