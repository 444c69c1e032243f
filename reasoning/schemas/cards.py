"""Model cards: what the registry knows about a model, from its search to its explanation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from reasoning.schemas.auth import DEFAULT_TENANT
from reasoning.schemas.datasets import Column
from reasoning.schemas.filters import Filter
from reasoning.schemas.fits import TaskSpec
from reasoning.schemas.jobs import JobKind


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
    task: TaskSpec | None = Field(description="None for a teacher-only fit: no labels to evaluate")
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
