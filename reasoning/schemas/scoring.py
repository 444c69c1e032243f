"""Scoring: rows to predict (the service's shape and MLflow's), and predictions with reasons."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reasoning.schemas.rules import Rule, given, one_of, rules_schema

MAX_PREDICT_ROWS = 10_000
"""Rows per scoring request (predict, invocations, grads): bigger batches go in several
requests, so one request cannot hold a replica for long; the JSON body limit bounds the
rest."""
Records = Annotated[list[dict[str, Any]], Field(max_length=MAX_PREDICT_ROWS)]


PREDICT_SHAPE = Rule(one_of(given("dataframe_split"), given("dataframe_records")),
                     "give exactly one of dataframe_split or dataframe_records")
INVOCATIONS_SHAPE = Rule(
    one_of(given("dataframe_split"), given("dataframe_records"), given("instances")),
    "give exactly one of dataframe_split, dataframe_records, instances",
)


class DataframeSplit(BaseModel):
    columns: list[str]
    data: Annotated[list[list[Any]], Field(max_length=MAX_PREDICT_ROWS)]


class PredictRequest(BaseModel):
    """Rows to score, in MLflow's dataframe_split or dataframe_records shape."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={
            **rules_schema([PREDICT_SHAPE]),
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
        if problem := PREDICT_SHAPE.problem(self):
            raise ValueError(problem)
        return self


class InvocationsRequest(BaseModel):
    """MLflow's scoring protocol: rows as dataframe_split, dataframe_records or instances."""

    model_config = ConfigDict(
        json_schema_extra={
            **rules_schema([INVOCATIONS_SHAPE]),
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
        if problem := INVOCATIONS_SHAPE.problem(self):
            raise ValueError(problem)
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
