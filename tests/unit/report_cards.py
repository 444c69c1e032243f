"""Real model cards for the report tests, built in-process the way the pipeline builds them
(actors/pipeline.py: prepare, trials, finalize; the DiffModel path through diffmodel_fit and
model_card), each with its example rows scored as the service scores them (top_k=None).

Each builder runs once per test session (a fit takes about 0.1 s, but the report and browser
tests share them); the cards are pydantic models: copy them before changing anything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from reasoning.distill import diffmodel_fit
from reasoning.encoding import to_float
from reasoning.model import ReasoningModel
from reasoning.predict import predict_response, rows_frame
from reasoning.schemas import (
    ModelCard,
    ModelFitRequest,
    PredictRequest,
    PredictResponse,
    ReasoningFitRequest,
    Trial,
)
from reasoning.synthetic import houses
from reasoning.teachers import TeacherAnswer
from reasoning.training import finalize, model_card, prepare, score_trial, with_label_metrics

FRAME = houses(400, seed=1)
HOSTILE_COLUMN = "<script>alert('column')</script>"
HOSTILE_LEVEL = "<img src=x onerror=alert(1)>"
MATH_COLUMN = "cost $a^2$ & \"quoted\""
TEACHER_URL = "https://reporter:s3cr3t-pass@teacher.example/predict?api_key=k3y-value&v=2"


@dataclass(frozen=True)
class Built:
    """A fitted model, its card, and the card's examples scored with every reason."""

    model: ReasoningModel
    card: ModelCard
    examples: PredictResponse


def _request(cls: type, task: dict[str, Any] | None, **fields: Any) -> Any:
    body = {"dataset_id": str(uuid.uuid4()), **fields}
    if task is not None:
        body["task"] = task
    return cls.model_validate(body)


def score_examples(model: ReasoningModel, card: ModelCard) -> PredictResponse:
    """What the service does for a report: the card's rows, every reason."""
    request = PredictRequest(dataframe_records=card.examples, top_k=None)
    return predict_response(model, str(card.model_id), rows_frame(request, card.features), None)


def _search(data: Any, configs: list[tuple[str, dict[str, Any]]]) -> list[Trial]:
    return [
        Trial(family=family, params=params, score=score_trial(data, family, params, 42),
              node="10.0.0.7")
        for family, params in configs
    ]


def _built(model: ReasoningModel, card: ModelCard) -> Built:
    return Built(model, card, score_examples(model, card))


@cache
def regression() -> Built:
    """gam on price (segment left out: it is cut from the price), a nested filter, a search
    with one failed trial; the best trial has pair terms."""
    frame = FRAME.drop(columns=["segment"])
    request = _request(
        ReasoningFitRequest, {"task_kind": "regression", "label_column": "price"},
        model_types=["gam"],
        filter={"kind": "or", "filters": [
            {"col": "listed_at", "op": ">=", "value": "2020-01-01"},
            {"kind": "not", "filter": {"col": "neighborhood", "op": "in",
                                       "value": ["hills", "old town"]}},
        ]},
    )
    data = prepare(frame, request)
    trials = _search(data, [("gam", {"alpha": a, "n_knots": k, "n_pairs": p})
                            for a, k, p in ((10.0, 4, 0), (0.1, 8, 3), (1.0, 6, 0),
                                            (30.0, 5, 0))])
    trials.insert(2, Trial(family="gam", params={"alpha": 1e-9, "n_knots": 12}, score=None,
                           error="LinAlgError: <b>singular</b> matrix", node="10.0.0.8"))
    model, card = finalize(data, request, trials, str(uuid.uuid4()), "reasoning_fit")
    return _built(model, card)


@cache
def multiclass() -> Built:
    """A model fit of segment (three classes) over two families; price left out (it leaks)."""
    frame = FRAME.drop(columns=["price"])
    request = _request(ModelFitRequest,
                       {"task_kind": "classification", "label_column": "segment"},
                       model_types=["gam", "linear"])
    data = prepare(frame, request)
    trials = _search(data, [("gam", {"alpha": 1.0, "n_knots": 6}), ("linear", {"alpha": 1.0}),
                            ("gam", {"alpha": 0.1, "n_knots": 8, "n_pairs": 2})])
    model, card = finalize(data, request, trials, str(uuid.uuid4()), "model_fit")
    return _built(model, card)


