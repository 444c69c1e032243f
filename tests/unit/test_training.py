"""The label pipeline's stages without Ray: split, trials, finalize, registry, predict."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest

from reasoning.predict import RowsError, predict_response, rows_frame
from reasoning.schemas import PredictRequest, ReasoningFitRequest, Trial
from reasoning.service.stores import Stores
from reasoning.synthetic import houses
from reasoning.training import (
    JobFailure,
    best_trial,
    finalize,
    prepare,
    score_trial,
    scored_trial,
)

FRAME = houses(400, seed=2)


def _request(task: dict, **fields) -> ReasoningFitRequest:
    return ReasoningFitRequest.model_validate(
        {"dataset_id": str(uuid.uuid4()), "task": task, **fields})


REG = {"task_kind": "regression", "label_column": "price"}
CLS = {"task_kind": "classification", "label_column": "segment"}


def test_split_is_seeded_stratified_and_complete() -> None:
    data = prepare(FRAME, _request(CLS))
    rows = data.rows
    assert rows.train + rows.validation + rows.test == rows.after_filter == 400
    assert data.stratified and "segment" not in data.X_train.columns
    for part in (data.y_train, data.y_val, data.y_test):
        shares = {c: np.mean(part == c) for c in ("budget", "mid", "premium")}
        assert all(0.25 < s < 0.42 for s in shares.values()), shares
    again = prepare(FRAME, _request(CLS))
    assert data.X_test.equals(again.X_test)
    other = prepare(FRAME, _request(CLS, random_state=7))
    assert not data.X_test.equals(other.X_test)


def test_filter_and_counts_reach_the_card(stores: Stores) -> None:
    request = _request(REG, model_types=["linear"],
                       filter={"kind": "cmp", "col": "listed_at", "op": ">=",
                               "value": "2021-01-01"})
    data = prepare(FRAME, request)
    kept = int((FRAME["listed_at"] >= "2021-01-01").sum())
    assert data.rows.after_filter == kept < 400
    trials = [Trial(family="linear", params={"alpha": a},
                    score=score_trial(data, "linear", {"alpha": a}, 42)) for a in (0.1, 10.0)]
    model, card = finalize(data, request, trials, str(uuid.uuid4()), "reasoning_fit")
    assert card.hyperparameters == best_trial(trials).params
    assert f"{kept:,} of 400" in card.summary
    assert card.metrics.test["r2"] > 0.8
    assert set(card.explanation.importance) == {c.name for c in card.features}
    registry = stores.models()
    registry.add(model, card)
    assert registry.card(str(card.model_id)) == card
    assert [c.model_id for c in registry.list()] == [card.model_id]
    loaded = registry.load(str(card.model_id))
    assert np.array_equal(loaded.predict(data.X_test), model.predict(data.X_test))


def test_too_few_rows_after_the_filter_says_how_many() -> None:
    request = _request(REG, filter={"kind": "cmp", "col": "rooms", "op": ">", "value": 8})
    kept = int((FRAME["rooms"] > 8).sum())
    assert kept < 20
    with pytest.raises(JobFailure, match=f"kept {kept} of 400 rows"):
        prepare(FRAME, request)


def test_single_class_and_constant_labels_fail_clearly() -> None:
    frame = FRAME.assign(segment="mid", price=1.0)
    with pytest.raises(JobFailure, match="single class"):
        prepare(frame, _request(CLS))
    with pytest.raises(JobFailure, match="constant"):
        prepare(frame, _request(REG))


def test_rows_without_a_label_are_dropped_and_reported() -> None:
    frame = FRAME.copy()
    frame.loc[:49, "price"] = np.nan
    data = prepare(frame, _request(REG))
    assert data.dropped_null_labels == 50
    assert data.rows.train + data.rows.validation + data.rows.test == 350


def test_best_trial_ignores_failures_and_prefers_the_earliest_tie() -> None:
    trials = [Trial(params={"a": 1}, score=None, error="boom"),
              Trial(params={"a": 2}, score=1.0), Trial(params={"a": 3}, score=1.0),
              Trial(params={"a": 4}, score=math.inf)]
    assert best_trial(trials).params == {"a": 2}
    with pytest.raises(JobFailure, match="boom"):
        best_trial(trials[:1])


@pytest.mark.parametrize("loss", [math.inf, math.nan, None])
def test_a_trial_without_a_finite_loss_says_why(loss: float | None) -> None:
    trial = scored_trial("gam", {"a": 1}, loss, "10.0.0.2")
    assert trial.score is None and trial.node == "10.0.0.2"
    assert trial.error == f"its validation loss was {loss} (the fit diverged)"
    assert scored_trial("gam", {"a": 1}, 0.5, None).model_dump(exclude={"params"}) == {
        "family": "gam", "score": 0.5, "error": None, "node": None}


def test_same_inputs_give_the_same_model() -> None:
    request = _request(CLS, model_types=["xgboost"])
    data = prepare(FRAME, request)
    params = {"n_estimators": 60, "max_depth": 3}
    scores = [score_trial(data, "xgboost", params, 42) for _ in range(2)]
    assert scores[0] == scores[1]
    models = [finalize(data, request, [Trial(family="xgboost", params=params, score=scores[0])],
                       str(uuid.uuid4()), "reasoning_fit")[0] for _ in range(2)]
    assert np.array_equal(models[0].predict_proba(data.X_test),
                          models[1].predict_proba(data.X_test))


@pytest.fixture(scope="module")
def regression_model():
    request = _request(REG, model_types=["gam"])
    data = prepare(FRAME, request)
    model, card = finalize(data, request, [Trial(family="gam", params={}, score=1.0)],
                           str(uuid.uuid4()), "reasoning_fit")
    return model, card


def test_rows_are_coerced_to_the_models_dtypes(regression_model) -> None:
    model, card = regression_model
    row = {"area_sqm": "72.5", "rooms": 3, "neighborhood": "harbor", "has_garden": "TRUE",
           "built_year": None, "listed_at": "2023-05-01T00:00:00Z", "segment": "mid"}
    frame = rows_frame(PredictRequest(dataframe_records=[row]), card.features)
    answer = predict_response(model, str(card.model_id), frame, top_k=None)
    explanation = answer.explanations[0]
    total = explanation.base_value + sum(r.contribution for r in explanation.reasons)
    assert math.isclose(total, explanation.output, abs_tol=1e-6)
    assert answer.predictions[0] == pytest.approx(explanation.output)


@pytest.mark.parametrize(
    ("request_body", "words"),
    [
        ({"dataframe_records": [{"rooms": 3}]}, "missing columns"),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, "duplicate"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, "row 0 has 2 values"),
        ({"dataframe_records": []}, "no rows"),
    ],
)
def test_rows_errors_name_the_problem(regression_model, request_body, words) -> None:
    _, card = regression_model
    with pytest.raises(RowsError, match=words):
        rows_frame(PredictRequest.model_validate(request_body), card.features)


def test_a_value_that_does_not_fit_its_column_is_named(regression_model) -> None:
    _, card = regression_model
    row = {c.name: None for c in card.features} | {"rooms": "three"}
    with pytest.raises(RowsError, match="rooms"):
        rows_frame(PredictRequest(dataframe_records=[row]), card.features)
    row = {c.name: None for c in card.features} | {"has_garden": "maybe"}
    with pytest.raises(RowsError, match="has_garden"):
        rows_frame(PredictRequest(dataframe_records=[row]), card.features)
