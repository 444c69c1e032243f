"""The `reasoning` commands that talk to a running service over REST, through
`reasoning.client.Client`: datasets, fit, jobs, cancel, models, predict, report.

The service is `--url` (or REASONING_URL); an API key, when the service wants one, comes
from REASONING_API_KEY (never an argument: arguments show in `ps`). `--json` prints the
API's own JSON instead of words, for scripts. Exit codes: see EXIT (serve_app/answers.py).

Here: the commands' parsers, `run`, and the short commands; `fit` (and following a job to
its end) is serve_app/fit_command.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.console import Console

from reasoning.client import Client, Scored, ServiceError
from serve_app.answers import (
    EXIT,
    OK,
    REFUSED,
    console,
    dataset_line,
    exit_code,
    model_what,
    print_answer,
    print_json,
    print_listing,
    print_metrics,
)
from serve_app.fit_command import fit_command, follow_job
from serve_app.progress import describe

DEFAULT_URL = "http://127.0.0.1:8000"


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The client commands, on the `reasoning` parser's subcommands."""
    datasets = sub.add_parser("datasets", help="upload, list and show datasets")
    what = datasets.add_subparsers(dest="datasets", required=True)
    upload = _command(what, "upload", "register a CSV or Parquet file", datasets_upload)
    upload.add_argument("file", type=Path)
    upload.add_argument("--name", help="a name for it (default: the file's name)")
    _command(what, "list", "the datasets you have", datasets_list)
    _command(what, "show", "one dataset's columns", datasets_show).add_argument("id")

    fit = _command(sub, "fit", "fit a ReasoningModel and follow it to the end", fit_command)
    fit.add_argument("dataset", help="a dataset id, or a CSV/Parquet file to upload first")
    fit.add_argument("--label", required=True, help="the label column")
    fit.add_argument("--task", choices=["regression", "classification"],
                     help="default: from the label's type (numbers: regression)")
    fit.add_argument("--family", help="the model family: linear, gam (the default),"
                     " decision_tree, xgboost")
    fit.add_argument("--trials", type=int, help="hyperparameter trials (default 5)")
    fit.add_argument("--seed", type=int, help="random_state (default 42)")
    fit.add_argument("--filter", action="append", dest="filters", metavar="EXPR",
                     help="keep rows where EXPR holds, e.g. \"listed_at >= 2020-01-01\","
                     " \"neighborhood in harbor,hills\", \"area_sqm is not null\";"
                     " repeated: all of them")
    teacher = fit.add_mutually_exclusive_group()
    teacher.add_argument("--teacher-model", help="distil this model of the service")
    teacher.add_argument("--teacher-url", help="distil a model served at this URL")
    fit.add_argument("--teacher-header", action="append", default=[], metavar="K=V",
                     help="a header for the teacher URL (repeatable)")
    fit.add_argument("--grads-url", help="the teacher's Jacobians (a DiffModel teacher)")
    fit.add_argument("--no-wait", action="store_true", help="submit and print the job id")

    jobs = _command(sub, "jobs", "list jobs, or show or watch one", jobs_command)
    jobs.add_argument("id", nargs="?")
    jobs.add_argument("--watch", action="store_true", help="follow the job until it ends")
    _command(sub, "cancel", "cancel a pending or running job", cancel_command).add_argument(
        "id")
    _command(sub, "models", "list models, or show one", models_command).add_argument(
        "id", nargs="?")

    predict = _command(sub, "predict", "score a file's rows, with a reason per input column",
                       predict_command)
    predict.add_argument("model")
    predict.add_argument("file", type=Path, help="CSV or Parquet with the model's columns")
    predict.add_argument("-o", "--output", type=Path, help="CSV to write (default stdout)")
    predict.add_argument("--top-k", type=int, help="keep only the k largest reasons per row")
    predict.add_argument("--pairs", action="store_true",
                         help="a gam's pair terms as reasons of their own ('reason: a & b')")

    report = _command(sub, "report", "save a model's report (one HTML page)", report_command)
    report.add_argument("model")
    report.add_argument("-o", "--output", type=Path,
                        help="where to save it (default report-<model id>.html)")
    report.add_argument("--open", action="store_true", help="open it in a browser")


