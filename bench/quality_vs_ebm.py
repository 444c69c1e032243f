"""Quality against InterpretML's EBM: the service's `gam` and `xgboost` beside the glass-box
model a user would pick instead, on the same training rows and the same held-out rows.

Issue 12. Contenders, each fitted on exactly the table's training rows and scored on exactly
its held-out test rows (split here, seeded, stratified for classification):

- EBM: `interpret.glassbox.ExplainableBoosting{Regressor,Classifier}()` with every default
  (so `n_jobs=-2`: all cores but one), each fit in a child process of its own; wall time =
  `fit`. A fit still running after --ebm-timeout seconds is killed (by its process id) and the
  table's EBM is fitted again with `interactions=0`, marked †: on wine, whose classes the
  training rows separate, EBM's defaults never stop early (the validation log loss keeps
  falling) and boost every pair up to `max_rounds`, which takes hours here. For multiclass
  tables EBM's own warning suggests `interactions=0` too.
- service `gam` and `xgboost`: a real `reasoning serve` on loopback (temporary home), the
  training rows uploaded as a DataFrame with `reasoning.client.Client` (untimed), then
  POST /v1/reasoning/fit with the family and `n_hyperopt_steps` 5 and nothing else, as a
  user would ask; wall time = submit until the job is seen `completed`. The service splits
  the rows it was given itself (train / validation / its own test for the card), so its
  train/validation split happens inside the training rows. The held-out rows are then
  scored through POST /v1/models/{id}/predict.

Quality: R² (regression), AUROC (binary), one-vs-rest macro AUROC (multiclass). Tables:
scikit-learn's bundled breast_cancer, diabetes and wine (no download), and two generated
tables with pairwise interactions (bench/interaction_tables.py): `census` (binary, mixed
dtypes, missing values) and `prices` (regression). Wall times are medians of --repeat runs.
All service runs come first; the service is stopped before EBM runs, so its idle Ray
processes take no CPU from EBM.

DiffModel: a teacher served here over HTTP (values and exact Jacobians of
f = smooth main effects + 1.5·x1·x2) distilled into `gam` with `teacher_get_grads_url`; the
model card's fidelity gives value R² and gradient cosine on held-out rows.

The service runs the code of the tree this script is in (that folder is its working
directory and PYTHONPATH, which Ray's workers inherit; not whatever the virtualenv's editable
install points at), so a copy of another commit measures that commit:
`git archive COMMIT | tar -x -C DIR`, copy this script and bench/interaction_tables.py into
DIR/bench, and run it from there. The notes print the commit and the chosen hyperparameters.

Targets (issue 12): `gam` scores at least EBM on every table, in less wall time; the
DiffModel student reaches value R² ≥ 0.999 and gradient cosine ≥ 0.995.

    .venv/bin/python bench/quality_vs_ebm.py [--repeat 3] [--trials 5] [--tables ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` is not an installed package

from bench.interaction_tables import (  # noqa: E402
    PAIRWISE_COLUMNS,
    additive_ceiling,
    census,
    pairwise_inputs,
    pairwise_teacher,
    prices,
)
from reasoning.client import Client, ServiceError  # noqa: E402
from reasoning.schemas import ModelCard  # noqa: E402
from tests.integration.service import Service  # noqa: E402
from tests.teacher_server import TeacherServer  # noqa: E402

FAMILIES = ("gam", "xgboost")
TARGET_R2 = 0.999
TARGET_COSINE = 0.995


# ------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Case:
    """One table split once: every contender fits `train` and is scored on `test`."""

    name: str
    label: str
    task_kind: str
    train: pd.DataFrame
    test: pd.DataFrame

    @property
    def classes(self) -> list[str]:
        return sorted(str(v) for v in self.train[self.label].unique())

    @property
    def metric(self) -> str:
        if self.task_kind == "regression":
            return "R²"
        return "AUROC" if len(self.classes) == 2 else "AUROC (OvR macro)"

    @property
    def features(self) -> pd.DataFrame:
        return self.test.drop(columns=[self.label])

    def score(self, predicted: np.ndarray) -> float:
        """Quality on the held-out rows: values (n,), or probabilities (n, K) in `classes`."""
        y = self.test[self.label]
        if self.task_kind == "regression":
            return float(r2_score(y, predicted))
        y = y.astype(str)
        if len(self.classes) == 2:
            return float(roc_auc_score(y == self.classes[1], predicted[:, 1]))
        return float(roc_auc_score(y, predicted, multi_class="ovr", average="macro",
                                   labels=self.classes))


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as plain identifiers (sklearn's have spaces and slashes)."""
    return frame.rename(columns=lambda c: re.sub(r"\W+", "_", str(c)).strip("_"))


