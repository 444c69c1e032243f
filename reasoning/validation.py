"""Submit-time checks that need the dataset's schema or the model registry.

Pydantic checks the request's own shape; these checks look at what the request refers
to, so that a wrong column or value is a 422 at submit rather than a failed job later.
Each problem is `{"loc": [...], "msg": ...}` with FastAPI's `body` prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reasoning.booleans import as_text
from reasoning.column_stats import ColumnSummary
from reasoning.encoding import PAIR_WIDTH
from reasoning.families.gam import SEARCHED_PAIRS
from reasoning.filters import check_filter, column_list
from reasoning.schemas import DataWarning, FitRequest, ModelCard
from reasoning.service.egress import EgressPolicy
from reasoning.training import MIN_ROWS

DESIGN_WIDTH = {"integer": 16, "float": 16, "timestamp": 16, "boolean": 2}
"""Design columns an input column may become at most: a number a spline basis (up to 12
knots of degree 3) and a missing-value indicator; a boolean a value and an indicator. A
categorical column becomes one per level, and one for missing."""
NUMERIC_LABEL_DTYPES = frozenset({"integer", "float", "boolean"})
MIN_ROWS_PER_CLASS = 5
"""Rows a classification label needs per class on average: fewer, and the test split has
no example of most classes (an identifier used as a label: accuracy 0)."""
MAX_CLASS_SHARE = 0.5
"""Classes a label may have as a share of its rows: more distinct values than half the
rows is an identifier or a measurement, not a class."""
FEW_REGRESSION_VALUES = 5
"""A regression label with at most this many distinct values may be classes."""
CLASS_LABEL_DTYPES = frozenset({"integer", "boolean", "categorical"})


def check_fit_request(
    request: FitRequest,
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
    summaries = summarize

    def levels(column: str) -> list[str] | None:
        """A column's known levels, for the filter's values (see filters.check_filter)."""
        if summaries is None:
            return None
        summary = summaries(column)
        if dtypes.get(column) == "boolean":
            present = {summary.minimum, summary.maximum} - {None}
            return sorted(as_text(v) for v in present)
        return summary.levels

    if summarize is not None and design_limit is not None:
        label = request.task.label_column if request.task is not None else None
        pairs = max(SEARCHED_PAIRS) if "gam" in request.family_names() else 0
        problem = design_problem(dtypes, label, summarize, design_limit, pairs)
        if problem:
            errors.append({"loc": ["body", "dataset_id"], "msg": problem})
    urls = {"teacher_predict_url": request.teacher_predict_url,
            "teacher_get_grads_url": request.teacher_get_grads_url}
    for name, url in urls.items():
        problem = (egress or EgressPolicy()).check_url(url) if url else None
        if problem:
            errors.append({"loc": ["body", name], "msg": problem})
    if request.task is not None:
        label = request.task.label_column
        loc = ["body", "task", "label_column"]
        dtype = dtypes.get(label)
        learns = not request.has_teacher
        summary = (summarize(label) if summarize is not None and learns and dtype is not None
                   else None)
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
            {**e, "loc": ["body", *e["loc"]]}
            for e in check_filter(request.filter, dtypes, levels)
        ]
    teacher_id = request.teacher_model_id
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
    limit: int, pairs: int = 0,
) -> str | None:
    """Why the design matrix a trial would build is too big (rows × design columns, before
    any filter), or None. Wide categoricals are what make it so: one column per level;
    `pairs` interaction terms add at most `PAIR_WIDTH`² columns each."""
    inputs = {name: dtype for name, dtype in dtypes.items() if name != label}
    if not inputs:
        return None
    widths = {name: DESIGN_WIDTH.get(dtype) or (summarize(name).n_distinct or 0) + 1
              for name, dtype in inputs.items()}
    n_pairs = min(pairs, len(inputs) * (len(inputs) - 1) // 2)
    if n_pairs:
        widths[f"{n_pairs} pair terms"] = n_pairs * PAIR_WIDTH**2
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
    classes = summary.n_distinct
    if task_kind == "classification" and classes is not None and (
        classes > MAX_CLASS_SHARE * summary.n_present
        or summary.n_present < MIN_ROWS_PER_CLASS * classes
    ):
        return (f"label column {label!r} has {classes:,} distinct values in "
                f"{summary.n_present:,} rows ({summary.n_present / classes:.1f} rows per class);"
                " it looks like an identifier or a measurement, not classes: a classifier "
                f"needs at least {MIN_ROWS_PER_CLASS} rows per class on average. Use a column "
                "of categories, or task_kind 'regression' for a number")
    if summary.constant:
        return f"label column {label!r} is constant ({summary.minimum!r}); nothing to learn"
    return None


def fit_warnings(
    request: FitRequest,
    dtypes: dict[str, str],
    summarize: Callable[[str], ColumnSummary],
) -> list[DataWarning]:
    """What a fit that can run will assume that may be wrong: a regression label with only
    a few distinct values may be classes."""
    task = request.task
    if task is None or task.task_kind != "regression" or task.label_column not in dtypes:
        return []
    summary = summarize(task.label_column)
    distinct = summary.n_distinct
    if distinct is None or distinct > FEW_REGRESSION_VALUES or summary.constant:
        return []
    return [DataWarning(
        column=task.label_column, kind="few_label_values", chosen=dtypes[task.label_column],
        values=[summary.minimum, summary.maximum],
        message=f"label column {task.label_column!r} has only {distinct} distinct values "
        f"(from {summary.minimum!r} to {summary.maximum!r}); if they are classes, fit with "
        "task_kind 'classification' instead: a regression predicts values between them",
    )]
