"""Request and response models of API v1, shared by REST clients and Python handle callers.

Field names, defaults and ranges follow the seed API page (reasoning-fit-api.txt) and
DESIGN.md section 3; rules that need no data (ranges, mutual exclusion, known families)
are checked here so that pydantic reports them with the field's location.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reasoning.families import FAMILIES, REASONING_FAMILIES


class Op(StrEnum):
    """Comparison operators of a filter (DESIGN.md section 3)."""

    eq = "=="
    ne = "!="
    lt = "<"
    le = "<="
    gt = ">"
    ge = ">="
    in_ = "in"
    not_in = "not_in"
    is_null = "is_null"
    is_not_null = "is_not_null"


LIST_OPS = frozenset({Op.in_, Op.not_in})
NULL_OPS = frozenset({Op.is_null, Op.is_not_null})
Scalar = str | int | float | bool | None


class Comparison(BaseModel):
    """A single column comparison, e.g. col("ts") >= "2024-01-01"."""

    kind: Literal["cmp"] = "cmp"
    col: str = Field(min_length=1)
    op: Op = Op.eq
    value: Scalar | list[Scalar] = None

    @model_validator(mode="after")
    def _value_matches_op(self) -> Comparison:
        if self.op in LIST_OPS and not isinstance(self.value, list):
            raise ValueError(f"op {self.op.value!r} needs a list value")
        if self.op not in LIST_OPS | NULL_OPS and isinstance(self.value, list):
            raise ValueError(f"op {self.op.value!r} needs a single value, not a list")
        if self.op not in LIST_OPS | NULL_OPS and self.value is None:
            raise ValueError(f"op {self.op.value!r} needs a value (use is_null to test for null)")
        return self


class And(BaseModel):
    """All of the filters hold (beyond the seed)."""

    kind: Literal["and"]
    filters: list[Filter] = Field(min_length=1, max_length=64)


class Or(BaseModel):
    """Any of the filters holds (beyond the seed)."""

    kind: Literal["or"]
    filters: list[Filter] = Field(min_length=1, max_length=64)


class Not(BaseModel):
    """The filter does not hold (beyond the seed)."""

    kind: Literal["not"]
    filter: Filter


Filter = Annotated[Comparison | And | Or | Not, Field(discriminator="kind")]
And.model_rebuild()
Or.model_rebuild()
Not.model_rebuild()


class Regression(BaseModel):
    """Predict a continuous target."""

    task_kind: Literal["regression"] = "regression"
    label_column: str = Field(min_length=1)


class Classification(BaseModel):
    """Predict a class (binary or multiclass)."""

    task_kind: Literal["classification"]
    label_column: str = Field(min_length=1)


Task = Annotated[Regression | Classification, Field(discriminator="task_kind")]


class _FitBase(BaseModel):
    """Fields shared by /v1/reasoning/fit and /v1/models/fit."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: UUID = Field(description="Id of a dataset registered via POST /v1/datasets.")
    filter: Filter | None = Field(default=None, description="Row filter applied before fitting.")
    task: Task | None = None
    model_types: list[str] | None = Field(
        default=None, description="Candidate model-family identifiers."
    )
    n_hyperopt_steps: int = Field(default=5, ge=1, le=200)
    random_state: int = 42

    def family_names(self) -> list[str]:
        """The families to search, with the default when none is given."""
        return list(self.model_types) if self.model_types else ["gam"]