def _named_labels(bunch: Any) -> pd.DataFrame:
    frame = _clean(bunch.data)
    frame["y"] = bunch.target.map(dict(enumerate(bunch.target_names))).astype(str)
    return frame


def split(name: str, frame: pd.DataFrame, label: str, task_kind: str,
          args: argparse.Namespace) -> Case:
    """The one train/test split every contender shares (seeded; stratified for classes)."""
    stratify = frame[label] if task_kind == "classification" else None
    train, test = train_test_split(frame, test_size=args.test_size, random_state=args.seed,
                                   stratify=stratify)
    return Case(name, label, task_kind, train.reset_index(drop=True),
                test.reset_index(drop=True))


TABLES: dict[str, Callable[[argparse.Namespace], Case]] = {
    "breast_cancer": lambda a: split("breast_cancer", _named_labels(
        load_breast_cancer(as_frame=True)), "y", "classification", a),
    "diabetes": lambda a: split("diabetes", _clean(load_diabetes(as_frame=True).frame)
                                .rename(columns={"target": "y"}), "y", "regression", a),
    "wine": lambda a: split("wine", _named_labels(load_wine(as_frame=True)), "y",
                            "classification", a),
    "census": lambda a: split("census", census(a.census_rows, a.seed), "income",
                              "classification", a),
    "prices": lambda a: split("prices", prices(a.price_rows, a.seed), "price", "regression", a),
}


# -------------------------------------------------------------------------- contenders


