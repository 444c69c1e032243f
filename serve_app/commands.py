"""The `reasoning` commands that talk to a running service over REST, through
`reasoning.client.Client`: datasets, fit, jobs, cancel, models, predict, report.

The service is `--url` (or REASONING_URL); an API key, when the service wants one, comes
from REASONING_API_KEY (never an argument: arguments show in `ps`). `--json` prints the
API's own JSON instead of words, for scripts. Exit codes: see EXIT below.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
from pydantic import BaseModel
from rich.console import Console
from rich.prompt import Confirm
from rich.table import Column, Table

from reasoning.client import Client, Scored, ServiceError
from reasoning.schemas import DatasetInfo, Job, ModelCard
from serve_app.progress import JobDisplay, describe

DEFAULT_URL = "http://127.0.0.1:8000"

OK, FAILED, REFUSED, NOT_FOUND, DENIED, UNAVAILABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
EXIT = f"""exit codes: {OK} done; {FAILED} the job failed (or was cancelled); {REFUSED} the
request was refused (bad arguments, a 4xx); {NOT_FOUND} no such dataset, job or model;
{DENIED} authentication failed; {UNAVAILABLE} the service could not be reached or failed
(a 5xx); {INTERRUPTED} interrupted (Ctrl-C)"""

COMPARISON = re.compile(r"^\s*(?P<col>[^<>=!]+?)\s*(?P<op>==|!=|>=|<=|>|<|=)\s*(?P<value>.*)$")
WORD_OPS = {" not in ": "not_in", " in ": "in", " is not null": "is_not_null",
            " is null": "is_null"}


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
        return _exit_code(error.status)
    except (ValueError, OSError) as error:
        err.print(f"error: {error}", markup=False)
        return REFUSED


def console(stderr: bool = False) -> Console:
    """Words for people: no colouring of numbers, and lines not cut at 80 columns in a pipe."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _exit_code(status: int) -> int:
    if status == 404:
        return NOT_FOUND
    if status in (401, 403):
        return DENIED
    if status == 0 or status >= 500:
        return UNAVAILABLE
    return REFUSED


def _json(out: Console, value: BaseModel | list[BaseModel] | dict[str, Any]) -> None:
    if isinstance(value, list):
        data: Any = [v.model_dump(mode="json") for v in value]
    elif isinstance(value, BaseModel):
        data = value.model_dump(mode="json")
    else:
        data = value
    out.print_json(json.dumps(data), highlight=False)


def _answer(out: Console, as_json: bool, value: BaseModel, words: str) -> None:
    """The API's JSON for scripts, or a line for people."""
    if as_json:
        _json(out, value)
    else:
        out.print(words, markup=False)


def _listing(out: Console, as_json: bool, found: list[Any], headers: list[str],
             cells: Callable[[Any], list[str]]) -> int:
    """A list as the API's JSON, or as a table whose ids are never cut (people copy them)."""
    if as_json:
        _json(out, found)
        return OK
    table = Table(*(Column(h, no_wrap=True) if h.endswith(" id") else h for h in headers))
    for item in found:
        table.add_row(*cells(item))
    out.print(table)
    return OK


# -- datasets --------------------------------------------------------------------------


def _dataset_line(info: DatasetInfo) -> str:
    columns = ", ".join(f"{c.name}:{c.dtype}" for c in info.columns)
    return f"dataset {info.dataset_id} ({info.name}): {info.n_rows:,} rows; {columns}"


def datasets_upload(client: Client, args: argparse.Namespace, out: Console) -> int:
    info = client.upload(args.file, args.name)
    _answer(out, args.json, info, _dataset_line(info))
    return OK


def datasets_list(client: Client, args: argparse.Namespace, out: Console) -> int:
    return _listing(out, args.json, client.datasets(),
                    ["dataset id", "name", "rows", "columns", "created"],
                    lambda info: [str(info.dataset_id), info.name, f"{info.n_rows:,}",
                                  str(len(info.columns)), f"{info.created_at:%Y-%m-%d %H:%M}"])


def datasets_show(client: Client, args: argparse.Namespace, out: Console) -> int:
    info = client.dataset(args.id)
    _answer(out, args.json, info, _dataset_line(info))
    return OK


# -- fit, jobs, cancel -------------------------------------------------------------------


