"""Request and response models of API v1, shared by REST clients and Python handle callers.

Field names, defaults and ranges are those of the service's v1 fit API (README.md shows
each request); rules that need no data (ranges, mutual exclusion, known families) are
checked here so that pydantic reports them with the field's location.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from reasoning.families import FAMILIES, REASONING_FAMILIES

DEFAULT_TENANT = "default"
"""The one implicit tenant of auth mode `none`, and the owner of data made before tenants."""
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def _present(*names: str) -> dict[str, Any]:
    """JSON Schema: each named property is given and not null."""
    return {"required": list(names), "properties": {n: {"not": {"type": "null"}} for n in names}}


def _implies(condition: dict[str, Any], consequence: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema: if `condition` holds then `consequence` must."""
    return {"anyOf": [{"not": condition}, consequence]}


def _tagged_by(field: str, default: str | None = None) -> Callable[[Any], str | None]:
    """A union's tag, read from `field`; a missing tag is the field's documented default."""

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            return value.get(field, default)
        return getattr(value, field, None)

    return tag


class Op(StrEnum):
    """Comparison operators of a filter: SQL's, with nulls matched by is_null only."""

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


MAX_FILTER_LEAVES = 256
"""Comparisons in one filter: each is a pass over a column, so a request cannot ask for
millions of them."""
MAX_LIST_VALUES = 10_000
"""Values of one `in`/`not_in` list (matched in one pass over the column however many)."""
LIST_OPS = frozenset({Op.in_, Op.not_in})
NULL_OPS = frozenset({Op.is_null, Op.is_not_null})
Scalar = str | int | float | bool | None


class Comparison(BaseModel):
    """A single column comparison, e.g. col("ts") >= "2024-01-01"."""

    # The op/value rule of the validator below, so that the OpenAPI document states it.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["op", "value"], "properties": {
                    "op": {"enum": sorted(o.value for o in LIST_OPS)},
                    "value": {"type": "array"}}},
                {"required": ["op"], "properties": {
                    "op": {"enum": sorted(o.value for o in NULL_OPS)}}},
                {"required": ["value"], "properties": {
                    "op": {"not": {"enum": sorted(o.value for o in LIST_OPS | NULL_OPS)}},
                    "value": {"type": ["string", "integer", "number", "boolean"]}}},
            ]
        }
    )

    kind: Literal["cmp"] = "cmp"
    col: str = Field(min_length=1)
    op: Op = Op.eq
    value: Scalar | list[Scalar] = Field(
        default=None, description=f"A list for in/not_in (at most {MAX_LIST_VALUES:,} values)")

    @model_validator(mode="after")
    def _value_matches_op(self) -> Comparison:
        if isinstance(self.value, list) and len(self.value) > MAX_LIST_VALUES:
            raise ValueError(f"the {self.op.value} list has {len(self.value):,} values; at "
                             f"most {MAX_LIST_VALUES:,} are accepted")
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


Filter = Annotated[
    Annotated[Comparison, Tag("cmp")]
    | Annotated[And, Tag("and")]
    | Annotated[Or, Tag("or")]
    | Annotated[Not, Tag("not")],
    Discriminator(
        _tagged_by("kind", "cmp"),
        custom_error_type="filter_kind",
        custom_error_message="kind must be one of 'cmp' (the default), 'and', 'or', 'not'",
    ),
]
"""Tagged by `kind`; a filter without one is a comparison, as Comparison.kind's default says."""


def filter_leaves(flt: Filter) -> int:
    """How many comparisons a filter holds."""
    if isinstance(flt, And | Or):
        return sum(filter_leaves(child) for child in flt.filters)
    if isinstance(flt, Not):
        return filter_leaves(flt.filter)
    return 1


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


Task = Annotated[
    Annotated[Regression, Tag("regression")] | Annotated[Classification, Tag("classification")],
    Discriminator(
        _tagged_by("task_kind", "regression"),
        custom_error_type="task_kind",
        custom_error_message="task_kind must be 'regression' (the default) or 'classification'",
    ),
]
"""Tagged by `task_kind`; a task without one is a regression, as its default says."""


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

    @field_validator("filter")
    @classmethod
    def _few_comparisons(cls, flt: Filter | None) -> Filter | None:
        if flt is not None and (leaves := filter_leaves(flt)) > MAX_FILTER_LEAVES:
            raise ValueError(f"the filter has {leaves:,} comparisons; at most "
                             f"{MAX_FILTER_LEAVES} are accepted")
        return flt

    def family_names(self) -> list[str]:
        """The families to search, with the default when none is given."""
        return list(self.model_types) if self.model_types else ["gam"]


