"""How the client commands answer: exit codes that say what happened, the API's JSON for
scripts, and words and tables for people (the same line for a dataset or a model wherever a
command shows one)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Column, Table

from reasoning.schemas import DatasetInfo, ModelCard

OK, FAILED, REFUSED, NOT_FOUND, DENIED, UNAVAILABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
EXIT = f"""exit codes: {OK} done; {FAILED} the job failed (or was cancelled); {REFUSED} the
request was refused (bad arguments, a 4xx); {NOT_FOUND} no such dataset, job or model;
{DENIED} authentication failed; {UNAVAILABLE} the service could not be reached or failed
(a 5xx); {INTERRUPTED} interrupted (Ctrl-C)"""


def console(stderr: bool = False) -> Console:
    """Words for people: no colouring of numbers, and lines not cut at 80 columns in a pipe."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def exit_code(status: int) -> int:
    if status == 404:
        return NOT_FOUND
    if status in (401, 403):
        return DENIED
    if status == 0 or status >= 500:
        return UNAVAILABLE
    return REFUSED


def print_json(out: Console, value: BaseModel | list[BaseModel] | dict[str, Any]) -> None:
    if isinstance(value, list):
        data: Any = [v.model_dump(mode="json") for v in value]
    elif isinstance(value, BaseModel):
        data = value.model_dump(mode="json")
    else:
        data = value
    out.print_json(json.dumps(data), highlight=False)


def print_answer(out: Console, as_json: bool, value: BaseModel, words: str) -> None:
    """The API's JSON for scripts, or a line for people."""
    if as_json:
        print_json(out, value)
    else:
        out.print(words, markup=False)


def print_listing(out: Console, as_json: bool, found: list[Any], headers: list[str],
             cells: Callable[[Any], list[str]]) -> int:
    """A list as the API's JSON, or as a table whose ids are never cut (people copy them)."""
    if as_json:
        print_json(out, found)
        return OK
    table = Table(*(Column(h, no_wrap=True) if h.endswith(" id") else h for h in headers))
    for item in found:
        table.add_row(*cells(item))
    out.print(table)
    return OK


def dataset_line(info: DatasetInfo) -> str:
    columns = ", ".join(f"{c.name}:{c.dtype}" for c in info.columns)
    return f"dataset {info.dataset_id} ({info.name}): {info.n_rows:,} rows; {columns}"


def model_what(card: ModelCard) -> str:
    task = card.task.task_kind if card.task else "teacher targets"
    label = f" of {card.task.label_column}" if card.task else ""
    taught = " distilled from a teacher" if card.teacher else ""
    return f"{card.family} {task}{label}{taught}"


def print_metrics(card: ModelCard, out: Console) -> None:
    for name, values in (("test", card.metrics.test), ("fidelity", card.metrics.fidelity),
                         ("label-only", card.metrics.label_only)):
        if values:
            out.print(f"  {name + ':':<9} " + "  ".join(f"{k} {v:.4g}" for k, v in
                                                    values.items()), markup=False)