@cache
def hostile() -> Built:
    """A linear fit whose column names and levels are markup and mathtext."""
    frame = FRAME.drop(columns=["segment", "built_year", "listed_at"]).rename(
        columns={"area_sqm": HOSTILE_COLUMN, "rooms": MATH_COLUMN})
    frame["neighborhood"] = frame["neighborhood"].replace({"harbor": HOSTILE_LEVEL})
    request = _request(ReasoningFitRequest, {"task_kind": "regression", "label_column": "price"},
                       model_types=["linear"],
                       filter={"kind": "and", "filters": [
                           {"col": HOSTILE_COLUMN, "op": ">", "value": 0},
                           {"col": "neighborhood", "op": "!=", "value": "</code><b>x"}]})
    data = prepare(frame, request)
    trials = _search(data, [("linear", {"alpha": 1.0})])
    model, card = finalize(data, request, trials, str(uuid.uuid4()), "reasoning_fit")
    return _built(model, card)


class PricingTeacher:
    """A DiffModel teacher in-process: a smooth pricing rule and its exact Jacobian, per
    column in the column's own units (timestamps per day); no slope for levels."""

    url = TEACHER_URL
    OFFSETS = {"harbor": 40.0, "hills": 80.0, "old_town": 60.0, "riverside": 20.0}

    def _days(self, frame: pd.DataFrame) -> np.ndarray:
        return to_float(frame["listed_at"], "timestamp")

    def predict(self, frame: pd.DataFrame) -> TeacherAnswer:
        area = np.nan_to_num(frame["area_sqm"].to_numpy(dtype=float), nan=100.0)
        value = (
            3.0 * area + 0.004 * area**2 + 15.0 * frame["rooms"].to_numpy(dtype=float)
            + 0.5 * np.nan_to_num(frame["built_year"].astype(float).to_numpy() - 1950)
            + 0.02 * np.nan_to_num(self._days(frame) - 18_000)
            + frame["neighborhood"].map(self.OFFSETS).fillna(0.0).to_numpy(dtype=float)
            + 25.0 * frame["has_garden"].astype(float).to_numpy()
        )
        return TeacherAnswer(value)

    def jacobians(self, frame: pd.DataFrame, url: str) -> np.ndarray:
        gradients = {
            "area_sqm": 3.0 + 0.008 * frame["area_sqm"].to_numpy(dtype=float),  # NaN: none
            "rooms": np.full(len(frame), 15.0),
            "built_year": np.full(len(frame), 0.5),
            "listed_at": np.full(len(frame), 0.02),
        }
        nan = np.full(len(frame), np.nan)
        columns = [gradients.get(c, nan) for c in frame.columns]
        return np.stack(columns, axis=1)[:, None, :]  # (n, K=1, d)


@cache
def diffmodel() -> Built:
    """A gam student of a DiffModel teacher, as the pipeline's `_diffmodel` builds it: no
    trials, fidelity with the gradient cosine, label metrics beside the label-only fit."""
    frame = FRAME.drop(columns=["segment"])
    request = _request(ReasoningFitRequest, {"task_kind": "regression", "label_column": "price"},
                       model_types=["gam"], teacher_predict_url=TEACHER_URL,
                       teacher_predict_headers={"Authorization": "Bearer hdr-secret"},
                       teacher_get_grads_url="https://teacher.example/grads")
    data = prepare(frame, request)
    model, metrics, targets = diffmodel_fit(data, PricingTeacher(),
                                            request.teacher_get_grads_url, "gam",
                                            request.random_state)
    data = replace(data, teacher=targets)
    metrics = with_label_metrics(metrics, model, data, model.family, model.params_,
                                 request.random_state)
    card = model_card(model, data, request, str(uuid.uuid4()), "reasoning_fit", model.family,
                      model.params_, [], metrics)
    return _built(model, card)


ALL = {"regression": regression, "multiclass": multiclass, "hostile": hostile,
       "diffmodel": diffmodel}