def _family_list(names: list[str], max_items: int | None = None) -> Callable[[dict], None]:
    """Document model_types' allowed names (and length) in the model's JSON Schema."""

    def edit(schema: dict[str, Any]) -> None:
        for branch in schema["properties"]["model_types"].get("anyOf", []):
            if branch.get("type") == "array":
                branch["items"] = {"type": "string", "enum": names}
                if max_items is not None:
                    branch["maxItems"] = max_items

    return edit


def _schema_extra(*edits: Callable[[dict], None], **keywords: Any) -> Callable[[dict], None]:
    """A json_schema_extra that adds keywords to the model's schema and applies edits."""

    def apply(schema: dict[str, Any]) -> None:
        schema.update(keywords)
        for edit in edits:
            edit(schema)

    return apply


class ReasoningFitRequest(_FitBase):
    """POST /v1/reasoning/fit: fit a ReasoningModel against a registered dataset.

    When a teacher is set (teacher_model_id or teacher_predict_url), task becomes
    evaluation-only: the teacher provides the training target.
    """

    # The rules of the validators below, so that the OpenAPI document states them.
    model_config = ConfigDict(
        json_schema_extra=_schema_extra(
            _family_list(list(REASONING_FAMILIES), max_items=1),
            examples=[
                {"dataset_id": "3f2c1d9e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
                 "task": {"task_kind": "regression", "label_column": "price"},
                 "filter": {"col": "neighborhood", "op": "in", "value": ["harbor", "hills"]},
                 "model_types": ["gam"], "n_hyperopt_steps": 8},
                {"dataset_id": "3f2c1d9e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
                 "teacher_model_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                 "task": {"task_kind": "classification", "label_column": "sold"}},
            ],
            allOf=[
                {"not": _present("teacher_model_id", "teacher_predict_url")},
                _implies(_present("teacher_get_grads_url"), _present("teacher_predict_url")),
                _implies(
                    {"required": ["teacher_predict_headers"], "properties": {
                        "teacher_predict_headers": {"type": "object", "minProperties": 1}}},
                    _present("teacher_predict_url"),
                ),
                _implies(_present("teacher_get_grads_url"), {"properties": {"model_types": {
                    "anyOf": [{"type": "null"}, {"type": "array", "items": {"enum": [
                        n for n in REASONING_FAMILIES if FAMILIES[n].differentiable]}}]}}}),
                {"anyOf": [_present("task"), _present("teacher_model_id"),
                           _present("teacher_predict_url")]},
            ],
        )
    )

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

    model_config = ConfigDict(json_schema_extra=_schema_extra(
        _family_list(list(FAMILIES)),
        examples=[{"dataset_id": "3f2c1d9e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
                   "task": {"task_kind": "classification", "label_column": "sold"},
                   "model_types": ["xgboost", "random_forest"], "n_hyperopt_steps": 10}],
    ))

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
    status: JobStatus = Field(description="The job's status: pending until a runner takes it")
    message: str = Field(description="What was accepted, in words")
    dataset_id: UUID = Field(description="Id of the dataset this fit trained against.")
    warnings: list[DataWarning] = Field(
        default_factory=list, description="What the fit will assume that may be wrong (e.g. "
        "a regression label with only a few distinct values, which may be classes)")


class Progress(BaseModel):
    """How far the job's current stage is."""

    done: int = Field(default=0, description="Units done: trials, or synthetic rows labelled")
    total: int = Field(default=0, description="Units the stage has in all (0: not known yet)")
    best: float | None = Field(
        default=None,
        description="While trials run: the best validation score so far (the model card's"
        " score_name; lower is better)",
    )


class Job(BaseModel):
    """A job as clients see it: the seed's four fields plus tracking detail."""

    job_id: UUID = Field(description="The job's id")
    status: JobStatus = Field(description="pending (queued), running, completed or failed")
    message: str = Field(description="What the job is doing or did, in words")
    dataset_id: UUID = Field(description="The dataset it fits on")
    kind: JobKind = Field(description="reasoning_fit (/v1/reasoning/fit) or model_fit "
                          "(/v1/models/fit)")
    stage: JobStage = Field(description="The pipeline stage: queued, synth_gen, train, "
                            "finalize, done")
    progress: Progress = Field(description="Progress of the current stage")
    model_id: UUID | None = Field(default=None, description="The model made, once completed")
    created_at: datetime = Field(description="When it was submitted (UTC)")
    started_at: datetime | None = Field(default=None, description="When a runner took it")
    finished_at: datetime | None = Field(default=None,
                                         description="When it completed or failed")
    error: str | None = Field(
        default=None,
        description="A failed job's error, its last line (operators see all of it, traceback"
        " included, with `reasoning admin show-job`)",
    )
    attempts: int = Field(default=0, description="Attempts started (a lost runner's attempt"
                          " is run again, up to a cap)")
    tenant: str = Field(default=DEFAULT_TENANT, description="The tenant that owns it")


class JobList(BaseModel):
    jobs: list[Job] = Field(description="Jobs, newest first")


Dtype = Literal["integer", "float", "boolean", "categorical", "timestamp"]
"""The service's column types: every stored column and model input is one of these."""


class Column(BaseModel):
    """One column of a dataset or input of a model."""

    name: str = Field(description="The column's name, as in the file's header")
    dtype: Dtype = Field(description="Its type: integer, float, boolean, categorical (text "
                         "levels) or timestamp")


class DataWarning(BaseModel):
    """Something the service assumed about the data that may be wrong: the upload, retype
    or fit went ahead, and this says what was chosen and how to choose otherwise."""

    column: str | None = Field(default=None, description="The column it is about, if one")
    kind: Literal["stray_values", "ambiguous_dates", "guessed_encoding", "coerced_values",
                  "few_label_values"] = \
        Field(description="stray_values: a few values unlike the rest kept the column text; "
              "ambiguous_dates: no date told day from month; guessed_encoding: the file was "
              "not UTF-8 and its encoding was guessed; coerced_values: values that did "
              "not convert became null; few_label_values: a regression label that looks like "
              "classes")
    message: str = Field(description="What was assumed and how to change it, in words")
    values: list[Any] = Field(default_factory=list, description="Example values concerned")
    chosen: Dtype | None = Field(default=None, description="The type the column was given")
    suggested: Dtype | None = Field(default=None,
                                    description="The type most of its values suggest")


class Dialect(BaseModel):
    """How an uploaded file was read: detected from the data unless the upload named it."""

    format: Literal["csv", "parquet"] = Field(description="The file's format")
    delimiter: str | None = Field(default=None, description="CSV field separator")
    decimal: str | None = Field(default=None, description="CSV decimal mark, '.' or ','")
    encoding: str | None = Field(default=None, description="CSV text encoding")
    date_formats: dict[str, str] = Field(
        default_factory=dict, description="Per timestamp column of a CSV, the format its "
        "dates were read with (strftime codes, or 'ISO 8601')")


class DatasetPatch(BaseModel):
    """PATCH /v1/datasets/{id}: retype columns of a stored dataset, without re-uploading."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"dtypes": {"weight": "float"}, "errors": "coerce"},
        {"dtypes": {"signup": "timestamp"}, "date_format": "%d/%m/%Y"},
    ]})

    dtypes: dict[str, Dtype] = Field(
        min_length=1, description="New type per column (columns not named keep theirs)")
    errors: Literal["raise", "coerce"] = Field(
        default="raise", description="As pandas' to_numeric: 'raise' refuses the change when "
        "a value does not convert (nothing changes); 'coerce' makes such values null")
    date_format: str | None = Field(
        default=None, description="strftime format of text dates (default: ISO 8601, then "
        "day or month first as the dataset's dialect suggests)")


class TokenRequest(BaseModel):
    """`POST /v1/auth/token`: an API key made by `reasoning admin create-key`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"api_key": "rk_live_..."}]})

    api_key: str = Field(min_length=1, max_length=512,
                         description="The key `reasoning admin create-key` printed")


