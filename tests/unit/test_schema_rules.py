"""The request rules between fields: what the OpenAPI document says is what pydantic checks.

Each rule is one `reasoning.schemas.rules.Rule`, whose JSON Schema and check are built
together; these tests prove the two forms agree, rule by rule and for each request model as
a whole, over a grid of requests that keeps and breaks every rule.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

import reasoning.schemas as schemas
from reasoning.schemas import (
    Comparison,
    FitRequest,
    InvocationsRequest,
    ModelFitRequest,
    PredictRequest,
    ReasoningFitRequest,
)
from reasoning.schemas.filters import OP_VALUE
from reasoning.schemas.fits import REASONING_FIT_RULES
from reasoning.schemas.rules import Rule
from reasoning.schemas.scoring import INVOCATIONS_SHAPE, PREDICT_SHAPE

DATASET = "3f2c1d9e-8a4b-4c6d-9e0f-1a2b3c4d5e6f"
TEACHER = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
ABSENT = object()


def grid(base: dict[str, Any], **choices: list[Any]) -> Iterator[dict[str, Any]]:
    """Every combination of the choices over `base` (ABSENT: the field is not sent)."""
    for values in itertools.product(*choices.values()):
        yield {**base, **{k: v for k, v in zip(choices, values, strict=True) if v is not ABSENT}}


def fit_requests() -> Iterator[dict[str, Any]]:
    return grid(
        {"dataset_id": DATASET},
        task=[ABSENT, None, {"label_column": "y"}],
        model_types=[ABSENT, None, [], ["gam"], ["xgboost"], ["mlp"], ["linear", "gam"]],
        teacher_model_id=[ABSENT, TEACHER],
        teacher_predict_url=[ABSENT, None, "http://teacher.example/predict"],
        teacher_predict_headers=[ABSENT, {}, {"authorization": "Bearer t"}],
        teacher_get_grads_url=[ABSENT, "http://teacher.example/grads"],
    )


def comparisons() -> Iterator[dict[str, Any]]:
    return grid(
        {"col": "c"},
        op=[ABSENT, *(op.value for op in schemas.Op)],
        value=[ABSENT, None, 1, 2.5, "a", True, [], [1, "a", None]],
    )


def rows() -> Iterator[dict[str, Any]]:
    return grid(
        {},
        dataframe_split=[ABSENT, None, {"columns": ["a"], "data": [[1]]}],
        dataframe_records=[ABSENT, None, [], [{"a": 1}]],
        instances=[ABSENT, None, [{"a": 1}]],
    )


CASES: list[tuple[type[BaseModel], tuple[Rule, ...], Any]] = [
    (ReasoningFitRequest, REASONING_FIT_RULES, fit_requests),
    (ModelFitRequest, (), fit_requests),
    (Comparison, (OP_VALUE,), comparisons),
    (PredictRequest, (PREDICT_SHAPE,), lambda: (
        r for r in rows() if "instances" not in r)),
    (InvocationsRequest, (INVOCATIONS_SHAPE,), rows),
]
IDS = [model.__name__ for model, _, _ in CASES]


def problems(model: type[BaseModel], payload: dict[str, Any]) -> list[str] | None:
    """pydantic's messages for the payload; None when it is valid."""
    try:
        model.model_validate(payload)
    except ValidationError as error:
        return [e["msg"] for e in error.errors()]
    return None


@pytest.mark.parametrize(("model", "rules", "payloads"), CASES, ids=IDS)
def test_each_rule_says_the_same_in_the_document_and_the_check(
    model: type[BaseModel], rules: tuple[Rule, ...], payloads: Any
) -> None:
    for rule in rules:
        document = jsonschema.validators.validator_for(rule.condition.schema)(
            rule.condition.schema)
        verdicts = set()
        for payload in payloads():
            held = rule.condition.holds(model.model_construct(**payload))
            assert document.is_valid(payload) == held, (rule.message, payload)
            verdicts.add(held)
        assert verdicts == {True, False}, f"the grid neither keeps nor breaks {rule.message!r}"


@pytest.mark.parametrize(("model", "rules", "payloads"), CASES, ids=IDS)
def test_the_openapi_schema_accepts_what_validation_accepts(
    model: type[BaseModel], rules: tuple[Rule, ...], payloads: Any
) -> None:
    schema = model.model_json_schema()
    document = jsonschema.validators.validator_for(schema)(schema)
    broken = {id(rule): 0 for rule in rules}
    for payload in payloads():
        found = problems(model, payload)
        assert document.is_valid(payload) == (found is None), (payload, found)
        first_broken = next((r for r in rules if not r.condition.holds(
            model.model_construct(**payload))), None)
        if first_broken is not None and found is not None and len(found) == 1 \
                and found[0].startswith("Value error, "):
            broken[id(first_broken)] += 1
    # Every rule is the first one broken by some request that is otherwise well formed,
    # and pydantic then refuses it for that rule alone.
    for rule in rules:
        assert broken[id(rule)], rule.message


@pytest.mark.parametrize(("rule", "payload", "message"), [
    (0, {"teacher_model_id": TEACHER, "teacher_predict_url": "http://t/p"},
     "teacher_model_id and teacher_predict_url are mutually exclusive"),
    (1, {"task": {"label_column": "y"}, "teacher_get_grads_url": "http://t/g"},
     "teacher_get_grads_url requires teacher_predict_url"),
    (2, {"task": {"label_column": "y"}, "teacher_predict_headers": {"a": "b"}},
     "teacher_predict_headers requires teacher_predict_url"),
    (3, {"teacher_predict_url": "http://t/p", "teacher_get_grads_url": "http://t/g",
         "model_types": ["xgboost"]},
     "family 'xgboost' is not differentiable; a DiffModel teacher (teacher_get_grads_url) "
     "needs one of: linear, gam"),
    (4, {}, "task is required when no teacher is set"),
])
def test_a_broken_fit_rule_gives_its_message(
    rule: int, payload: dict[str, Any], message: str
) -> None:
    request = {"dataset_id": DATASET, **payload}
    assert REASONING_FIT_RULES[rule].problem(ReasoningFitRequest.model_construct(**request)) \
        == message
    assert problems(ReasoningFitRequest, request) == [f"Value error, {message}"]


def test_every_fit_request_has_the_teacher_attributes() -> None:
    """Code reads request.teacher_* and request.has_teacher of either fit request; a model
    fit has them as None, and neither takes nor documents them."""
    label_fit = ModelFitRequest(dataset_id=DATASET, task={"label_column": "y"})
    assert isinstance(label_fit, FitRequest)
    assert (label_fit.teacher_model_id, label_fit.teacher_predict_url,
            label_fit.teacher_predict_headers, label_fit.teacher_get_grads_url) == (None,) * 4
    assert label_fit.has_teacher is False
    assert not [f for f in ModelFitRequest.model_fields if f.startswith("teacher")]
    assert not [k for k in label_fit.model_dump() if k.startswith("teacher")]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ModelFitRequest(dataset_id=DATASET, task={"label_column": "y"},
                        teacher_model_id=TEACHER)

    distilled = ReasoningFitRequest(dataset_id=DATASET, teacher_model_id=TEACHER)
    assert isinstance(distilled, FitRequest) and distilled.has_teacher
    assert str(distilled.teacher_model_id) == TEACHER
    assert ReasoningFitRequest(dataset_id=DATASET, task={"label_column": "y"}).has_teacher \
        is False


def test_every_exported_name_is_importable() -> None:
    assert len(schemas.__all__) == len(set(schemas.__all__))
    for name in schemas.__all__:
        assert getattr(schemas, name) is not None, name