@dataclass
class Outcome:
    """One contender on one table: quality and wall seconds of each run, or why it failed."""

    quality: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    error: str | None = None
    cards: list[ModelCard] = field(default_factory=list)
    timed_out: float | None = None
    """EBM: its defaults were killed after this many seconds; the runs are the fallback's."""

    @property
    def score(self) -> float | None:
        """The median run's quality (fits are seeded, so the runs should agree)."""
        return statistics.median(self.quality) if self.quality and not self.error else None

    @property
    def wall(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds and not self.error else None

    @property
    def spread(self) -> float:
        return max(self.quality) - min(self.quality) if self.quality else 0.0


EBM_FALLBACK: dict[str, Any] = {"interactions": 0}
"""What EBM is fitted with on a table where its defaults ran past --ebm-timeout."""


def ebm_run(case: Case, options: dict[str, Any]) -> tuple[float, float]:
    """EBM (defaults, but for `options`) on the training rows: (test quality, fit seconds)."""
    import warnings

    from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

    warnings.filterwarnings("ignore", module="interpret")  # missing values, multiclass pairs
    X, y = case.train.drop(columns=[case.label]), case.train[case.label]
    if case.task_kind == "regression":
        model: Any = ExplainableBoostingRegressor(**options)
    else:
        model, y = ExplainableBoostingClassifier(**options), y.astype(str)
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    if case.task_kind == "regression":
        return case.score(model.predict(case.features)), seconds
    order = [[str(c) for c in model.classes_].index(c) for c in case.classes]
    return case.score(model.predict_proba(case.features)[:, order]), seconds


def _ebm_child(case: Case, options: dict[str, Any], out: Any) -> None:
    try:
        out.send(ebm_run(case, options))
    except Exception as err:  # the parent reports it
        out.send(f"{type(err).__name__}: {err}")


def ebm_in_child(case: Case, options: dict[str, Any], timeout: float
                 ) -> tuple[float, float] | str | None:
    """`ebm_run` in a fresh process, so a fit that runs too long can be stopped: its result,
    an error message, or None when it was killed after `timeout` seconds."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    # Not a daemon: joblib would run EBM with n_jobs=1 in one, whatever the machine.
    child = ctx.Process(target=_ebm_child, args=(case, options, send))
    child.start()
    send.close()
    try:
        if receive.poll(timeout):
            return receive.recv()
        return None
    except EOFError:
        return f"the EBM process ended with exit code {child.exitcode}"
    finally:
        if child.is_alive():
            child.kill()  # this child alone, by its own process id
        child.join(30)
        receive.close()


def service_run(client: Client, dataset_id: str, case: Case, family: str,
                args: argparse.Namespace) -> tuple[float, float, ModelCard]:
    """One fit job as a user asks for it, then the held-out rows through predict:
    (quality, submit → completed seconds, the model card)."""
    body = {"dataset_id": dataset_id, "model_types": [family],
            "n_hyperopt_steps": args.trials,
            "task": {"task_kind": case.task_kind, "label_column": case.label}}
    start = time.perf_counter()
    accepted = client.fit(body)
    job = client.wait(accepted.job_id, poll=args.poll, timeout=args.timeout)
    seconds = time.perf_counter() - start
    if job.status != "completed" or job.model_id is None:
        raise RuntimeError(f"job {job.job_id} {job.status}: {job.message} {job.error or ''}")
    card = client.model(job.model_id)
    scored = client.predict(job.model_id, case.test, top_k=1)
    if case.task_kind == "regression":
        predicted = scored.predictions["prediction"].to_numpy(float)
    else:
        predicted = scored.predictions[[f"p({c})" for c in case.classes]].to_numpy(float)
    return case.score(predicted), seconds, card


# ---------------------------------------------------------------------------- DiffModel


class PairwiseTeacher(TeacherServer):
    """The tests' teacher server with one more route pair: /pairwise/{predict,grads} answer
    `pairwise_teacher`'s values and its exact Jacobians, in the request's column order."""

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path not in ("/pairwise/predict", "/pairwise/grads"):
            return super().answer(path, body)
        split_ = body["dataframe_split"]
        frame = pd.DataFrame(split_["data"], columns=split_["columns"])
        value, jac = pairwise_teacher(frame)
        if path == "/pairwise/predict":
            return 200, {"predictions": value.tolist()}
        zeros = np.zeros(len(frame))
        columns = [jac[:, PAIRWISE_COLUMNS.index(c)] if c in PAIRWISE_COLUMNS else zeros
                   for c in frame.columns]
        return 200, {"jacobians": np.column_stack(columns).tolist()}


@dataclass
class DiffResult:
    """The distilled student's fidelity to the pairwise teacher, from its model card."""

    r2: float | None
    cosine: float | None
    rmse: float | None
    ceiling: float
    seconds: float
    rows: int
    error: str | None = None

    @property
    def met(self) -> bool:
        return (self.r2 is not None and self.cosine is not None
                and self.r2 >= TARGET_R2 and self.cosine >= TARGET_COSINE)


def diffmodel_run(client: Client, teacher: PairwiseTeacher, args: argparse.Namespace
                  ) -> DiffResult:
    """Distil the pairwise DiffModel teacher into `gam`, as a user would."""
    frame = pairwise_inputs(args.diffmodel_rows, args.seed)
    ceiling = additive_ceiling(frame)
    info = client.upload(frame, "pairwise")
    start = time.perf_counter()
    accepted = client.fit({
        "dataset_id": str(info.dataset_id), "model_types": ["gam"],
        "task": {"task_kind": "regression", "label_column": "y"},
        "teacher_predict_url": f"{teacher.url}/pairwise/predict",
        "teacher_get_grads_url": f"{teacher.url}/pairwise/grads",
    })
    job = client.wait(accepted.job_id, poll=args.poll, timeout=args.timeout)
    seconds = time.perf_counter() - start
    if job.status != "completed" or job.model_id is None:
        return DiffResult(None, None, None, ceiling, seconds, len(frame),
                          error=f"{job.status}: {job.message} {job.error or ''}")
    fidelity = client.model(job.model_id).metrics.fidelity
    return DiffResult(fidelity.get("r2"), fidelity.get("gradient_cosine"), fidelity.get("rmse"),
                      ceiling, seconds, len(frame))


# --------------------------------------------------------------------------------- runs


def run_service(cases: list[Case], args: argparse.Namespace, tmp: Path
                ) -> tuple[dict[tuple[str, str], Outcome], DiffResult | None]:
    """Every service fit (and the DiffModel distillation) on one `reasoning serve`."""
    outcomes: dict[tuple[str, str], Outcome] = {}
    diff = None
    teacher = PairwiseTeacher()
    # The teacher listens on 127.0.0.1; every other non-public address stays refused.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    service = Service(tmp / "service-home", REASONING_TEACHER_ALLOW="127.0.0.1/32",
                      PYTHONPATH=path)
    print(f"starting the service from {ROOT} ...", flush=True)
    here = Path.cwd()
    try:
        os.chdir(ROOT)  # `python -m serve_app.cli` looks in its working folder first
        try:
            service.start()
        finally:
            os.chdir(here)
        with Client(service.url, timeout=300) as client:
            for case in cases:
                info = client.upload(case.train, case.name)
                for family in FAMILIES:
                    outcome = outcomes[(case.name, family)] = Outcome()
                    for run in range(1, args.repeat + 1):
                        try:
                            quality, seconds, card = service_run(
                                client, str(info.dataset_id), case, family, args)
                        except (RuntimeError, ServiceError, TimeoutError) as err:
                            outcome.error = str(err)
                            print(f"  {case.name} / {family}: FAILED: {err}", flush=True)
                            break
                        outcome.quality.append(quality)
                        outcome.seconds.append(seconds)
                        outcome.cards.append(card)
                        print(f"  {case.name} / service {family} run {run}: {case.metric} "
                              f"{quality:.4f}, {seconds:.2f} s", flush=True)
            if args.diffmodel:
                diff = diffmodel_run(client, teacher, args)
                print(f"  DiffModel teacher -> gam: R² {fmt(diff.r2)}, gradient cosine "
                      f"{fmt(diff.cosine)}{' FAILED: ' + diff.error if diff.error else ''}",
                      flush=True)
    finally:
        service.stop()
        teacher.close()
    return outcomes, diff