def _command(sub: argparse._SubParsersAction, name: str, help_text: str,
             run: Callable[..., int]) -> argparse.ArgumentParser:
    """A client command's parser, with the options every one of them has."""
    parser = sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT)
    parser.add_argument("--url", default=os.environ.get("REASONING_URL", DEFAULT_URL),
                        help="the service (default $REASONING_URL or %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a client command, turning the service's errors into messages and exit codes."""
    err = console(stderr=True)
    try:
        with Client(args.url, api_key=os.environ.get("REASONING_API_KEY") or None) as client:
            return int(args.run(client, args, console()))
    except ServiceError as error:
        err.print(f"error: {error.problem.detail}", markup=False)
        for item in error.problem.errors or []:
            where = ".".join(str(part) for part in item.get("loc", []))
            err.print(f"  {where}: {item.get('msg')}", markup=False)
        return exit_code(error.status)
    except (ValueError, OSError) as error:
        err.print(f"error: {error}", markup=False)
        return REFUSED


# -- datasets --------------------------------------------------------------------------


def datasets_upload(client: Client, args: argparse.Namespace, out: Console) -> int:
    info = client.upload(args.file, args.name)
    print_answer(out, args.json, info, dataset_line(info))
    return OK


def datasets_list(client: Client, args: argparse.Namespace, out: Console) -> int:
    return print_listing(out, args.json, client.datasets(),
                    ["dataset id", "name", "rows", "columns", "created"],
                    lambda info: [str(info.dataset_id), info.name, f"{info.n_rows:,}",
                                  str(len(info.columns)), f"{info.created_at:%Y-%m-%d %H:%M}"])


def datasets_show(client: Client, args: argparse.Namespace, out: Console) -> int:
    info = client.dataset(args.id)
    print_answer(out, args.json, info, dataset_line(info))
    return OK


# -- jobs, cancel (fit: serve_app/fit_command.py) ----------------------------------------


def jobs_command(client: Client, args: argparse.Namespace, out: Console) -> int:
    if args.id is None:
        return print_listing(out, args.json, client.jobs(),
                        ["job id", "status", "stage", "progress", "created", "message"],
                        lambda job: [str(job.job_id), job.status, job.stage,
                                     f"{job.progress.done}/{job.progress.total}",
                                     f"{job.created_at:%Y-%m-%d %H:%M:%S}", job.message])
    if args.watch:
        return follow_job(client, args.id, args, out)
    job = client.job(args.id)
    if args.json:
        print_json(out, job)
    else:
        out.print(f"job {job.job_id} ({job.kind}): {describe(job)}", markup=False)
        if job.model_id is not None:
            out.print(f"  model {job.model_id}", markup=False)
    return OK


def cancel_command(client: Client, args: argparse.Namespace, out: Console) -> int:
    job = client.cancel(args.id)
    print_answer(out, args.json, job, f"job {job.job_id} {job.status}: {job.message}")
    return OK


# -- models, predict, report -----------------------------------------------------------


def models_command(client: Client, args: argparse.Namespace, out: Console) -> int:
    if args.id is None:
        return print_listing(out, args.json, client.models(),
                        ["model id", "family", "task", "test metrics", "created"],
                        lambda card: [str(card.model_id), card.family,
                                      model_what(card).split(" ", 1)[1],
                                      ", ".join(f"{k} {v:.3g}"
                                                for k, v in card.metrics.test.items()),
                                      f"{card.created_at:%Y-%m-%d %H:%M}"])
    card = client.model(args.id)
    if args.json:
        print_json(out, card)
        return OK
    out.print(f"model {card.model_id}: {model_what(card)}", markup=False)
    out.print(f"  {card.summary}", markup=False)
    out.print(f"  hyperparameters: {json.dumps(card.hyperparameters)}", markup=False)
    print_metrics(card, out)
    top = ", ".join(f"{k} {v:.3g}" for k, v in list(card.explanation.importance.items())[:8])
    out.print(f"  importance: {top}", markup=False)
    return OK


def read_rows(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as it is (whole numbers stay whole beside missing values); the
    service coerces the values to the model's types."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype_backend="numpy_nullable")


def scored_table(frame: pd.DataFrame, scored: Scored) -> pd.DataFrame:
    """The input rows, then the prediction (and class probabilities), then one
    `reason: <column>` per input column (blank beyond top_k), and per pair term with
    `--pairs`."""
    features = [c for c in scored.reasons.columns if c not in ("base_value", "output")]
    reasons = scored.reasons[features].add_prefix("reason: ")
    return pd.concat([frame, scored.predictions, reasons,
                      scored.reasons[["base_value"]]], axis=1)


def predict_command(client: Client, args: argparse.Namespace, out: Console) -> int:
    frame = read_rows(args.file)
    scored = client.predict(args.model, frame, top_k=args.top_k, pairs=args.pairs)
    if args.json:
        print_json(out, {"responses": [r.model_dump(mode="json") for r in scored.responses]})
        return OK
    table = scored_table(frame, scored)
    if args.output is None:
        table.to_csv(sys.stdout, index=False)
    else:
        table.to_csv(args.output, index=False)
        out.print(f"wrote {len(table):,} rows with predictions and reasons to {args.output}",
                  markup=False)
    return OK


def report_command(client: Client, args: argparse.Namespace, out: Console) -> int:
    page = client.report(args.model)
    path: Path = args.output or Path(f"report-{args.model}.html")
    path.write_text(page, encoding="utf-8")
    if args.json:
        print_json(out, {"model_id": args.model, "path": str(path.resolve()), "bytes": len(page)})
    else:
        out.print(f"wrote the report of model {args.model} to {path}", markup=False)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return OK
