"""Fit requests: what to predict, from which rows, with which families, and the teacher.

Field names, defaults and ranges are those of the service's v1 fit API (README.md shows
each request). Rules that need no data (ranges, mutual exclusion, known families) are
checked here so that pydantic reports them with the field's location; each cross-field
rule is a `Rule`, which gives both the OpenAPI document's statement of it and the check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from reasoning.family_names import ALL_FAMILIES, REASONING_FAMILIES, differentiable_families
from reasoning.schemas.datasets import DataWarning
from reasoning.schemas.filters import MAX_FILTER_LEAVES, Filter, filter_leaves
from reasoning.schemas.jobs import JobStatus
from reasoning.schemas.rules import (
    Condition,
    Rule,
    any_of,
    filled,
    first_problem,
    given,
    implies,
    not_,
    rules_schema,
    tagged_by,
)


class Regression(BaseModel):
    """Predict a continuous target."""

    task_kind: Literal["regression"] = "regression"
    label_column: str = Field(min_length=1)


class Classification(BaseModel):
    """Predict a class (binary or multiclass)."""

    task_kind: Literal["classification"]
    label_column: str = Field(min_length=1)


TaskSpec = Annotated[
    Annotated[Regression, Tag("regression")] | Annotated[Classification, Tag("classification")],
    Discriminator(
        tagged_by("task_kind", "regression"),
        custom_error_type="task_kind",
        custom_error_message="task_kind must be 'regression' (the default) or 'classification'",
    ),
]
"""A request's `task`: the kind of prediction and the label column (the families' own
`reasoning.families.Task` is what a fitted core predicts: a kind and a class count).
Tagged by `task_kind`; a task without one is a regression, as its default says."""

DEFAULT_FAMILY = "gam"
"""The family searched when a request names none."""


def family_list(
    names: Sequence[str], max_items: int | None = None, too_many: str | None = None
) -> Any:
    """`model_types`' type: a list of family names among `names` (at most `max_items`,
    else the message `too_many`), stated in the OpenAPI document and checked, both from
    these arguments."""
    schema: dict[str, Any] = {"items": {"type": "string", "enum": list(names)},
                              "type": "array"}
    if max_items is not None:
        schema["maxItems"] = max_items

    def known(value: list[str]) -> list[str]:
        if max_items is not None and len(value) > max_items:
            raise ValueError(too_many or f"at most {max_items} families are accepted")
        for name in value:
            if name not in names:
                raise ValueError(f"unknown family {name!r}; valid: {', '.join(names)}")
        return value

    return Annotated[list[str], AfterValidator(known), WithJsonSchema(schema)]


if TYPE_CHECKING:  # to a type checker both are lists of names; pydantic gets the checks
    ReasoningFamilies = list[str]
    AnyFamilies = list[str]
else:
    ReasoningFamilies = family_list(
        REASONING_FAMILIES, max_items=1,
        too_many="reasoning.fit pins the surrogate family, so at most one entry is accepted")
    AnyFamilies = family_list(list(ALL_FAMILIES))
MODEL_TYPES = "Candidate model-family identifiers."


class FitRequest(BaseModel):
    """Fields shared by /v1/reasoning/fit and /v1/models/fit, the teacher's included.

    Every fit request has the teacher fields: a fit that cannot take a teacher (a
    ModelFitRequest) has them as constants None, not as fields of its JSON.
    """

    model_config = ConfigDict(extra="forbid")

    dataset_id: UUID = Field(description="Id of a dataset registered via POST /v1/datasets.")
    filter: Filter | None = Field(default=None, description="Row filter applied before fitting.")
    task: TaskSpec | None = None
    model_types: list[str] | None = Field(default=None, description=MODEL_TYPES)
    n_hyperopt_steps: int = Field(default=5, ge=1, le=200)
    random_state: int = 42
    teacher_model_id: UUID | None = Field(
        default=None, description="Distill from a same-server trained model identified by id."
    )
    teacher_predict_url: str | None = Field(
        default=None, description="Distil an external teacher at this URL."
    )
    teacher_predict_headers: dict[str, str] | None = Field(
        default=None, description="Headers to send when calling teacher_predict_url."
    )
    teacher_get_grads_url: str | None = Field(
        default=None, description="Per-sample Jacobian endpoint of a DiffModel teacher."
    )

    @field_validator("filter")
    @classmethod
    def _few_comparisons(cls, flt: Filter | None) -> Filter | None:
        if flt is not None and (leaves := filter_leaves(flt)) > MAX_FILTER_LEAVES:
            raise ValueError(f"the filter has {leaves:,} comparisons; at most "
                             f"{MAX_FILTER_LEAVES} are accepted")
        return flt

    def family_names(self) -> list[str]:
        """The families to search, with the default when none is given."""
        return list(self.model_types) if self.model_types else [DEFAULT_FAMILY]

    @property
    def has_teacher(self) -> bool:
        """Whether a teacher labels the rows (the task's labels then only evaluate)."""
        return HAS_TEACHER.holds(self)


TEACHERS = (given("teacher_model_id"), given("teacher_predict_url"))
"""The two ways to name a teacher: a same-server model, or a URL."""
HAS_TEACHER = any_of(*TEACHERS)
DIFFERENTIABLE = differentiable_families(REASONING_FAMILIES)


def searched_within(names: Sequence[str]) -> Condition:
    """Every family the fit searches (model_types, or the default) is among `names`."""
    return Condition(
        schema={"properties": {"model_types": {"anyOf": [
            {"type": "null"}, {"type": "array", "items": {"enum": list(names)}}]}}},
        holds=lambda request: all(n in names for n in request.family_names()),
    )


def _not_differentiable(request: ReasoningFitRequest) -> str:
    family = next(n for n in request.family_names() if n not in DIFFERENTIABLE)
    return (f"family {family!r} is not differentiable; a DiffModel teacher "
            f"(teacher_get_grads_url) needs one of: {', '.join(DIFFERENTIABLE)}")


REASONING_FIT_RULES = (
    Rule(not_(given("teacher_model_id", "teacher_predict_url")),
         "teacher_model_id and teacher_predict_url are mutually exclusive"),
    Rule(implies(given("teacher_get_grads_url"), given("teacher_predict_url")),
         "teacher_get_grads_url requires teacher_predict_url"),
    Rule(implies(filled("teacher_predict_headers"), given("teacher_predict_url")),
         "teacher_predict_headers requires teacher_predict_url"),
    Rule(implies(given("teacher_get_grads_url"), searched_within(DIFFERENTIABLE)),
         _not_differentiable),
    Rule(any_of(given("task"), *TEACHERS), "task is required when no teacher is set"),
)
"""The rules between a reasoning fit's fields, in the order they are checked."""


class ReasoningFitRequest(FitRequest):
    """POST /v1/reasoning/fit: fit a ReasoningModel against a registered dataset.

    When a teacher is set (teacher_model_id or teacher_predict_url), task becomes
    evaluation-only: the teacher provides the training target.
    """

    model_config = ConfigDict(json_schema_extra={
        "examples": [
            {"dataset_id": "3f2c1d9e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
             "task": {"task_kind": "regression", "label_column": "price"},
             "filter": {"col": "neighborhood", "op": "in", "value": ["harbor", "hills"]},
             "model_types": ["gam"], "n_hyperopt_steps": 8},
            {"dataset_id": "3f2c1d9e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
             "teacher_model_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
             "task": {"task_kind": "classification", "label_column": "sold"}},
        ],
        **rules_schema(REASONING_FIT_RULES),
    })

    model_types: ReasoningFamilies | None = Field(default=None, description=MODEL_TYPES)

    @model_validator(mode="after")
    def _rules_hold(self) -> ReasoningFitRequest:
        if problem := first_problem(self, REASONING_FIT_RULES):
            raise ValueError(problem)
        return self


class ModelFitRequest(FitRequest):
    """POST /v1/models/fit: train a same-server model; the search picks among the families."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"dataset_id": "3f2c1d9e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
         "task": {"task_kind": "classification", "label_column": "sold"},
         "model_types": ["xgboost", "random_forest"], "n_hyperopt_steps": 10}]})

    task: TaskSpec
    model_types: AnyFamilies | None = Field(default=None, description=MODEL_TYPES)
    # Fitted on the labels only: no teacher. Constants, not fields, so the request neither
    # accepts nor documents them (extra="forbid" refuses them). mypy refuses a class
    # variable in place of a field, which is the point here.
    teacher_model_id: ClassVar[None] = None  # type: ignore[misc]
    teacher_predict_url: ClassVar[None] = None  # type: ignore[misc]
    teacher_predict_headers: ClassVar[None] = None  # type: ignore[misc]
    teacher_get_grads_url: ClassVar[None] = None  # type: ignore[misc]


class FitAccepted(BaseModel):
    """POST /v1/reasoning/fit: async reasoning-fit job submission response."""

    job_id: UUID = Field(description="Server-assigned id of the submitted job")
    status: JobStatus = Field(description="The job's status: pending until a runner takes it")
    message: str = Field(description="What was accepted, in words")
    dataset_id: UUID = Field(description="Id of the dataset this fit trained against.")
    warnings: list[DataWarning] = Field(
        default_factory=list, description="What the fit will assume that may be wrong (e.g. "
        "a regression label with only a few distinct values, which may be classes)")