def run_ebm(cases: list[Case], args: argparse.Namespace) -> dict[str, Outcome]:
    """Every EBM fit, one at a time; defaults, or the fallback where they run too long."""
    outcomes: dict[str, Outcome] = {}
    for case in cases:
        outcome = outcomes[case.name] = Outcome()
        options: dict[str, Any] = {}
        run = 1
        while run <= args.repeat:
            result = ebm_in_child(case, options, args.ebm_timeout)
            if result is None and not options:
                outcome.timed_out, options = args.ebm_timeout, EBM_FALLBACK
                print(f"  {case.name} / EBM: defaults still running after "
                      f"{args.ebm_timeout:.0f} s, killed; fitting with {options}", flush=True)
                continue
            if not isinstance(result, tuple):
                outcome.error = result or f"timed out with {options} too"
                print(f"  {case.name} / EBM: FAILED: {outcome.error}", flush=True)
                break
            quality, seconds = result
            outcome.quality.append(quality)
            outcome.seconds.append(seconds)
            print(f"  {case.name} / EBM run {run}: {case.metric} {quality:.4f}, "
                  f"{seconds:.2f} s", flush=True)
            run += 1
    return outcomes


# ------------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 4) -> str:
    return "FAILED" if value is None else f"{value:.{digits}f}"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table: it goes into docs/BENCHMARKS.md as printed."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def code_version() -> str:
    """Which code the service runs: this tree, and its commit when it is a git checkout
    (`-dirty`: with uncommitted changes, such as another engineer's work in progress)."""
    try:
        described = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        described = "not a git checkout"
    return f"{ROOT} ({described})"