class DatasetInfo(BaseModel):
    """A registered dataset: immutable, stored as Parquet, with its inferred schema."""

    dataset_id: UUID = Field(description="The dataset's id, for fits")
    name: str = Field(description="Its name (default: the file's name)")
    n_rows: int = Field(description="Rows (without the header)")
    columns: list[Column] = Field(description="Its columns and their inferred types")
    created_at: datetime = Field(description="When it was uploaded (UTC)")
    tenant: str = Field(default=DEFAULT_TENANT, description="The tenant that owns it")
    dialect: Dialect | None = Field(
        default=None, description="How the file was read (None for datasets stored before"
        " it was recorded)")
    warnings: list[DataWarning] = Field(
        default_factory=list, description="What the upload assumed that may be wrong, per "
        "column (stray values, ambiguous dates), and how to retype")

    def dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in self.columns}


class DatasetList(BaseModel):
    datasets: list[DatasetInfo]


class Trial(BaseModel):
    """One hyperparameter trial: its configuration and validation loss (None if it failed)."""

    family: str | None = Field(default=None, description="The model family tried")
    params: dict[str, Any] = Field(description="Its hyperparameters")
    score: float | None = Field(description="Validation loss (lower is better); null if it "
                                "failed")
    error: str | None = Field(default=None, description="Why it failed, if it did")
    node: str | None = Field(None, description="address of the Ray node that ran the trial")


