"""Every validation rule of the fit request: pydantic's own and the dataset-aware ones."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from reasoning.schemas import ModelFitRequest, ReasoningFitRequest
from reasoning.validation import check_fit_request

DATASET = str(uuid.uuid4())
REG = {"task_kind": "regression", "label_column": "price"}
DTYPES = {
    "price": "float",
    "rooms": "integer",
    "neighborhood": "categorical",
    "has_garden": "boolean",
    "listed_at": "timestamp",
}


def _request(**fields: Any) -> ReasoningFitRequest:
    return ReasoningFitRequest.model_validate({"dataset_id": DATASET, "task": REG, **fields})


def _errors(**fields: Any) -> list[dict]:
    with pytest.raises(ValidationError) as caught:
        _request(**fields)
    return caught.value.errors()


def test_defaults_are_the_seeds() -> None:
    request = _request()
    assert request.n_hyperopt_steps == 5
    assert request.random_state == 42
    assert request.family_names() == ["gam"]
    assert request.filter is None and not request.has_teacher


@pytest.mark.parametrize("steps", [0, -1, 201, 10_000])
def test_n_hyperopt_steps_outside_1_to_200(steps: int) -> None:
    errors = _errors(n_hyperopt_steps=steps)
    assert errors[0]["loc"] == ("n_hyperopt_steps",)


@pytest.mark.parametrize("steps", [1, 200])
def test_n_hyperopt_steps_bounds_are_inclusive(steps: int) -> None:
    assert _request(n_hyperopt_steps=steps).n_hyperopt_steps == steps


def test_more_than_one_model_type() -> None:
    errors = _errors(model_types=["gam", "linear"])
    assert errors[0]["loc"] == ("model_types",) and "at most one" in errors[0]["msg"]


@pytest.mark.parametrize("family", ["svm", "random_forest", ""])
def test_unknown_family_lists_the_valid_ones(family: str) -> None:
    msg = _errors(model_types=[family])[0]["msg"]
    for valid in ("linear", "gam", "decision_tree", "xgboost"):
        assert valid in msg


@pytest.mark.parametrize("family", ["linear", "gam", "decision_tree", "xgboost"])
def test_every_reasoning_family_is_accepted(family: str) -> None:
    assert _request(model_types=[family]).family_names() == [family]


def test_teacher_model_and_url_are_mutually_exclusive() -> None:
    errors = _errors(teacher_model_id=str(uuid.uuid4()), teacher_predict_url="http://t/p")
    assert "mutually exclusive" in errors[0]["msg"]


def test_grads_url_requires_predict_url() -> None:
    assert "requires teacher_predict_url" in _errors(teacher_get_grads_url="http://t/g")[0]["msg"]


@pytest.mark.parametrize("family", ["decision_tree", "xgboost"])
def test_grads_url_needs_a_differentiable_family(family: str) -> None:
    msg = _errors(model_types=[family], teacher_predict_url="http://t/p",
                  teacher_get_grads_url="http://t/g")[0]["msg"]
    assert "not differentiable" in msg and "gam" in msg


def test_grads_url_with_a_differentiable_family_is_fine() -> None:
    request = _request(model_types=["linear"], teacher_predict_url="http://t/p",
                       teacher_get_grads_url="http://t/g")
    assert request.has_teacher


def test_task_is_required_without_a_teacher() -> None:
    assert "task is required" in _errors(task=None)[0]["msg"]
    assert _request(task=None, teacher_predict_url="http://t/p").task is None


def test_unknown_fields_and_task_kinds_are_rejected() -> None:
    assert _errors(n_trials=3)[0]["loc"] == ("n_trials",)
    assert _errors(task={"task_kind": "ranking", "label_column": "price"})[0]["loc"][0] == "task"


@pytest.mark.parametrize(
    ("flt", "words"),
    [
        ({"kind": "cmp", "col": "rooms", "op": "in", "value": 3}, "needs a list"),
        ({"kind": "cmp", "col": "rooms", "op": ">", "value": [1, 2]}, "not a list"),
        ({"kind": "cmp", "col": "rooms", "op": ">"}, "needs a value"),
        ({"kind": "cmp", "col": "rooms", "op": "~", "value": 1}, "Input should be"),
    ],
)
def test_filter_shape_rules(flt: dict, words: str) -> None:
    errors = _errors(filter=flt)
    assert errors[0]["loc"][0] == "filter" and words in errors[0]["msg"]


def test_model_fit_accepts_several_families_but_not_teachers() -> None:
    request = ModelFitRequest.model_validate(
        {"dataset_id": DATASET, "task": REG, "model_types": ["gam", "xgboost"]}
    )
    assert request.family_names() == ["gam", "xgboost"]
    with pytest.raises(ValidationError):
        ModelFitRequest.model_validate(
            {"dataset_id": DATASET, "task": REG, "teacher_predict_url": "http://t/p"}
        )


# -- checks against the dataset ------------------------------------------------------


def _check(find_model: Any = None, **fields: Any) -> list[dict]:
    return check_fit_request(_request(**fields), DTYPES, find_model)


def test_a_valid_request_has_no_problems() -> None:
    flt = {"kind": "cmp", "col": "listed_at", "op": ">=", "value": "2020-01-01"}
    assert _check(filter=flt) == []


def test_label_column_missing_names_the_columns() -> None:
    errors = _check(task={"task_kind": "regression", "label_column": "nope"})
    assert errors[0]["loc"] == ["body", "task", "label_column"]
    assert "'nope'" in errors[0]["msg"] and "rooms" in errors[0]["msg"]


@pytest.mark.parametrize(
    ("kind", "label", "ok"),
    [
        ("regression", "price", True),
        ("regression", "has_garden", True),
        ("regression", "neighborhood", False),
        ("regression", "listed_at", False),
        ("classification", "neighborhood", True),
        ("classification", "rooms", True),
        ("classification", "has_garden", True),
        ("classification", "price", False),
        ("classification", "listed_at", False),
    ],
)
def test_label_dtype_must_suit_the_task(kind: str, label: str, ok: bool) -> None:
    errors = _check(task={"task_kind": kind, "label_column": label})
    assert (errors == []) is ok, errors


def test_filter_problems_carry_the_body_prefix() -> None:
    errors = _check(filter={"kind": "and", "filters": [
        {"kind": "cmp", "col": "nope", "op": "==", "value": 1},
        {"kind": "cmp", "col": "rooms", "op": ">", "value": "many"},
    ]})
    locs = [e["loc"] for e in errors]
    assert ["body", "filter", "filters", 0, "col"] in locs
    assert ["body", "filter", "filters", 1, "value"] in locs


def test_filter_timestamp_that_cannot_be_coerced() -> None:
    errors = _check(filter={"kind": "cmp", "col": "listed_at", "op": ">=", "value": "soon"})
    assert errors and errors[0]["loc"][-1] == "value"


def test_teacher_model_must_exist_and_be_completed() -> None:
    teacher = str(uuid.uuid4())
    errors = _check(lambda _: None, teacher_model_id=teacher)
    assert errors == [{"loc": ["body", "teacher_model_id"],
                       "msg": f"model {teacher} does not exist or is not completed"}]
    card = SimpleNamespace(features=[SimpleNamespace(name="rooms")])
    assert _check(lambda _: card, teacher_model_id=teacher) == []


def test_teacher_model_must_fit_the_dataset() -> None:
    teacher = str(uuid.uuid4())
    needs_more = SimpleNamespace(features=[SimpleNamespace(name="rooms"),
                                           SimpleNamespace(name="garage")])
    errors = _check(lambda _: needs_more, teacher_model_id=teacher)
    assert errors[0]["loc"] == ["body", "teacher_model_id"] and "garage" in errors[0]["msg"]
    reads_label = SimpleNamespace(features=[SimpleNamespace(name="price")])
    errors = _check(lambda _: reads_label, teacher_model_id=teacher)
    assert "label column 'price'" in errors[0]["msg"]
