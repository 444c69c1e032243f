"""Row filters: a comparison of one column, or and/or/not of filters.

A filter's shape and bounds are checked here; whether its columns and values fit a
dataset is checked at submit (reasoning.filters.check_filter).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from reasoning.schemas.rules import (
    Rule,
    all_of,
    among,
    any_of,
    outside,
    rules_schema,
    tagged_by,
    typed,
)


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


LIST_OP_NAMES = sorted(o.value for o in LIST_OPS)
NULL_OP_NAMES = sorted(o.value for o in NULL_OPS)


def _op_value_problem(comparison: Comparison) -> str:
    """What a comparison that breaks OP_VALUE lacks, in words."""
    op = comparison.op.value
    if comparison.op in LIST_OPS:
        return f"op {op!r} needs a list value"
    if isinstance(comparison.value, list):
        return f"op {op!r} needs a single value, not a list"
    return f"op {op!r} needs a value (use is_null to test for null)"


OP_VALUE = Rule(
    any_of(
        all_of(among("op", LIST_OP_NAMES), typed("value", "array")),
        among("op", NULL_OP_NAMES),
        all_of(outside("op", sorted(LIST_OP_NAMES + NULL_OP_NAMES)),
               typed("value", "string", "integer", "number", "boolean")),
    ),
    _op_value_problem,
)
"""A list for in/not_in, nothing needed for is_null/is_not_null, one value for the rest."""


class Comparison(BaseModel):
    """A single column comparison, e.g. col("ts") >= "2024-01-01"."""

    model_config = ConfigDict(json_schema_extra=rules_schema([OP_VALUE]))

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
        if problem := OP_VALUE.problem(self):
            raise ValueError(problem)
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
        tagged_by("kind", "cmp"),
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
