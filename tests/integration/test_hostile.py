"""Hostile input against the real service: every case a clear 4xx problem+json, never a 5xx,
and a rejected upload leaves no dataset (nor a folder) behind."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reasoning.schemas import MAX_PREDICT_ROWS
from reasoning.synthetic import houses
from tests.integration.conftest import JSON_LIMIT, REG, UPLOAD_LIMIT
from tests.integration.service import Service
from tests.multipart import BOUNDARY, FORM, form, part

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in body["detail"]
    return body


def _datasets(client: httpx.Client) -> set[str]:
    response = client.get("/v1/datasets")
    assert response.status_code == 200, response.text
    return {d["dataset_id"] for d in response.json()["datasets"]}


@pytest.fixture
def nothing_stored(client: httpx.Client, service: Service) -> Iterator[None]:
    """The test's uploads are all refused: no new dataset listed, no new file stored."""
    root = Path(service.stores.artifacts) / "datasets"
    listed, files = _datasets(client), set(root.rglob("*"))
    yield
    assert _datasets(client) == listed
    assert set(root.rglob("*")) == files




def _chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A generator body: httpx sends it chunked, with no Content-Length header."""
    for i in range(0, len(body), size):
        yield body[i : i + size]


def _post_form(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/v1/datasets", content=_chunked(body),
                       headers={"content-type": FORM})


def _post_json(client: httpx.Client, path: str, text: str | bytes) -> httpx.Response:
    return client.post(path, content=text, headers={"content-type": "application/json"})


# -- uploads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content", "words"),
    [
        ("t.csv", b"", "is empty"),
        ("t.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe garbage", "binary"),
        ("t.csv", bytes(range(0x80, 0x100)) * 8, "not UTF-8"),
        ("t.csv", "city,price\nZ\u00fcrich,1\n".encode("latin-1"), "not UTF-8"),
        ("t.xlsx", b"PK\x03\x04 pretending to be a workbook", "accepted: .csv, .parquet"),
        ("t", b"a,b\n1,2\n", "no extension"),
        ("t.csv", b"a,b,a\n1,2,3\n", "duplicate column names: 'a'"),
        ("t.csv", b"a,,c\n1,2,3\n", "blank column names (column 2)"),
        ("t.parquet", b"PAR1 not really parquet PAR1", "not readable Parquet"),
        ("t.parquet", b"a,b\n1,2\n", "not a Parquet file"),
    ],
)
def test_bad_files_are_422_naming_the_problem(client, nothing_stored, filename, content, words):
    response = client.post("/v1/datasets", files={"file": (filename, content)},
                           data={"name": "hostile"})
    problem = _problem(response, 422)
    assert words in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "file"]


def test_one_byte_over_the_limit_without_content_length_is_413(client, nothing_stored):
    body = form(part("file", b"a\n" + b"1" * (UPLOAD_LIMIT - 1), "big.csv"))
    response = _post_form(client, body)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    detail = _problem(response, 413)["detail"]
    assert f"{UPLOAD_LIMIT:,} bytes" in detail


def test_far_over_the_limit_without_content_length_is_413(client, nothing_stored):
    body = form(part("file", b"a\n" + b"1\n" * UPLOAD_LIMIT, "big.csv"))
    _problem(_post_form(client, body), 413)


def test_a_declared_length_far_over_the_limit_is_413(client, nothing_stored):
    response = client.post("/v1/datasets", files={"file": ("big.csv", b"1\n" * UPLOAD_LIMIT)})
    assert int(response.request.headers["content-length"]) > 2 * UPLOAD_LIMIT
    detail = _problem(response, 413)["detail"]
    assert f"limit of {UPLOAD_LIMIT:,} bytes (plus" in detail  # refused unread by BodyLimit


def test_a_file_of_exactly_the_limit_streamed_is_accepted(client):
    content = b"a,b\n" + b"1,2\n" * (UPLOAD_LIMIT // 4 - 1)
    assert len(content) == UPLOAD_LIMIT
    response = _post_form(client, form(part("name", b"exact"), part("file", content, "e.csv")))
    assert response.status_code == 201, response.text
    assert response.json()["n_rows"] == UPLOAD_LIMIT // 4 - 1
    assert response.json()["name"] == "exact"


@pytest.mark.parametrize(
    ("body", "content_type", "words", "loc"),
    [
        (b'{"file": "a,b\\n1,2"}', "application/json", "multipart/form-data", ["body"]),
        (form(part("name", b"no file")), None, "no `file` part", ["body", "file"]),
        (form(part("file", b"a\n1\n", "a.csv"))[: -len(BOUNDARY) - 6], None,
         "closing boundary", ["body"]),
        (b"this is not a multipart body", None, "malformed multipart", ["body"]),
    ],
)
def test_malformed_forms_are_422(client, nothing_stored, body, content_type, words, loc):
    headers = {"content-type": content_type or FORM}
    problem = _problem(client.post("/v1/datasets", content=body, headers=headers), 422)
    assert words in problem["detail"] and problem["errors"][0]["loc"] == loc


def test_openapi_still_documents_the_uploadform(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/datasets"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"]
    assert set(schema["properties"]) == {"file", "name"}
    assert schema["properties"]["name"]["type"] == "string"


# -- labels nothing can be learnt from ------------------------------------------------


def _labels_csv(labels: list[str]) -> bytes:
    return ("x,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels))).encode()


@pytest.mark.parametrize(
    ("labels", "task_kind", "words"),
    [
        ([""] * 60, "regression", "has no values: all 60 rows are null"),
        ([""] * 60, "classification", "has no values"),
        (["7.5"] * 60, "regression", "is constant (7.5)"),
        (["a"] * 55 + [""] * 5, "classification", "single class ('a')"),
    ],
)
def test_unlearnable_label_is_422_at_submit(client, labels, task_kind, words):
    response = client.post("/v1/datasets", files={"file": ("labels.csv", _labels_csv(labels))})
    assert response.status_code == 201, response.text
    body = {"dataset_id": response.json()["dataset_id"], "model_types": ["linear"],
            "task": {"task_kind": task_kind, "label_column": "y"}, "n_hyperopt_steps": 1}
    for path in ("/v1/reasoning/fit", "/v1/models/fit"):
        problem = _problem(client.post(path, json=body), 422)
        assert words in problem["detail"], problem
        assert problem["errors"][0]["loc"] == ["body", "task", "label_column"]


# -- JSON bodies ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(some_model: dict) -> dict:
    """A linear model's card to score hostile rows against."""
    return some_model