class RowCounts(BaseModel):
    """Rows at each step from the dataset to the splits."""

    total: int = Field(description="Rows of the dataset")
    after_filter: int = Field(description="Rows the filter kept")
    train: int = Field(description="Rows trained on")
    validation: int = Field(description="Rows the trials were scored on")
    test: int = Field(description="Rows held out for the test metrics")


class Metrics(BaseModel):
    """How good the model is, on the test rows."""

    test: dict[str, float] = Field(default_factory=dict, description="Against the labels "
                                   "(r2/rmse/mae, or accuracy/log_loss/...)")
    fidelity: dict[str, float] = Field(default_factory=dict, description="A distilled "
                                       "student against its teacher")
    label_only: dict[str, float] = Field(default_factory=dict, description="The same family"
                                         " fitted on the labels alone, for comparison")


class Explanation(BaseModel):
    """What the model learnt, over the training rows."""

    importance: dict[str, float] = Field(default_factory=dict, description="Mean absolute "
                                         "contribution per input column, largest first")
    shapes: dict[str, dict[str, list[Any]]] = Field(
        default_factory=dict, description="Per input column, the mean contribution (y) at "
        "each value or level (x)")
    pairs: list[PairTerm] = Field(
        default_factory=list, description="The model's pairwise interaction terms (gam with "
        "n_pairs > 0), most important first; each column's importance and shape include half "
        "of each pair it is in")


class PairTerm(BaseModel):
    """One pairwise interaction term of a gam (GA²M): its two columns and its surface."""

    columns: list[str] = Field(description="The two input columns", min_length=2,
                               max_length=2)
    importance: float = Field(description="Mean absolute contribution of the term")
    surface: dict[str, Any] = Field(
        description="The term's contribution on a grid: x (first column's values), y "
        "(second column's), contribution[i][j] at (x[i], y[j]); multiclass adds classes and "
        "by_class, and contribution is then that of `class`, the class predicted most often")


class ModelCard(BaseModel):
    """What the registry knows about a model: lineage, search, metrics, explanation."""

    model_id: UUID = Field(description="The model's id")
    kind: JobKind = Field(description="The kind of fit that made it")
    family: str = Field(description="The model family (gam, linear, xgboost, ...)")
    task: Task | None = Field(description="None for a teacher-only fit: no labels to evaluate")
    dataset_id: UUID = Field(description="The dataset it was fitted on")
    job_id: UUID = Field(description="The job that fitted it")
    filter: Filter | None = Field(default=None, description="The row filter of the fit")
    teacher: dict[str, Any] | None = Field(default=None, description="The teacher it was "
                                           "distilled from, and how")
    features: list[Column] = Field(description="Its input columns: what predict takes")
    classes: list[Any] | None = Field(default=None, description="Classes, for classification")
    hyperparameters: dict[str, Any] = Field(description="The winning trial's hyperparameters")
    score_name: str = Field(description="The validation loss the trials were ranked by")
    trials: list[Trial] = Field(description="Every trial of the search")
    rows: RowCounts = Field(description="Rows from the dataset to the splits")
    metrics: Metrics = Field(description="Test metrics, fidelity, label-only comparison")
    explanation: Explanation = Field(description="Importance and shape per input column")
    random_state: int = Field(description="The seed: the same request fits the same model")
    created_at: datetime = Field(description="When it was stored (UTC)")
    summary: str = Field(description="The model in one sentence")
    examples: list[dict[str, Any]] = Field(
        default_factory=list,
        description="A few rows of the test split (input columns only), which the model's"
        " report explains one by one",
    )
    tenant: str = Field(default=DEFAULT_TENANT, description="The tenant that owns it")


class ModelList(BaseModel):
    models: list[ModelCard] = Field(description="Models, newest first")


MAX_PREDICT_ROWS = 10_000
"""Rows per scoring request (predict, invocations, grads): bigger batches go in several
requests, so one request cannot hold a replica for long; the JSON body limit bounds the
rest."""
Records = Annotated[list[dict[str, Any]], Field(max_length=MAX_PREDICT_ROWS)]