def parse_filter(expressions: list[str]) -> dict[str, Any] | None:
    """`col op value` expressions as the API's filter (several: all of them).

    Values are read as JSON when they parse (numbers, true/false, null, "quoted text"),
    else as text; `in`/`not in` take a comma-separated list.
    """
    leaves = [_leaf(text) for text in expressions]
    if not leaves:
        return None
    return leaves[0] if len(leaves) == 1 else {"kind": "and", "filters": leaves}


def _leaf(text: str) -> dict[str, Any]:
    padded = f" {text.strip()} "
    lowered = padded.lower()
    for word, op in WORD_OPS.items():
        at = lowered.find(word)
        if at > 0:
            column, rest = padded[:at].strip(), padded[at + len(word):].strip()
            if op in ("in", "not_in"):
                return {"kind": "cmp", "col": column, "op": op,
                        "value": [_value(v) for v in rest.split(",") if v.strip()]}
            if not rest:
                return {"kind": "cmp", "col": column, "op": op}
    if found := COMPARISON.match(text):
        op = "==" if found["op"] == "=" else found["op"]
        return {"kind": "cmp", "col": found["col"].strip(), "op": op,
                "value": _value(found["value"])}
    raise ValueError(f"cannot read the filter {text!r}: write 'column op value' with op one"
                     " of == != < <= > >= in, 'not in', 'is null', 'is not null'")