def _row(model: dict) -> dict:
    """A valid row for the model, from the housing table."""
    frame = houses(5, seed=9)
    record = json.loads(frame.iloc[[0]].to_json(orient="records", date_format="iso"))[0]
    return {f["name"]: record[f["name"]] for f in model["features"]}


@pytest.mark.parametrize(
    ("value", "shown"),
    [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"), ("1e999", "Infinity")],
)
@pytest.mark.parametrize("route", ["predict", "invocations", "grads"])
def test_nan_and_infinity_in_rows_are_422_naming_row_and_column(client, model, value, shown,
                                                                 route):
    good = _row(model)
    bad = {**good, "area_sqm": "__BAD__"}
    rows = {"dataframe_records": [good, good, bad]}
    literal = value if isinstance(value, str) else json.dumps(value)  # NaN, Infinity
    text = json.dumps(rows).replace('"__BAD__"', literal)
    problem = _problem(_post_json(client, f"/v1/models/{model['model_id']}/{route}", text), 422)
    assert f"row 2, column 'area_sqm': {shown}" in problem["detail"]


def test_nan_in_split_rows_is_422(client, model):
    good = _row(model)
    columns = list(good)
    data = [list(good.values()), [*list(good.values())[:-1], "__BAD__"]]
    text = json.dumps({"dataframe_split": {"columns": columns, "data": data}})
    text = text.replace('"__BAD__"', "NaN")
    problem = _problem(_post_json(client, f"/v1/models/{model['model_id']}/predict", text), 422)
    assert f"row 1, column {columns[-1]!r}: NaN" in problem["detail"]


def test_a_number_too_big_for_a_float_is_422(client, model):
    text = json.dumps({"dataframe_records": [{**_row(model), "area_sqm": "__BIG__"}]})
    text = text.replace('"__BIG__"', "1" + "0" * 400)
    problem = _problem(_post_json(client, f"/v1/models/{model['model_id']}/predict", text), 422)
    assert "area_sqm" in problem["detail"]


def test_rows_still_score(client, model):
    """The checks above do not refuse ordinary rows (nulls included)."""
    row = {**_row(model), "built_year": None}
    response = client.post(f"/v1/models/{model['model_id']}/predict",
                           json={"dataframe_records": [row, row]})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 2


def test_too_many_rows_is_422(client, model):
    rows = [{}] * (MAX_PREDICT_ROWS + 1)
    for route, body in [("predict", {"dataframe_records": rows}),
                        ("invocations", {"instances": rows}),
                        ("grads", {"dataframe_split": {"columns": [], "data": [[]] * len(rows)}})]:
        problem = _problem(client.post(f"/v1/models/{model['model_id']}/{route}", json=body), 422)
        assert f"at most {MAX_PREDICT_ROWS}" in problem["detail"], problem


def test_json_body_over_the_limit_without_content_length_is_413(client, model):
    def body() -> Iterator[bytes]:
        yield b'{"dataframe_records": [{}'
        for _ in range(JSON_LIMIT // (1 << 16) + 1):
            yield b" " * (1 << 16)
        yield b"]}"

    response = client.post(f"/v1/models/{model['model_id']}/predict", content=body(),
                           headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert f"{JSON_LIMIT:,} bytes" in _problem(response, 413)["detail"]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [65, 5_000, 200_000])
def test_deep_nesting_is_422(client, model, houses_dataset, depth):
    # {"dataframe_records": [{"area_sqm": ...}]} is three levels before the value.
    predict = f'{{"dataframe_records": [{{"area_sqm": {_nested(depth - 3)}}}]}}'
    fit = (f'{{"dataset_id": "{houses_dataset["dataset_id"]}", "task": {json.dumps(REG)}, '
           f'"filter": {_nested(depth - 1)}}}')
    for path, text in [(f"/v1/models/{model['model_id']}/predict", predict),
                       ("/v1/reasoning/fit", fit)]:
        problem = _problem(_post_json(client, path, text), 422)
        assert f"nested {depth:,} levels deep" in problem["detail"], problem
        assert "at most 64" in problem["detail"]


def test_nesting_at_the_bound_is_not_a_depth_error(client, model):
    # three levels around the value, 61 in it: 64 in all, accepted and then found wanting
    text = json.dumps({"dataframe_records": [{**_row(model), "area_sqm": "__DEEP__"}]})
    text = text.replace('"__DEEP__"', _nested(61))
    problem = _problem(_post_json(client, f"/v1/models/{model['model_id']}/predict", text), 422)
    assert "levels deep" not in problem["detail"]
    assert "column 'area_sqm' (float)" in problem["detail"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"random_state": "NaN"}, "random_state"),
     ({"n_hyperopt_steps": "Infinity"}, "n_hyperopt_steps")],
)
def test_nan_in_a_fit_request_is_422(client, houses_dataset, extra, field):
    body = {"dataset_id": houses_dataset["dataset_id"], "task": REG, **extra}
    text = json.dumps(body)
    for value in extra.values():
        text = text.replace(f'"{value}"', value)
    problem = _problem(_post_json(client, "/v1/reasoning/fit", text), 422)
    assert any(field in map(str, e["loc"]) for e in problem["errors"]), problem


def test_nan_filter_value_is_not_a_server_error(client, houses_dataset):
    body = {"dataset_id": houses_dataset["dataset_id"], "task": REG, "model_types": ["linear"],
            "n_hyperopt_steps": 1,
            "filter": {"kind": "cmp", "col": "area_sqm", "op": ">", "value": "__NAN__"}}
    text = json.dumps(body).replace('"__NAN__"', "NaN")
    response = _post_json(client, "/v1/reasoning/fit", text)
    problem = _problem(response, 422)
    assert "value" in problem["detail"]


def test_unknown_ids_with_hostile_bodies_stay_4xx(client):
    response = _post_json(client, f"/v1/models/{uuid.uuid4()}/predict", _nested(100))
    _problem(response, 422)
