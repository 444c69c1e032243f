"""Submit-time checks that need the dataset's schema or the model registry.

Pydantic checks the request's own shape; these checks look at what the request refers
to, so that a wrong column or value is a 422 at submit rather than a failed job later.
Each problem is `{"loc": [...], "msg": ...}` with FastAPI's `body` prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reasoning.datasets import ColumnSummary
from reasoning.egress import EgressPolicy
from reasoning.filters import check_filter, column_list
from reasoning.schemas import ModelCard, ModelFitRequest, ReasoningFitRequest
from reasoning.training import MIN_ROWS

DESIGN_WIDTH = {"integer": 16, "float": 16, "timestamp": 16, "boolean": 2}
"""Design columns an input column may become at most: a number a spline basis (up to 12
knots of degree 3) and a missing-value indicator; a boolean a value and an indicator. A
categorical column becomes one per level, and one for missing."""
NUMERIC_LABEL_DTYPES = frozenset({"integer", "float", "boolean"})
CLASS_LABEL_DTYPES = frozenset({"integer", "boolean", "categorical"})


def check_fit_request(
    request: ReasoningFitRequest | ModelFitRequest,
    dtypes: dict[str, str],
    find_model: Callable[[str], ModelCard | None] | None = None,
    egress: EgressPolicy | None = None,
    summarize: Callable[[str], ColumnSummary] | None = None,
    design_limit: int | None = None,
) -> list[dict[str, Any]]:
    """Every problem the request has against this dataset (empty when it can run).

    `summarize(column)` describes a column's stored values; with it, a label nothing can
    be learnt from (all null, too few values, constant) is refused here, not by the job,
    and so is a design matrix of more than `design_limit` cells.
    """
    errors: list[dict[str, Any]] = []
    if summarize is not None and design_limit is not None:
        label = request.task.label_column if request.task is not None else None
        problem = design_problem(dtypes, label, summarize, design_limit)
        if problem:
            errors.append({"loc": ["body", "dataset_id"], "msg": problem})
    for name in ("teacher_predict_url", "teacher_get_grads_url"):
        url = getattr(request, name, None)
        problem = (egress or EgressPolicy()).check_url(url) if url else None
        if problem:
            errors.append({"loc": ["body", name], "msg": problem})
    if request.task is not None:
        label = request.task.label_column
        loc = ["body", "task", "label_column"]
        dtype = dtypes.get(label)
        learns = summarize is not None and not getattr(request, "has_teacher", False)
        summary = summarize(label) if learns and dtype is not None else None
        if dtype is None:
            errors.append(
                {"loc": loc, "msg": f"column {label!r} is not in the dataset; "
                 f"columns: {column_list(dtypes)}"}
            )
        elif summary is not None and summary.n_present == 0:
            # Before the dtype rules: an empty column's dtype says nothing.
            errors.append({"loc": loc, "msg": label_problem(label, "", summary)})
        elif request.task.task_kind == "regression" and dtype not in NUMERIC_LABEL_DTYPES:
            errors.append(
                {"loc": loc, "msg": f"regression needs a numeric label; column {label!r} "
                 f"is {dtype}"}
            )
        elif request.task.task_kind == "classification" and dtype not in CLASS_LABEL_DTYPES:
            errors.append(
                {"loc": loc, "msg": f"classification needs a class label (integer, boolean or "
                 f"categorical); column {label!r} is {dtype}"}
            )
        elif len(dtypes) < 2:
            errors.append({"loc": loc, "msg": "the dataset has no column besides the label"})
        elif summary is not None and (problem := label_problem(
            label, request.task.task_kind, summary
        )):
            errors.append({"loc": loc, "msg": problem})
    if request.filter is not None:
        errors += [
            {**e, "loc": ["body", *e["loc"]]} for e in check_filter(request.filter, dtypes)
        ]
    teacher_id = getattr(request, "teacher_model_id", None)
    if teacher_id is not None and find_model is not None:
        teacher = find_model(str(teacher_id))
        loc = ["body", "teacher_model_id"]
        if teacher is None:
            errors.append({"loc": loc,
                           "msg": f"model {teacher_id} does not exist or is not completed"})
        else:
            label = request.task.label_column if request.task else None
            wanted = [f.name for f in teacher.features]
            missing = [c for c in wanted if c not in dtypes]
            if missing:
                errors.append({"loc": loc, "msg": "the teacher needs columns the dataset "
                               f"lacks: {', '.join(missing)}"})
            elif label in wanted:
                errors.append({"loc": loc, "msg": f"the teacher uses the label column "
                               f"{label!r} as an input; a student cannot be fitted without it"})
    return errors


def design_problem(
    dtypes: dict[str, str], label: str | None, summarize: Callable[[str], ColumnSummary],
    limit: int,
) -> str | None:
    """Why the design matrix a trial would build is too big (rows × design columns, before
    any filter), or None. Wide categoricals are what make it so: one column per level."""
    inputs = {name: dtype for name, dtype in dtypes.items() if name != label}
    if not inputs:
        return None
    widths = {name: DESIGN_WIDTH.get(dtype) or (summarize(name).n_distinct or 0) + 1
              for name, dtype in inputs.items()}
    rows = summarize(next(iter(inputs))).n_rows
    cells = rows * sum(widths.values())
    if cells <= limit:
        return None
    widest = sorted(widths.items(), key=lambda kv: -kv[1])[:3]
    return (f"the design matrix would hold up to {rows:,} rows × {sum(widths.values()):,} "
            f"columns = {cells:,} cells, {cells / limit:.1f} times the limit of {limit:,} "
            "(REASONING_MAX_DESIGN_CELLS); the widest inputs: "
            + ", ".join(f"{name} ({width:,})" for name, width in widest)
            + "; filter rows, or drop or group wide categorical columns")


def label_problem(label: str, task_kind: str, summary: ColumnSummary) -> str | None:
    """Why a label column cannot train a model, before any filter; None when it can.

    Only fits on the labels are checked: with a teacher the labels just evaluate.
    """
    if summary.n_present == 0:
        return f"label column {label!r} has no values: all {summary.n_rows:,} rows are null"
    if summary.n_present < MIN_ROWS:
        return (f"only {summary.n_present} of {summary.n_rows:,} rows have a value in label "
                f"column {label!r}; at least {MIN_ROWS} are needed")
    if summary.constant and task_kind == "classification":
        return (f"label column {label!r} has a single class ({summary.minimum!r}); "
                "classification needs at least two")
    if summary.constant:
        return f"label column {label!r} is constant ({summary.minimum!r}); nothing to learn"
    return None
