"""Datasets: their columns and types, how a file was read, what an upload assumed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from reasoning.dtypes import Dtype
from reasoning.schemas.auth import DEFAULT_TENANT

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