class ReasoningFitRequest(_FitBase):
    """POST /v1/reasoning/fit: fit a ReasoningModel against a registered dataset.

    When a teacher is set (teacher_model_id or teacher_predict_url), task becomes
    evaluation-only: the teacher provides the training target.
    """

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

    @field_validator("model_types")
    @classmethod
    def _one_reasoning_family(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if len(value) > 1:
            raise ValueError(
                "reasoning.fit pins the surrogate family, so at most one entry is accepted"
            )
        for name in value:
            if name not in REASONING_FAMILIES:
                raise ValueError(
                    f"unknown family {name!r}; valid: {', '.join(REASONING_FAMILIES)}"
                )
        return value

    @model_validator(mode="after")
    def _teacher_rules(self) -> ReasoningFitRequest:
        if self.teacher_model_id is not None and self.teacher_predict_url is not None:
            raise ValueError("teacher_model_id and teacher_predict_url are mutually exclusive")
        if self.teacher_get_grads_url is not None and self.teacher_predict_url is None:
            raise ValueError("teacher_get_grads_url requires teacher_predict_url")
        if self.teacher_predict_headers and self.teacher_predict_url is None:
            raise ValueError("teacher_predict_headers requires teacher_predict_url")
        if self.teacher_get_grads_url is not None:
            family = self.family_names()[0]
            if not FAMILIES[family].differentiable:
                raise ValueError(
                    f"family {family!r} is not differentiable; a DiffModel teacher "
                    "(teacher_get_grads_url) needs one of: "
                    + ", ".join(n for n in REASONING_FAMILIES if FAMILIES[n].differentiable)
                )
        if self.task is None and not self.has_teacher:
            raise ValueError("task is required when no teacher is set")
        return self

    @property
    def has_teacher(self) -> bool:
        return self.teacher_model_id is not None or self.teacher_predict_url is not None


class ModelFitRequest(_FitBase):
    """POST /v1/models/fit: train a same-server model; the search picks among the families."""

    task: Task

    @field_validator("model_types")
    @classmethod
    def _known_families(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in FAMILIES:
                raise ValueError(f"unknown family {name!r}; valid: {', '.join(FAMILIES)}")
        return value


JobStatus = Literal["pending", "running", "completed", "failed"]
JobStage = Literal["queued", "synth_gen", "train", "finalize", "done"]
JobKind = Literal["reasoning_fit", "model_fit"]
TERMINAL_STATUSES = frozenset({"completed", "failed"})


class FitAccepted(BaseModel):
    """POST /v1/reasoning/fit: async reasoning-fit job submission response."""

    job_id: UUID = Field(description="Server-assigned id of the submitted job")
    status: JobStatus
    message: str
    dataset_id: UUID = Field(description="Id of the dataset this fit trained against.")


class Progress(BaseModel):
    done: int = 0
    total: int = 0


class Job(BaseModel):
    """A job as clients see it: the seed's four fields plus tracking detail."""

    job_id: UUID
    status: JobStatus
    message: str
    dataset_id: UUID
    kind: JobKind
    stage: JobStage
    progress: Progress
    model_id: UUID | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    attempts: int = 0


class JobList(BaseModel):
    jobs: list[Job]


class Column(BaseModel):
    name: str
    dtype: Literal["integer", "float", "boolean", "categorical", "timestamp"]


class DatasetInfo(BaseModel):
    """A registered dataset: immutable, stored as Parquet, with its inferred schema."""

    dataset_id: UUID
    name: str
    n_rows: int
    columns: list[Column]
    created_at: datetime

    def dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in self.columns}


class DatasetList(BaseModel):
    datasets: list[DatasetInfo]


class Trial(BaseModel):
    """One hyperparameter trial: its configuration and validation loss (None if it failed)."""

    family: str | None = None
    params: dict[str, Any]
    score: float | None
    error: str | None = None


class RowCounts(BaseModel):
    total: int
    after_filter: int
    train: int
    validation: int
    test: int


class Metrics(BaseModel):
    test: dict[str, float] = Field(default_factory=dict)
    fidelity: dict[str, float] = Field(default_factory=dict)
    label_only: dict[str, float] = Field(default_factory=dict)


class Explanation(BaseModel):
    importance: dict[str, float] = Field(default_factory=dict)
    shapes: dict[str, dict[str, list[Any]]] = Field(default_factory=dict)


class ModelCard(BaseModel):
    """What the registry knows about a model: lineage, search, metrics, explanation."""

    model_id: UUID
    kind: JobKind
    family: str
    task: Task | None = Field(description="None for a teacher-only fit: no labels to evaluate")
    dataset_id: UUID
    job_id: UUID
    filter: Filter | None = None
    teacher: dict[str, Any] | None = None
    features: list[Column]
    classes: list[Any] | None = None
    hyperparameters: dict[str, Any]
    score_name: str
    trials: list[Trial]
    rows: RowCounts
    metrics: Metrics
    explanation: Explanation
    random_state: int
    created_at: datetime
    summary: str


class ModelList(BaseModel):
    models: list[ModelCard]


class DataframeSplit(BaseModel):
    columns: list[str]
    data: list[list[Any]]


class PredictRequest(BaseModel):
    """Rows to score, in MLflow's dataframe_split or dataframe_records shape."""

    model_config = ConfigDict(extra="forbid")

    dataframe_split: DataframeSplit | None = None
    dataframe_records: list[dict[str, Any]] | None = None
    top_k: int | None = Field(default=5, ge=1, description="Reasons per row; null for all.")

    @model_validator(mode="after")
    def _exactly_one_shape(self) -> PredictRequest:
        if (self.dataframe_split is None) == (self.dataframe_records is None):
            raise ValueError("give exactly one of dataframe_split or dataframe_records")
        return self


class InvocationsRequest(BaseModel):
    """MLflow's scoring protocol: rows as dataframe_split, dataframe_records or instances."""

    dataframe_split: DataframeSplit | None = None
    dataframe_records: list[dict[str, Any]] | None = None
    instances: list[dict[str, Any]] | None = None
    params: dict[str, Any] | None = Field(default=None, description="Accepted and ignored.")

    @model_validator(mode="after")
    def _exactly_one_shape(self) -> InvocationsRequest:
        given = [self.dataframe_split, self.dataframe_records, self.instances]
        if sum(x is not None for x in given) != 1:
            raise ValueError("give exactly one of dataframe_split, dataframe_records, instances")
        return self

    def rows(self) -> PredictRequest:
        """The same rows in the predict request's shape."""
        return PredictRequest(
            dataframe_split=self.dataframe_split,
            dataframe_records=self.dataframe_records if self.instances is None else self.instances,
            top_k=1,
        )

    def columns(self) -> list[str]:
        """The request's column order (grads answer in it)."""
        if self.dataframe_split is not None:
            return list(self.dataframe_split.columns)
        records = self.dataframe_records if self.instances is None else self.instances
        return list(records[0]) if records else []


class InvocationsResponse(BaseModel):
    """Per row a value (regression) or a {class: probability} map (classification)."""

    predictions: list[Any]


class GradsResponse(BaseModel):
    """Per row d output / d column for each request column (per class for classification);
    null for columns that are not numeric."""

    columns: list[str]
    classes: list[Any] | None = None
    jacobians: list[Any]


class Reason(BaseModel):
    column: str
    value: Any
    contribution: float


class RowExplanation(BaseModel):
    output: float
    base_value: float
    reasons: list[Reason]
    rule: str | None = None


class PredictResponse(BaseModel):
    model_id: UUID
    predictions: list[Any]
    classes: list[Any] | None = None
    probabilities: list[list[float]] | None = None
    explanations: list[RowExplanation]


class ProblemDetail(BaseModel):
    """RFC 9457 problem details; `errors` lists each invalid field on a 422."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