def report(args: argparse.Namespace, cases: list[Case], ebm: dict[str, Outcome],
           service: dict[tuple[str, str], Outcome], diff: DiffResult | None,
           loads: tuple[tuple[float, ...], tuple[float, ...]], version: str) -> bool:
    """Print the table, the notes and the verdicts; return whether every target is met."""
    rows, met = [], True
    for case in cases:
        e, g, x = ebm[case.name], service[(case.name, "gam")], service[(case.name, "xgboost")]
        gap = None if e.score is None or g.score is None else g.score - e.score
        ebm_wall = e.wall if e.timed_out is None else e.timed_out
        dagger = " †" if e.timed_out is not None else ""
        ebm_cells = [fmt(e.score) + dagger, ("> " if dagger else "") + fmt(ebm_wall, 2)] \
            if args.ebm else ["-", "-"]
        rows.append([
            f"{case.name}, {case.metric}", f"{len(case.train):,} / {len(case.test):,}",
            ebm_cells[0], fmt(g.score), fmt(x.score), "-" if gap is None else f"{gap:+.4f}",
            ebm_cells[1], fmt(g.wall, 2), fmt(x.wall, 2),
        ])
        met &= (gap is not None and gap >= 0 and g.wall is not None and ebm_wall is not None
                and g.wall < ebm_wall)
    print()
    print(markdown(["table", "train / test rows", "EBM", "service `gam`", "service `xgboost`",
                    "gam − EBM", "EBM s", "gam s", "xgboost s"], rows))
    print()
    print(f"service code: {version}")
    print(f"service: n_hyperopt_steps {args.trials}, default random_state; s = submit → "
          f"completed (polled every {args.poll} s); EBM: defaults (n_jobs=-2 on "
          f"{os.cpu_count()} CPUs), s = fit. Wall times: median of {args.repeat} run(s); data "
          f"seed {args.seed}, test share {args.test_size}")
    for case in cases:
        e = ebm[case.name]
        if e.timed_out is not None:
            print(f"† {case.name}: EBM's defaults were still fitting after {e.timed_out:.0f} s "
                  f"and were stopped; its quality is EBM with {EBM_FALLBACK} (fit in "
                  f"{fmt(e.wall, 2)} s), the wall time the defaults' lower bound")
    print(f"load average before / after: {' '.join(f'{v:.2f}' for v in loads[0])} / "
          f"{' '.join(f'{v:.2f}' for v in loads[1])}")
    for case in cases:
        counts = next((o.cards[0].rows for o in (service[(case.name, f)] for f in FAMILIES)
                       if o.cards), None)
        inner = ("" if counts is None else f"; the service fitted {counts.train} + "
                 f"{counts.validation} of them (train + validation), {counts.test} held for "
                 "its card")
        params = {f: service[(case.name, f)].cards[0].hyperparameters
                  for f in FAMILIES if service[(case.name, f)].cards}
        print(f"  {case.name}: {len(case.train)} training rows{inner}; chosen "
              + "; ".join(f"{f} {p}" for f, p in params.items()))
        contenders = [("EBM", ebm[case.name])] if args.ebm else []
        for who, outcome in (*contenders, *((f, service[(case.name, f)]) for f in FAMILIES)):
            if outcome.error:
                print(f"    {who} FAILED: {outcome.error}")
            elif outcome.spread > 1e-9:
                print(f"    {who}: runs differ in quality by {outcome.spread:.2e}")
            print(f"    {who} runs s: {' / '.join(f'{s:.2f}' for s in outcome.seconds)}")
    verdict = ("not judged (--no-ebm)" if not args.ebm else "MET" if met else "NOT MET")
    print(f"target: service gam >= EBM on every table, in less wall time -> {verdict}")
    if diff is not None:
        print()
        print(f"DiffModel teacher f = sin(2 x1) + 0.5 x2² + 0.8 x3 + 0.3 cos(3 x4) + 1.5 x1 x2 "
              f"({diff.rows} rows, x uniform on [-1, 1]) distilled into service gam in "
              f"{diff.seconds:.2f} s: value R² {fmt(diff.r2)}, gradient cosine "
              f"{fmt(diff.cosine)}, RMSE {fmt(diff.rmse)} (held-out rows; the best any "
              f"additive model can reach: R² {diff.ceiling:.4f})"
              + (f" FAILED: {diff.error}" if diff.error else ""))
        print(f"target: value R² >= {TARGET_R2} and gradient cosine >= {TARGET_COSINE} -> "
              f"{'MET' if diff.met else 'NOT MET'}")
        met &= diff.met
    return met


# --------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="+", choices=list(TABLES), default=list(TABLES))
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender and table")
    parser.add_argument("--trials", type=int, default=5, help="the service's n_hyperopt_steps")
    parser.add_argument("--seed", type=int, default=0, help="generated data and the split")
    parser.add_argument("--test-size", type=float, default=0.25, help="held-out share")
    parser.add_argument("--census-rows", type=int, default=6000)
    parser.add_argument("--price-rows", type=int, default=5000)
    parser.add_argument("--diffmodel-rows", type=int, default=2000)
    parser.add_argument("--diffmodel", action=argparse.BooleanOptionalAction, default=True,
                        help="distil the pairwise DiffModel teacher too")
    parser.add_argument("--ebm-timeout", type=float, default=600,
                        help="seconds an EBM fit may take before it is stopped")
    parser.add_argument("--ebm", action=argparse.BooleanOptionalAction, default=True,
                        help="fit EBM too (--no-ebm: the service's side alone, for a re-run "
                        "after a change to the service)")
    parser.add_argument("--poll", type=float, default=0.1, help="job poll interval, seconds")
    parser.add_argument("--timeout", type=float, default=1800, help="per job, seconds")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import interpret  # noqa: F401 - a dev dependency: say how to get it, up front
    except ImportError:
        print("needs InterpretML: .venv/bin/pip install -e '.[dev]'", file=sys.stderr)
        return 2
    print(f"quality_vs_ebm: tables {', '.join(args.tables)}; {args.repeat} run(s) each")
    cases = [TABLES[name](args) for name in args.tables]
    version = code_version()  # before the run: a shared tree may change meanwhile
    before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="quality-vs-ebm-") as tmp:
        service, diff = run_service(cases, args, Path(tmp))
    if args.ebm:
        print("EBM (service stopped) ...", flush=True)
        ebm = run_ebm(cases, args)
    else:  # its figures do not depend on the service: compare with a recorded run
        ebm = {case.name: Outcome(error="not run (--no-ebm)") for case in cases}
    met = report(args, cases, ebm, service, diff, (before, os.getloadavg()), version)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
