"""Tables as people really have them (issue 14): CSV dialects, decimal commas, day-first
and month-first dates, stray values and retyping, identifier labels, category levels in
filters and at predict, spreadsheets, and the OpenAPI document. Every file is made here."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

from reasoning.dialects import CsvOptions, DialectError
from reasoning.encoding import infer_dtype
from reasoning.levels import model_levels, near_level, scoring_warnings
from reasoning.model import ReasoningModel
from reasoning.predict import rows_frame
from reasoning.readers import read_upload
from reasoning.schemas import Column, DatasetPatch, PredictRequest, ReasoningFitRequest
from reasoning.service.dataset_store import DatasetStore
from reasoning.upload_checks import DatasetError, RetypeError
from reasoning.validation import check_fit_request, fit_warnings
from serve_app.readiness import Readiness
from tests.unit.conftest import fresh_stores

N = 60
NEIGHBORHOODS = ["harbor", "hills", "old town"]


def _dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {c: infer_dtype(df[c]) for c in df.columns}


def _rows(delimiter: str, decimal: str) -> str:
    """A small houses table written in one dialect."""
    lines = [delimiter.join(["x", "neighborhood", "price", "sold"])]
    for i in range(N):
        price = f"{100 + i}.{i % 10}5".replace(".", decimal)
        lines.append(delimiter.join([str(i), NEIGHBORHOODS[i % 3], price,
                                     "true" if i % 2 else "false"]))
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------- dialects


@pytest.mark.parametrize(
    ("filename", "delimiter", "decimal"),
    [("houses.csv", ",", "."), ("houses.csv", ";", ","), ("houses.tsv", "\t", "."),
     ("houses.csv", "\t", ","), ("houses.txt", "|", ".")],
)
def test_delimiter_and_decimal_mark_are_read_from_the_data(
    filename: str, delimiter: str, decimal: str
) -> None:
    result = read_upload(filename, _rows(delimiter, decimal).encode())
    df = result.frame
    assert list(df.columns) == ["x", "neighborhood", "price", "sold"]
    assert _dtypes(df) == {"x": "integer", "neighborhood": "categorical", "price": "float",
                           "sold": "boolean"}
    assert df["price"][3] == pytest.approx(103.35)
    assert (result.dialect.delimiter, result.dialect.decimal) == (delimiter, decimal)
    assert result.dialect.format == "csv" and result.warnings == []


def test_semicolon_export_with_thousands_and_decimal_commas() -> None:
    text = "x;cat;price\n" + "".join(f"{i};a;1.234,{i}5\n" for i in range(5))
    df = read_upload("europe.csv", text.encode()).frame
    assert list(df.columns) == ["x", "cat", "price"]
    assert df["price"].tolist() == pytest.approx([1234.05, 1234.15, 1234.25, 1234.35, 1234.45])


def test_explicit_options_override_detection() -> None:
    text = "a;b\n1,5;2\n2,5;3\n"  # commas inside fields, semicolons between
    detected = read_upload("t.csv", text.encode())
    assert detected.frame["a"].tolist() == [1.5, 2.5]
    # Told the decimal mark is a point, "1,5" is text: the options win over the data.
    told = read_upload("t.csv", text.encode(), options=CsvOptions(delimiter=";", decimal="."))
    assert _dtypes(told.frame)["a"] == "categorical"
    assert told.dialect.decimal == "."


def test_a_named_encoding_and_a_guessed_one_are_said() -> None:
    raw = "city;n\nZürich;1\nMálaga;2\n".encode("cp1252")
    told = read_upload("t.csv", raw, options=CsvOptions(encoding="cp1252"))
    assert told.frame["city"].tolist() == ["Zürich", "Málaga"]
    assert told.dialect.encoding == "cp1252" and told.warnings == []
    guessed = read_upload("t.csv", raw)
    assert [w.kind for w in guessed.warnings] == ["guessed_encoding"]
    assert "encoding" in guessed.warnings[0].message


@pytest.mark.parametrize(
    ("options", "words"),
    [({"delimiter": ";;"}, "delimiter must be one character"),
     ({"decimal": ";"}, "decimal must be '.' or ','"),
     ({"date_format": "dd/mm/yyyy"}, "strftime pattern"),
     ({"encoding": "klingon"}, "unknown encoding 'klingon'")],
)
def test_bad_options_name_the_field(options: dict[str, str], words: str) -> None:
    with pytest.raises(DialectError, match=words):
        CsvOptions(**options)


@pytest.mark.parametrize(
    ("filename", "content"),
    [("book.xlsx", b"PK\x03\x04rest of a zip"), ("book.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
     ("renamed.csv", b"PK\x03\x04\x14\x00\x06\x00"), ("sheet.ods", b"PK\x03\x04")],
)
def test_spreadsheets_are_refused_with_how_to_export(filename: str, content: bytes) -> None:
    with pytest.raises(DatasetError, match="spreadsheet.*save it as CSV first"):
        read_upload(filename, content)


# ----------------------------------------------------------------------------- dates


def _dates(values: list[str], **options: str) -> Any:
    text = "d,n\n" + "".join(f"{v},{i}\n" for i, v in enumerate(values))
    return read_upload("d.csv", text.encode(), options=CsvOptions(**options))


def test_day_first_dates_are_told_by_a_day_over_12() -> None:
    result = _dates(["31/12/2023", "01/02/2023", "15/06/2024"])
    assert _dtypes(result.frame)["d"] == "timestamp"
    assert result.frame["d"].tolist()[:2] == [pd.Timestamp("2023-12-31"),
                                              pd.Timestamp("2023-02-01")]
    assert result.dialect.date_formats == {"d": "%d/%m/%Y"} and result.warnings == []


def test_month_first_dates_are_told_by_a_day_over_12() -> None:
    result = _dates(["12/31/2023", "02/01/2023", "06/15/2024 10:30"])
    assert result.frame["d"].tolist()[:2] == [pd.Timestamp("2023-12-31"),
                                              pd.Timestamp("2023-02-01")]
    assert result.dialect.date_formats["d"].startswith("%m/%d/%Y")


def test_dates_no_value_tells_apart_are_a_warning() -> None:
    result = _dates(["01/02/2023", "03/04/2023"])
    assert result.frame["d"][0] == pd.Timestamp("2023-01-02")  # month first: comma CSV
    [warning] = result.warnings
    assert warning.kind == "ambiguous_dates" and warning.column == "d"
    assert "date_format='%d/%m/%Y'" in warning.message
    # ...and a semicolon/decimal-comma export reads them day first, as its locale does.
    europe = read_upload("d.csv", b"d;n\n01.02.2023;1,5\n03.04.2023;2,5\n")
    assert europe.frame["d"][0] == pd.Timestamp("2023-02-01")
    assert [w.kind for w in europe.warnings] == ["ambiguous_dates"]
    # ...and a named format is taken as it is, with no warning.
    told = _dates(["01/02/2023", "03/04/2023"], date_format="%d/%m/%Y")
    assert told.frame["d"][0] == pd.Timestamp("2023-02-01") and told.warnings == []


def test_days_and_months_both_over_12_are_not_dates() -> None:
    assert _dtypes(_dates(["31/12/2023", "12/31/2023"]).frame)["d"] == "categorical"


def test_iso_dates_still_read() -> None:
    result = _dates(["2023-12-31", "2024-01-02T03:04:05"])
    assert _dtypes(result.frame)["d"] == "timestamp" and result.warnings == []


# ---------------------------------------------------------------- strays and retyping


def _stray_csv() -> bytes:
    rows = ["weight,city"] + [f"{10 + i}.5,{NEIGHBORHOODS[i % 3]}" for i in range(N)]
    rows[8] = "12 kg,harbor"
    return ("\n".join(rows) + "\n").encode()


def test_a_stray_value_keeps_the_column_text_and_says_so() -> None:
    result = read_upload("w.csv", _stray_csv())
    assert _dtypes(result.frame)["weight"] == "categorical"
    assert result.frame["weight"][7] == "12 kg"  # nothing lost
    [warning] = result.warnings
    assert (warning.column, warning.kind, warning.chosen, warning.suggested) == (
        "weight", "stray_values", "categorical", "float")
    assert warning.values == ["12 kg"] and "PATCH /v1/datasets/" in warning.message


def test_a_text_column_gets_no_stray_warning() -> None:
    text = "code\n" + "".join(f"{'A' if i % 2 else ''}{i}\n" for i in range(N))
    assert read_upload("c.csv", text.encode()).warnings == []


def test_upload_dtypes_retype_as_read() -> None:
    with pytest.raises(RetypeError, match=r"1 value\(s\) are not float \('12 kg'\)"):
        read_upload("w.csv", _stray_csv(), dtypes={"weight": "float"})
    result = read_upload("w.csv", _stray_csv(), dtypes={"weight": "float"}, errors="coerce")
    assert _dtypes(result.frame)["weight"] == "float" and np.isnan(result.frame["weight"][7])
    assert [w.kind for w in result.warnings] == ["coerced_values"]
    with pytest.raises(RetypeError, match="no column 'wieght'"):
        read_upload("w.csv", _stray_csv(), dtypes={"wieght": "float"})


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return fresh_stores("sqlite", tmp_path, None).datasets()


def test_patch_retypes_a_stored_dataset_and_its_statistics(store: DatasetStore) -> None:
    result = read_upload("w.csv", _stray_csv())
    info = store.add(result.frame, "w", "acme", result.dialect, result.warnings)
    assert store.get(info.dataset_id, "acme").warnings[0].kind == "stray_values"
    # Refused: nothing changes.
    with pytest.raises(RetypeError, match="nothing was changed"):
        store.retype(info.dataset_id, "acme", DatasetPatch(dtypes={"weight": "float"}))
    assert store.get(info.dataset_id).dtypes()["weight"] == "categorical"
    assert store.load(info.dataset_id)["weight"][7] == "12 kg"
    # Coerced: the column is a float column, in the file and in the catalog.
    after = store.retype(info.dataset_id, "acme",
                         DatasetPatch(dtypes={"weight": "float"}, errors="coerce"))
    assert after.dtypes()["weight"] == "float"
    assert [w.kind for w in after.warnings] == ["coerced_values"]
    assert store.get(info.dataset_id, "acme") == after
    assert store.load(info.dataset_id)["weight"].dtype == np.float64
    summary = store.column_summary(info.dataset_id, "weight")
    assert summary.n_present == N - 1 and summary.minimum == 10.5
    with pytest.raises(KeyError):
        store.retype(info.dataset_id, "someone-else", DatasetPatch(dtypes={"weight": "float"}))


def test_patch_to_timestamp_with_a_format(store: DatasetStore) -> None:
    frame = pd.DataFrame({"d": ["01/02/2023", "03/04/2023", "oops"], "n": [1, 2, 3]})
    info = store.add(read_upload("d.csv", frame.to_csv(index=False).encode()).frame, "d")
    after = store.retype(info.dataset_id, info.tenant, DatasetPatch(
        dtypes={"d": "timestamp"}, date_format="%d/%m/%Y", errors="coerce"))
    assert after.dtypes()["d"] == "timestamp"
    assert store.load(info.dataset_id)["d"][0] == pd.Timestamp("2023-02-01")


# -------------------------------------------------------------------------- labels


def _check(store: DatasetStore, frame: pd.DataFrame, request: dict[str, Any]) -> Any:
    info = store.add(frame, "t")
    fit = ReasoningFitRequest.model_validate({"dataset_id": str(info.dataset_id), **request})
    summarize = lambda column: store.column_summary(info.dataset_id, column)  # noqa: E731
    return (check_fit_request(fit, info.dtypes(), summarize=summarize),
            fit_warnings(fit, info.dtypes(), summarize))


def test_an_identifier_label_is_refused_for_classification(store: DatasetStore) -> None:
    frame = pd.DataFrame({"id": np.arange(1600) % 1280, "x": np.arange(1600) * 0.5})
    errors, _ = _check(store, frame, {"task": {"task_kind": "classification",
                                               "label_column": "id"}})
    [error] = errors
    assert error["loc"] == ["body", "task", "label_column"]
    assert "1,280 distinct values in 1,600 rows" in error["msg"]
    assert "looks like an identifier" in error["msg"]


def test_too_few_rows_per_class_is_refused(store: DatasetStore) -> None:
    frame = pd.DataFrame({"y": [f"c{i % 30}" for i in range(90)], "x": np.arange(90.0)})
    errors, _ = _check(store, frame, {"task": {"task_kind": "classification",
                                               "label_column": "y"}})
    assert "3.0 rows per class" in errors[0]["msg"]


def test_a_regression_label_of_few_values_gets_a_warning(store: DatasetStore) -> None:
    frame = pd.DataFrame({"stars": np.arange(N) % 3 + 1, "x": np.arange(N) * 1.0})
    errors, warnings = _check(store, frame, {"task": {"task_kind": "regression",
                                                      "label_column": "stars"}})
    assert errors == []
    [warning] = warnings
    assert warning.kind == "few_label_values" and "task_kind 'classification'" in warning.message
    # A label of many values, or a classification, says nothing.
    frame["stars"] = np.arange(N) * 0.1
    assert _check(store, frame, {"task": {"task_kind": "regression",
                                          "label_column": "stars"}})[1] == []


# ----------------------------------------------------------------------- categories


def _houses() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "neighborhood": [NEIGHBORHOODS[i % 3] for i in range(N)],
        "flag": [True] * N,
        "sqft": rng.uniform(500, 3000, N),
        "price": rng.uniform(1e5, 9e5, N),
    })


@pytest.mark.parametrize(
    ("flt", "loc", "words"),
    [({"col": "neighborhood", "value": "Harbor"}, ["body", "filter", "value"],
      "did you mean 'harbor'?"),
     ({"col": "neighborhood", "value": "harbour"}, ["body", "filter", "value"],
      "did you mean 'harbor'?"),
     ({"col": "neighborhood", "value": 5}, ["body", "filter", "value"],
      "5 is not a level of categorical column 'neighborhood', so it matches no row; its "
      "levels: 'harbor', 'hills', 'old town'"),
     ({"col": "neighborhood", "op": "in", "value": ["hills", "OLD TOWN"]},
      ["body", "filter", "value", 1], "did you mean 'old town'?"),
     ({"col": "flag", "value": False}, ["body", "filter", "value"],
      "has only true values, so False matches no row")],
)
def test_filter_values_are_checked_against_levels(
    store: DatasetStore, flt: dict[str, Any], loc: list[Any], words: str
) -> None:
    errors, _ = _check(store, _houses(), {"filter": flt, "task": {
        "task_kind": "regression", "label_column": "price"}})
    assert [e["loc"] for e in errors] == [loc]
    assert words in errors[0]["msg"]


def test_known_levels_pass_and_order_comparisons_are_not_checked(store: DatasetStore) -> None:
    for flt in ({"col": "neighborhood", "value": "harbor"},
                {"col": "neighborhood", "op": ">", "value": "h"},
                {"col": "flag", "value": True}):
        errors, _ = _check(store, _houses(), {"filter": flt, "task": {
            "task_kind": "regression", "label_column": "price"}})
        assert errors == [], flt


def test_near_level() -> None:
    levels = ["harbor", "hills", "old town"]
    assert near_level("Harbor", levels) == "harbor"
    assert near_level(" HILLS ", levels) == "hills"
    assert near_level("Old Towne", levels) == "old town"
    assert near_level("zzz", levels) is None


def test_predict_says_which_values_were_unseen_and_flags_empty_rows() -> None:
    frame = _houses()
    model = ReasoningModel("linear", "regression", {}, random_state=0).fit(
        frame.drop(columns="price"), frame["price"])
    request = PredictRequest(dataframe_records=[
        {"neighborhood": "harbor", "flag": True, "sqft": 1000},
        {"neighborhood": "Harbor", "flag": True, "sqft": 1000},
        {"neighborhood": None, "flag": None, "sqft": None},
        {"neighborhood": "mars", "flag": False, "sqft": 900},
    ])
    rows = rows_frame(request, [Column(name=f.name, dtype=f.dtype) for f in model.features_])
    warnings = scoring_warnings(rows, model_levels(model))
    assert [(w.row, w.column, w.kind, w.did_you_mean) for w in warnings] == [
        (1, "neighborhood", "unseen_level", "harbor"),
        (2, None, "all_null", None),
        (3, "neighborhood", "unseen_level", None),
    ]
    assert "never saw" in warnings[0].message
    # Scored as the unseen case: the mis-cased level is not the level's score.
    scored = model.predict(rows)
    assert scored[1] != pytest.approx(scored[0])


# ------------------------------------------------------------------------ readiness


def test_requests_get_a_503_problem_until_ready() -> None:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    state: dict[str, str | None] = {"waiting": "the service is starting"}
    app.add_middleware(Readiness, ready=lambda: state["waiting"])

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/healthz")

    starting = asyncio.run(get())
    assert starting.status_code == 503
    assert starting.headers["content-type"] == "application/problem+json"
    assert starting.headers["retry-after"] == "2"
    assert starting.json()["detail"] == "the service is starting"
    state["waiting"] = None
    assert asyncio.run(get()).json() == {"status": "ok"}


# ---------------------------------------------------------------- the API document


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from serve_app.rest import api

    return api.openapi()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_every_request_body_has_an_example(document: dict[str, Any]) -> None:
    bodies = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                bodies += 1
                schema = _resolve(document, content["schema"])
                assert "example" in content or "examples" in content or "examples" in schema, (
                    method, path, media)
    assert bodies >= 8


@pytest.mark.parametrize("name", [
    "Job", "JobList", "Progress", "FitAccepted", "ModelCard", "ModelList", "Trial",
    "RowCounts", "Metrics", "Explanation", "Column", "PredictResponse", "RowExplanation",
    "Reason", "ScoringWarning", "DatasetInfo", "DataWarning", "Dialect"])
def test_every_field_of_jobs_cards_and_predictions_is_described(
    document: dict[str, Any], name: str
) -> None:
    properties = document["components"]["schemas"][name]["properties"]
    assert [p for p, schema in properties.items() if not schema.get("description")] == []


def test_routes_declare_only_the_errors_they_give(document: dict[str, Any]) -> None:
    def errors(method: str, path: str) -> set[str]:
        return {s for s in document["paths"][path][method]["responses"] if s[0] in "45"}

    assert errors("get", "/healthz") == {"421", "503"}
    assert "409" in errors("post", "/v1/jobs/{job_id}/cancel")
    assert "409" not in errors("post", "/v1/reasoning/fit")
    assert "404" not in errors("get", "/v1/datasets")
    assert "415" not in errors("get", "/v1/jobs/{job_id}")
    assert {"401", "404", "413", "415", "422"} <= errors("patch", "/v1/datasets/{dataset_id}")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status[0] in "45":
                    assert "application/problem+json" in answer["content"], (method, path)


def test_nothing_points_outside_the_repository(document: dict[str, Any]) -> None:
    root = Path(__file__).resolve().parents[2]
    outside = re.compile(r"\.\./shared|(?<!docs/)DESIGN\.md|reasoning-fit-api\.txt")
    assert not outside.search(str(document))
    found = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if parts[0].startswith(".") or "node_modules" in parts or path.suffix not in (
                ".py", ".md", ".toml", ".yaml", ".yml", ".cfg", ".txt"):
            continue
        if path.name == Path(__file__).name:
            continue
        if outside.search(path.read_text(errors="replace")):
            found.append(str(path.relative_to(root)))
    assert found == []
