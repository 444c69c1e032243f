"""Rules between a request's fields, each written once for both of its readers.

A `Condition` is one statement about a request in the two forms it is needed in: JSON
Schema keywords, so that the OpenAPI document states it, and a test of a validated
request, so that pydantic's validator enforces it. A `Rule` is a condition that must
hold and the message given when it does not. Each function below builds both forms from
the same arguments, side by side, and the combinators compose them, so a rule is written
once; tests/unit/test_schema_rules.py checks that the two forms agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Condition:
    """A statement about a request: as JSON Schema, and as a test of a request."""

    schema: dict[str, Any]
    holds: Callable[[Any], bool]


@dataclass(frozen=True)
class Rule:
    """A condition every request must meet, and what to tell a sender whose does not."""

    condition: Condition
    message: str | Callable[[Any], str]

    def problem(self, request: Any) -> str | None:
        """Why the request breaks the rule, or None when it keeps it."""
        if self.condition.holds(request):
            return None
        return self.message if isinstance(self.message, str) else self.message(request)


def first_problem(request: Any, rules: Sequence[Rule]) -> str | None:
    """The message of the first rule the request breaks, or None."""
    return next((p for rule in rules if (p := rule.problem(request)) is not None), None)


def rules_schema(rules: Sequence[Rule]) -> dict[str, Any]:
    """The JSON Schema keywords that state every rule (a model's json_schema_extra)."""
    schemas = [rule.condition.schema for rule in rules]
    return schemas[0] if len(schemas) == 1 else {"allOf": schemas}


def given(*names: str) -> Condition:
    """Each named field is given and not null."""
    return Condition(
        schema={"required": list(names),
                "properties": {n: {"not": {"type": "null"}} for n in names}},
        holds=lambda request: all(getattr(request, n) is not None for n in names),
    )


def filled(name: str) -> Condition:
    """The named field is an object with at least one entry."""
    return Condition(
        schema={"required": [name],
                "properties": {name: {"type": "object", "minProperties": 1}}},
        holds=lambda request: bool(getattr(request, name)),
    )


def json_type(value: Any) -> str:
    """The JSON Schema type of a validated value ("integer" for whole numbers only)."""
    for python, name in ((type(None), "null"), (bool, "boolean"), (int, "integer"),
                         (float, "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, python):
            return name
    raise TypeError(f"no JSON type for {type(value).__name__}")


def typed(name: str, *json_types: str) -> Condition:
    """The named field is given, as a value of one of the JSON types."""
    allowed = set(json_types) | ({"integer"} if "number" in json_types else set())
    return Condition(
        schema={"required": [name], "properties": {
            name: {"type": json_types[0] if len(json_types) == 1 else list(json_types)}}},
        holds=lambda request: json_type(getattr(request, name)) in allowed,
    )


def among(name: str, values: Sequence[Any]) -> Condition:
    """The named field is given, and is one of the values."""
    return Condition(
        schema={"required": [name], "properties": {name: {"enum": list(values)}}},
        holds=lambda request: getattr(request, name) in values,
    )


def outside(name: str, values: Sequence[Any]) -> Condition:
    """The named field (given, or its default) is none of the values."""
    return Condition(
        schema={"properties": {name: {"not": {"enum": list(values)}}}},
        holds=lambda request: getattr(request, name) not in values,
    )


def not_(condition: Condition) -> Condition:
    """The condition does not hold."""
    return Condition(schema={"not": condition.schema},
                     holds=lambda request: not condition.holds(request))


def implies(condition: Condition, consequence: Condition) -> Condition:
    """If `condition` holds then `consequence` must."""
    return Condition(
        schema={"anyOf": [{"not": condition.schema}, consequence.schema]},
        holds=lambda request: not condition.holds(request) or consequence.holds(request),
    )


def any_of(*conditions: Condition) -> Condition:
    """At least one of the conditions holds."""
    return Condition(
        schema={"anyOf": [c.schema for c in conditions]},
        holds=lambda request: any(c.holds(request) for c in conditions),
    )


def all_of(*conditions: Condition) -> Condition:
    """Every one of the conditions holds. Conditions on different fields are written as
    one object (required and properties side by side), as a reader would write them."""
    keys = {k for c in conditions for k in c.schema}
    fields = [name for c in conditions for name in c.schema.get("properties", {})]
    if keys <= {"required", "properties"} and len(fields) == len(set(fields)):
        required = [n for c in conditions for n in c.schema.get("required", [])]
        schema = {**({"required": required} if required else {}),
                  "properties": {n: s for c in conditions
                                 for n, s in c.schema.get("properties", {}).items()}}
    else:
        schema = {"allOf": [c.schema for c in conditions]}
    return Condition(schema=schema,
                     holds=lambda request: all(c.holds(request) for c in conditions))


def one_of(*conditions: Condition) -> Condition:
    """Exactly one of the conditions holds."""
    return Condition(
        schema={"oneOf": [c.schema for c in conditions]},
        holds=lambda request: sum(c.holds(request) for c in conditions) == 1,
    )


def tagged_by(field: str, default: str | None = None) -> Callable[[Any], str | None]:
    """A union's tag, read from `field`; a missing tag is the field's documented default."""

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            return value.get(field, default)
        return getattr(value, field, None)

    return tag