def _exactly_one(*names: str) -> dict[str, Any]:
    """JSON Schema: exactly one of the named properties is given and not null."""
    return {"oneOf": [_present(name) for name in names]}


class DataframeSplit(BaseModel):
    columns: list[str]
    data: Annotated[list[list[Any]], Field(max_length=MAX_PREDICT_ROWS)]


class PredictRequest(BaseModel):
    """Rows to score, in MLflow's dataframe_split or dataframe_records shape."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={
            **_exactly_one("dataframe_split", "dataframe_records"),
            "examples": [
                {"dataframe_records": [{"sqft": 1200, "neighborhood": "harbor",
                                        "listed_at": "2024-03-01"}], "top_k": 3},
                {"dataframe_split": {"columns": ["sqft", "neighborhood", "listed_at"],
                                     "data": [[1200, "harbor", "2024-03-01"]]}},
            ]},
    )

    dataframe_split: DataframeSplit | None = None
    dataframe_records: Records | None = None
    top_k: int | None = Field(default=5, ge=1, description="Reasons per row; null for all.")
    pairs: bool = Field(default=False, description="A gam's pairwise interaction terms as "
                        "reasons of their own (naming both columns), beside each column's own "
                        "term; by default each column's reason holds half of each pair it is in")

    @model_validator(mode="after")
    def _exactly_one_shape(self) -> PredictRequest:
        if (self.dataframe_split is None) == (self.dataframe_records is None):
            raise ValueError("give exactly one of dataframe_split or dataframe_records")
        return self


class InvocationsRequest(BaseModel):
    """MLflow's scoring protocol: rows as dataframe_split, dataframe_records or instances."""

    model_config = ConfigDict(
        json_schema_extra={
            **_exactly_one("dataframe_split", "dataframe_records", "instances"),
            "examples": [{"dataframe_records": [{"sqft": 1200, "neighborhood": "harbor",
                                                 "listed_at": "2024-03-01"}]}],
        }
    )

    dataframe_split: DataframeSplit | None = None
    dataframe_records: Records | None = None
    instances: Records | None = None
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
    """One input column's part in a prediction (or, asked for with `pairs`, a pair term's)."""

    column: str = Field(description="The input column (a pair term: \"a & b\")")
    columns: list[str] | None = Field(default=None, description="A pair term's two input "
                                      "columns; absent for a column's own reason")
    value: Any = Field(description="Its value in the row (a pair term: both values)")
    contribution: float = Field(description="What it added to the output (the output is the "
                                "base value plus every column's contribution)")


class RowExplanation(BaseModel):
    """Why the model predicted what it did for one row."""

    output: float = Field(description="The raw output: the value (regression) or the "
                          "predicted class's log-odds score")
    base_value: float = Field(description="The output before any column's contribution")
    reasons: list[Reason] = Field(description="The top_k columns by absolute contribution")
    rule: str | None = Field(default=None, description="The decision path, for tree models")


class ScoringWarning(BaseModel):
    """A row scored in a way its sender may not expect."""

    row: int = Field(description="The row's position in the request (from 0)")
    column: str | None = Field(description="The column (null: the row as a whole)")
    value: Any = Field(description="The value sent")
    kind: Literal["unseen_level", "all_null"] = Field(
        description="unseen_level: a category the model never saw, scored as the model's "
        "'unseen' case (no level's contribution); all_null: every value of the row is null, "
        "scored as the model's typical row")
    did_you_mean: str | None = Field(default=None, description="A level it knows that is "
                                     "close (differs in case, or a near spelling)")
    message: str = Field(description="The same, in words")


class PredictResponse(BaseModel):
    """Predictions, and per row the reasons behind each."""

    model_id: UUID = Field(description="The model that scored")
    predictions: list[Any] = Field(description="Per row the value, or the predicted class")
    classes: list[Any] | None = Field(default=None, description="Classes, for classification")
    probabilities: list[list[float]] | None = Field(
        default=None, description="Per row a probability per class, in `classes` order")
    explanations: list[RowExplanation] = Field(description="Per row why")
    warnings: list[ScoringWarning] = Field(
        default_factory=list, description="Rows scored with values the model never saw "
        "(unseen categories) or no values at all; empty when every row was ordinary")


class ProblemDetail(BaseModel):
    """RFC 9457 problem details; `errors` lists each invalid field on a 422."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
