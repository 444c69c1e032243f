"""`reasoning fit`: the fit request from the command's flags (filters written as `col op
value`, the task from the label's type), a file uploaded first when one is given, then the
job followed live to its end (also `reasoning jobs <id> --watch`), with Ctrl-C asking
whether to cancel it."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.prompt import Confirm

from reasoning.client import Client
from reasoning.dtypes import NUMERIC_DTYPES
from reasoning.schemas import DatasetInfo, Job, ModelCard
from serve_app.answers import (
    FAILED,
    INTERRUPTED,
    OK,
    console,
    dataset_line,
    model_what,
    print_json,
    print_metrics,
)
from serve_app.progress import JobDisplay

COMPARISON = re.compile(r"^\s*(?P<col>[^<>=!]+?)\s*(?P<op>==|!=|>=|<=|>|<|=)\s*(?P<value>.*)$")
WORD_OPS = {" not in ": "not_in", " in ": "in", " is not null": "is_not_null",
            " is null": "is_null"}


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
        task = "regression" if dtypes[args.label] in NUMERIC_DTYPES else "classification"
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
            out.print(f"uploaded {path.name} as {dataset_line(info)}", markup=False)
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
            print_json(out, accepted)
        else:
            out.print(f"job {accepted.job_id} {accepted.message}; follow it with:"
                      f" reasoning jobs {accepted.job_id} --watch", markup=False)
        return OK
    if not args.json:
        out.print(f"job {accepted.job_id} {accepted.message}", markup=False)
    return follow_job(client, str(accepted.job_id), args, out)


def follow_job(client: Client, job_id: str, args: argparse.Namespace, out: Console) -> int:
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
        print_json(out, job)
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
    out.print(f"completed{took}: model {card.model_id} ({model_what(card)})", markup=False)
    print_metrics(card, out)
    return card
