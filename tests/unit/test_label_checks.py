"""Submit-time label checks from the stored column (DatasetStore.column_summary + validation)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from reasoning.readers import read_table
from reasoning.schemas import ModelFitRequest, ReasoningFitRequest
from reasoning.service.dataset_store import DatasetStore
from reasoning.validation import check_fit_request
from tests.unit.conftest import fresh_stores

N = 40


def _fit(store: DatasetStore, csv: str, task: dict[str, str], **extra: Any) -> list[dict]:
    info = store.add(read_table("t.csv", csv.encode()), "t")
    request = ReasoningFitRequest.model_validate(
        {"dataset_id": str(info.dataset_id), "task": task, **extra}
    )
    return check_fit_request(
        request, info.dtypes(),
        summarize=lambda column: store.column_summary(info.dataset_id, column),
    )


def _csv(labels: list[str]) -> str:
    return "x,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels))


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return fresh_stores("sqlite", tmp_path, None).datasets()


@pytest.mark.parametrize(
    ("labels", "task_kind", "words"),
    [
        ([""] * N, "regression", "no values: all 40 rows are null"),
        (["NA"] * N, "classification", "no values"),
        (["3.5"] * N, "regression", "is constant (3.5)"),
        (["3.5"] * (N - 5) + [""] * 5, "regression", "is constant"),
        (["yes"] * N, "classification", "single class ('yes')"),
        (["true"] * N, "classification", "single class (True)"),
        (["1"] * 10 + [""] * (N - 10), "regression", "only 10 of 40 rows"),
    ],
)
def test_unlearnable_labels_are_422_at_submit(store, labels, task_kind, words) -> None:
    errors = _fit(store, _csv(labels), {"task_kind": task_kind, "label_column": "y"})
    assert [e["loc"] for e in errors] == [["body", "task", "label_column"]]
    assert words in errors[0]["msg"]


@pytest.mark.parametrize("task_kind", ["regression", "classification"])
def test_varied_labels_pass(store, task_kind) -> None:
    labels = [str(i % 3) for i in range(N)]
    assert _fit(store, _csv(labels), {"task_kind": task_kind, "label_column": "y"}) == []


def test_a_teacher_fit_only_evaluates_the_labels(store) -> None:
    errors = _fit(store, _csv(["3.5"] * N), {"task_kind": "regression", "label_column": "y"},
                  teacher_predict_url="https://teacher.example/invocations")
    assert errors == []


def test_model_fit_is_checked_too(store) -> None:
    info = store.add(read_table("t.csv", _csv([""] * N).encode()), "t")
    request = ModelFitRequest.model_validate(
        {"dataset_id": str(info.dataset_id),
         "task": {"task_kind": "regression", "label_column": "y"}}
    )
    errors = check_fit_request(request, info.dtypes(),
                               summarize=lambda c: store.column_summary(info.dataset_id, c))
    assert "no values" in errors[0]["msg"]


def test_column_summary(store) -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": ["x", None, "x"], "c": [None] * 3})
    info = store.add(frame, "t")
    a = store.column_summary(info.dataset_id, "a")
    assert (a.n_rows, a.n_present, a.minimum, a.maximum, a.constant) == (3, 2, 1.0, 3.0, False)
    assert store.column_summary(info.dataset_id, "b").constant
    c = store.column_summary(info.dataset_id, "c")
    assert (c.n_present, c.constant) == (0, False)
    with pytest.raises(KeyError):
        store.column_summary(uuid.uuid4(), "a")