def _value(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _fit_request(args: argparse.Namespace, dataset: DatasetInfo,
                 out: Console) -> dict[str, Any]:
    """The API's fit request from the command's flags; only what was given (the service
    fills in its defaults), and the task from the label's type when not given."""
    task = args.task
    if task is None:
        dtypes = {c.name: c.dtype for c in dataset.columns}
        if args.label not in dtypes:
            raise ValueError(f"the dataset has no column {args.label!r}; it has "
                             + ", ".join(dtypes))
        task = "regression" if dtypes[args.label] in ("integer", "float") else "classification"
        if not args.json:
            out.print(f"task: {task} ({args.label} is {dtypes[args.label]}; --task to choose)",
                      markup=False)
    body: dict[str, Any] = {
        "dataset_id": str(dataset.dataset_id),
        "task": {"task_kind": task, "label_column": args.label},
    }
    optional = {"model_types": [args.family] if args.family else None,
                "n_hyperopt_steps": args.trials,
                "random_state": args.seed, "filter": parse_filter(args.filters or []),
                "teacher_model_id": args.teacher_model, "teacher_predict_url": args.teacher_url,
                "teacher_get_grads_url": args.grads_url}
    if args.teacher_header:
        optional["teacher_predict_headers"] = dict(
            _header(text) for text in args.teacher_header)
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _header(text: str) -> tuple[str, str]:
    name, found, value = text.partition("=")
    if not found or not name.strip():
        raise ValueError(f"--teacher-header {text!r}: write NAME=VALUE")
    return name.strip(), value


def _dataset(client: Client, given: str, out: Console, quiet: bool) -> DatasetInfo:
    """An id, or a file uploaded first."""
    path = Path(given)
    if path.is_file():
        info = client.upload(path)
        if not quiet:
            out.print(f"uploaded {path.name} as {_dataset_line(info)}", markup=False)
        return info
    try:
        UUID(given)
    except ValueError:
        raise ValueError(f"{given!r} is neither a file nor a dataset id") from None
    return client.dataset(given)


def fit_command(client: Client, args: argparse.Namespace, out: Console) -> int:
    dataset = _dataset(client, args.dataset, out, args.json)
    accepted = client.fit(_fit_request(args, dataset, out))
    if args.no_wait:
        if args.json:
            _json(out, accepted)
        else:
            out.print(f"job {accepted.job_id} {accepted.message}; follow it with:"
                      f" reasoning jobs {accepted.job_id} --watch", markup=False)
        return OK
    if not args.json:
        out.print(f"job {accepted.job_id} {accepted.message}", markup=False)
    return _follow(client, str(accepted.job_id), args, out)


def _follow(client: Client, job_id: str, args: argparse.Namespace, out: Console) -> int:
    """Wait for the job with a live display; Ctrl-C asks whether to cancel it."""
    try:
        if args.json:
            job = client.wait(job_id)
        else:
            with JobDisplay(out) as display:
                job = client.wait(job_id, on_progress=display.update)
    except KeyboardInterrupt:
        return _interrupted(client, job_id, out)
    if args.json:
        _json(out, job)
    elif card := print_outcome(client, job, out):
        out.print(f"  report:   reasoning report {card.model_id} --open", markup=False)
    return OK if job.status == "completed" else FAILED


def _interrupted(client: Client, job_id: str, out: Console) -> int:
    err = console(stderr=True)
    cancel = False
    if sys.stdin.isatty():
        try:
            cancel = Confirm.ask(f"\ncancel job {job_id}? (no: leave it running)",
                                 console=err, default=False)
        except (KeyboardInterrupt, EOFError):
            cancel = False
    if cancel:
        job = client.cancel(job_id)
        err.print(f"job {job_id} {job.status}: {job.message}", markup=False)
    else:
        err.print(f"job {job_id} left running; follow it with: reasoning jobs {job_id} --watch",
                  markup=False)
    return INTERRUPTED


def print_outcome(client: Client, job: Job, out: Console) -> ModelCard | None:
    """How the job ended; for a model, what it is and its metrics."""
    seconds = (job.finished_at - job.created_at).total_seconds() if job.finished_at else None
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    if job.status != "completed" or job.model_id is None:
        out.print(f"job {job.job_id} {job.status}{took}: {job.message}", markup=False)
        return None
    card = client.model(job.model_id)
    out.print(f"completed{took}: model {card.model_id} ({_what(card)})", markup=False)
    _metrics(card, out)
    return card


def _what(card: ModelCard) -> str:
    task = card.task.task_kind if card.task else "teacher targets"
    label = f" of {card.task.label_column}" if card.task else ""
    taught = " distilled from a teacher" if card.teacher else ""
    return f"{card.family} {task}{label}{taught}"


def _metrics(card: ModelCard, out: Console) -> None:
    for name, values in (("test", card.metrics.test), ("fidelity", card.metrics.fidelity),
                         ("label-only", card.metrics.label_only)):
        if values:
            out.print(f"  {name + ':':<9} " + "  ".join(f"{k} {v:.4g}" for k, v in
                                                    values.items()), markup=False)


def jobs_command(client: Client, args: argparse.Namespace, out: Console) -> int:
    if args.id is None:
        return _listing(out, args.json, client.jobs(),
                        ["job id", "status", "stage", "progress", "created", "message"],
                        lambda job: [str(job.job_id), job.status, job.stage,
                                     f"{job.progress.done}/{job.progress.total}",
                                     f"{job.created_at:%Y-%m-%d %H:%M:%S}", job.message])
    if args.watch:
        return _follow(client, args.id, args, out)
    job = client.job(args.id)
    if args.json:
        _json(out, job)
    else:
        out.print(f"job {job.job_id} ({job.kind}): {describe(job)}", markup=False)
        if job.model_id is not None:
            out.print(f"  model {job.model_id}", markup=False)
    return OK


def cancel_command(client: Client, args: argparse.Namespace, out: Console) -> int:
    job = client.cancel(args.id)
    _answer(out, args.json, job, f"job {job.job_id} {job.status}: {job.message}")
    return OK


# -- models, predict, report -----------------------------------------------------------


def models_command(client: Client, args: argparse.Namespace, out: Console) -> int:
    if args.id is None:
        return _listing(out, args.json, client.models(),
                        ["model id", "family", "task", "test metrics", "created"],
                        lambda card: [str(card.model_id), card.family,
                                      _what(card).split(" ", 1)[1],
                                      ", ".join(f"{k} {v:.3g}"
                                                for k, v in card.metrics.test.items()),
                                      f"{card.created_at:%Y-%m-%d %H:%M}"])
    card = client.model(args.id)
    if args.json:
        _json(out, card)
        return OK
    out.print(f"model {card.model_id}: {_what(card)}", markup=False)
    out.print(f"  {card.summary}", markup=False)
    out.print(f"  hyperparameters: {json.dumps(card.hyperparameters)}", markup=False)
    _metrics(card, out)
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
        _json(out, {"responses": [r.model_dump(mode="json") for r in scored.responses]})
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
        _json(out, {"model_id": args.model, "path": str(path.resolve()), "bytes": len(page)})
    else:
        out.print(f"wrote the report of model {args.model} to {path}", markup=False)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return OK
