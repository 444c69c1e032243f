"""What the client commands read from their arguments: filters and teacher headers."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from reasoning.schemas import Column, DatasetInfo, ReasoningFitRequest
from serve_app.commands import add_commands
from serve_app.fit_command import _fit_request, _header, parse_filter


@pytest.mark.parametrize(("text", "leaf"), [
    ("listed_at >= 2020-01-01", {"col": "listed_at", "op": ">=", "value": "2020-01-01"}),
    ("rooms>3", {"col": "rooms", "op": ">", "value": 3}),
    ("rooms = 3", {"col": "rooms", "op": "==", "value": 3}),
    ("has_garden == true", {"col": "has_garden", "op": "==", "value": True}),
    ('neighborhood != "old town"', {"col": "neighborhood", "op": "!=", "value": "old town"}),
    ("area_sqm <= 80.5", {"col": "area_sqm", "op": "<=", "value": 80.5}),
    ("neighborhood in harbor, hills", {"col": "neighborhood", "op": "in",
                                       "value": ["harbor", "hills"]}),
    ("rooms not in 1,2", {"col": "rooms", "op": "not_in", "value": [1, 2]}),
    ("built_year is null", {"col": "built_year", "op": "is_null"}),
    ("built_year IS NOT NULL", {"col": "built_year", "op": "is_not_null"}),
    ("sale price < 100", {"col": "sale price", "op": "<", "value": 100}),
])
def test_a_filter_expression_is_the_apis_comparison(text, leaf):
    parsed = parse_filter([text])
    assert parsed == {"kind": "cmp", **leaf}


def test_several_filters_must_all_hold_and_the_api_takes_them():
    parsed = parse_filter(["rooms >= 2", "neighborhood in harbor,hills"])
    assert parsed is not None and parsed["kind"] == "and" and len(parsed["filters"]) == 2
    request = ReasoningFitRequest.model_validate({
        "dataset_id": "00000000-0000-0000-0000-000000000001", "filter": parsed,
        "task": {"task_kind": "regression", "label_column": "price"}})
    assert request.filter is not None and len(request.filter.filters) == 2
    assert parse_filter([]) is None


@pytest.mark.parametrize("text", ["rooms about 3", "rooms", ">= 3", ""])
def test_a_filter_that_cannot_be_read_says_how_to_write_one(text):
    with pytest.raises(ValueError, match="column op value"):
        parse_filter([text])


def test_teacher_headers_are_name_equals_value():
    assert _header("x-api-key=a=b") == ("x-api-key", "a=b")
    with pytest.raises(ValueError, match="NAME=VALUE"):
        _header("x-api-key")


def test_every_client_command_has_url_and_json():
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    for argv in (["datasets", "list"], ["datasets", "show", "x"], ["jobs"], ["models"],
                 ["cancel", "x"], ["report", "m"], ["predict", "m", "f.csv"],
                 ["fit", "d", "--label", "y"]):
        args = parser.parse_args([*argv, "--url", "http://h:1", "--json"])
        assert args.url == "http://h:1" and args.json and callable(args.run)
    with pytest.raises(SystemExit):
        parser.parse_args(["fit", "d", "--label", "y", "--teacher-model", "a",
                           "--teacher-url", "b"])


def _fit_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(["fit", "d", *argv])


DATASET = DatasetInfo(
    dataset_id="00000000-0000-0000-0000-000000000002", name="houses", n_rows=10,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
    columns=[Column(name="price", dtype="float"), Column(name="segment", dtype="categorical"),
             Column(name="rooms", dtype="integer")])


@pytest.mark.parametrize(("label", "task"), [
    ("price", "regression"), ("rooms", "regression"), ("segment", "classification")])
def test_the_task_follows_the_labels_type_unless_given(label, task):
    out = Console(file=io.StringIO())
    body = _fit_request(_fit_args("--label", label), DATASET, out)
    assert body["task"] == {"task_kind": task, "label_column": label}
    assert f"task: {task} ({label} is" in out.file.getvalue()
    given = _fit_request(_fit_args("--label", "rooms", "--task", "classification"), DATASET,
                         out)
    assert given["task"]["task_kind"] == "classification"
    with pytest.raises(ValueError, match="no column 'pricee'"):
        _fit_request(_fit_args("--label", "pricee"), DATASET, out)


def test_a_fit_request_from_flags_is_the_apis():
    body = _fit_request(_fit_args(
        "--label", "price", "--family", "linear", "--trials", "7",
        "--seed", "3", "--filter", "rooms >= 2", "--teacher-url", "https://t.example/p",
        "--teacher-header", "x-api-key=k", "--grads-url", "https://t.example/g"),
        DATASET, Console(file=io.StringIO()))
    request = ReasoningFitRequest.model_validate(body)
    assert request.model_types == ["linear"] and request.n_hyperopt_steps == 7
    assert request.random_state == 3 and request.teacher_predict_headers == {"x-api-key": "k"}
    assert request.teacher_get_grads_url == "https://t.example/g"
    bare = _fit_request(_fit_args("--label", "price"), DATASET, Console(file=io.StringIO()))
    assert set(bare) == {"dataset_id", "task"}  # the API's defaults for everything else


def test_the_client_commands_import_no_service_code() -> None:
    """A REST command pays for httpx and pandas, not for the families' scikit-learn and
    xgboost, FastAPI, SQLAlchemy or Ray: it starts in about a second instead of four."""
    heavy = ("sklearn", "xgboost", "fastapi", "sqlalchemy", "ray", "scipy")
    code = ("import sys, serve_app.cli, reasoning.client, reasoning.schemas\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2]).stdout
    assert out.strip() == "[]"
