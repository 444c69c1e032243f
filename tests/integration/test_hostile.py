"""Hostile input against the real service: every case a clear 4xx problem+json, never a 5xx,
and a rejected upload leaves no dataset (nor a folder) behind."""

from __future__ import annotations

import asyncio
import io
import json
import math
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from reasoning.schemas import MAX_PREDICT_ROWS
from reasoning.synthetic import houses
from tests.integration.conftest import JSON_LIMIT, OTHER, REG, TENANT, UPLOAD_LIMIT
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
        # (Latin-1 text is read in its guessed encoding, with a warning: test_data_sense.py.)
        ("t.xlsx", b"PK\x03\x04 pretending to be a workbook", "is a spreadsheet"),
        ("t.csv", b"PK\x03\x04 a workbook renamed", "is a spreadsheet"),
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
    # The file, its name, and what overrides the dialect's detection (test_data_sense.py).
    assert set(schema["properties"]) == {"file", "name", "delimiter", "decimal", "date_format",
                                         "encoding", "dtypes", "errors"}
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


# -- what a request must show before its body is read -----------------------------------


class Bystanders:
    """While a hostile request is handled, a thread keeps asking for /healthz and for
    another tenant's datasets; each answer must come, and promptly."""

    PROMPT = 2.0

    def __init__(self, service: Service, other: httpx.Client) -> None:
        self.service, self.other = service, other
        self.answers: list[tuple[int, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._ask, daemon=True)

    def _ask(self) -> None:
        while not self.stop.is_set():
            for call in (lambda: httpx.get(f"{self.service.url}/healthz", timeout=10),
                         lambda: self.other.get("/v1/datasets")):
                started = time.monotonic()
                status = call().status_code
                self.answers.append((status, time.monotonic() - started))
            time.sleep(0.02)

    def __enter__(self) -> Bystanders:
        self.thread.start()
        time.sleep(0.1)  # asking already when the hostile request goes out
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        if exc[0] is None:
            assert self.answers and {s for s, _ in self.answers} == {200}, self.answers
            slowest = max(t for _, t in self.answers)
            assert slowest < self.PROMPT, f"a bystander waited {slowest:.2f} s"


@pytest.fixture
def bystanders(service: Service, other_client: httpx.Client) -> Bystanders:
    return Bystanders(service, other_client)


def _raw_post(service: Service, path: str, headers: dict[str, str], body: bytes,
              declared: int) -> bytes:
    """Send a request line, headers and only the first bytes of a body declared far larger,
    and read what comes back: a server that waited for the whole body would answer nothing
    until the socket timed out."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{service.port}",
             f"Content-Length: {declared}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", service.port), timeout=20) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_stranger_gets_401_before_the_service_reads_the_body(service, client, nothing_stored,
                                                              bystanders):
    started = time.monotonic()
    with bystanders:
        answer = _raw_post(service, "/v1/reasoning/fit", {"content-type": "application/json"},
                           b'{"dataset_id": "' + b"x" * 60_000, declared=JSON_LIMIT - 1)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]
    assert b"www-authenticate: Bearer" in answer.lower().replace(b"bearer", b"Bearer")
    # Answered with most of the body never sent: it was not waited for.
    assert time.monotonic() - started < 15
    answer = _raw_post(service, "/v1/datasets", {"content-type": FORM},
                       b"--" + BOUNDARY.encode(), declared=UPLOAD_LIMIT)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]
    assert client.get("/healthz").status_code == 200


def test_the_token_route_takes_a_small_body(service, bystanders):
    with bystanders:
        response = httpx.post(f"{service.url}/v1/auth/token", timeout=30,
                              json={"api_key": "rk_" + "x" * 10_000})
    assert "/v1/auth/token takes at most 4,096 bytes" in _problem(response, 413)["detail"]


@pytest.mark.parametrize(("path", "content_type", "body"), [
    ("/v1/reasoning/fit", "text/plain", b'{"dataset_id": "x"}'),
    ("/v1/reasoning/fit", "application/x-www-form-urlencoded", b"dataset_id=x"),
    ("/v1/datasets", "application/json", b'{"file": "a,b\\n1,2"}'),
])
def test_a_body_of_the_wrong_type_is_415(client, nothing_stored, bystanders, path, content_type,
                                         body):
    with bystanders:
        response = client.post(path, content=body, headers={"content-type": content_type})
    problem = _problem(response, 415)
    assert content_type in problem["detail"] and response.headers["accept-post"]


def test_a_multipart_type_cannot_lift_a_json_routes_limit(client, model):
    """The upload limit is larger than the JSON one: a JSON body labelled multipart would
    be counted against the larger one, if it got that far."""
    rows = [{"area_sqm": 70.0}] * 20
    response = client.post(f"/v1/models/{model['model_id']}/predict",
                           content=json.dumps({"dataframe_records": rows}),
                           headers={"content-type": FORM})
    _problem(response, 415)


def test_filters_are_bounded_and_a_422_lists_a_few_errors(client, houses_dataset, bystanders):
    leaf = {"col": "rooms", "op": "==", "value": 1}
    wide = {"kind": "and", "filters": [{"kind": "or", "filters": [leaf] * 64}] * 5}
    body = {"dataset_id": houses_dataset["dataset_id"], "task": REG, "filter": wide}
    jobs_before = len(client.get("/v1/jobs", params={"limit": 1000}).json()["jobs"])
    with bystanders:
        detail = _problem(client.post("/v1/reasoning/fit", json=body), 422)["detail"]
    assert "320 comparisons; at most 256" in detail
    long_list = {"col": "rooms", "op": "in", "value": list(range(10_001))}
    body["filter"] = long_list
    assert "10,001 values" in _problem(client.post("/v1/reasoning/fit", json=body),
                                       422)["detail"]
    # 2,000 values that do not fit the column: ten of them listed, the rest counted.
    body["filter"] = {"col": "rooms", "op": "in", "value": [f"r{i}" for i in range(2_000)]}
    problem = _problem(client.post("/v1/reasoning/fit", json=body), 422)
    assert len(problem["errors"]) == 10 and problem["detail"].endswith("; and 1,990 more")
    assert len(client.get("/v1/jobs", params={"limit": 1000}).json()["jobs"]) == jobs_before


def test_a_failed_jobs_answer_has_no_traceback(client, fits):
    job = fits["starved"]
    assert job["status"] == "failed" and job["error"]
    assert "Traceback" not in job["error"] and 'File "' not in job["error"]
    assert "\n" not in job["error"]


def test_the_services_files_are_its_users_alone(service, fits):
    made = [service.home / "service.json",
            *(p for p in (service.home / "artifacts").rglob("*") if p.is_file())]
    assert len(made) > 5
    shared = [f"{path}: {path.stat().st_mode & 0o777:o}" for path in made
              if path.stat().st_mode & 0o077]
    assert shared == []


def test_a_small_parquet_that_unpacks_into_gigabytes_is_413(client, service, nothing_stored,
                                                            bystanders):
    """20,000 rows of one 60,000-character text: kilobytes on the wire, 1.2 GB decoded,
    over the default limit of 1 GiB (each cell within the 65,536 characters allowed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 20_000
    column = pa.DictionaryArray.from_arrays(pa.array([0] * rows, type=pa.int32()),
                                            pa.array(["x" * 60_000]))
    buffer = io.BytesIO()
    pq.write_table(pa.table({"s": column, "n": list(range(rows))}), buffer,
                   compression="zstd")
    assert len(buffer.getvalue()) < UPLOAD_LIMIT
    started = time.monotonic()
    with bystanders:
        response = client.post("/v1/datasets",
                               files={"file": ("bomb.parquet", buffer.getvalue())})
    assert "REASONING_MAX_UPLOAD_DECODED_BYTES" in _problem(response, 413)["detail"]
    assert time.monotonic() - started < 30
    assert client.get("/healthz").status_code == 200


def test_guessing_a_keys_secret_locks_that_key_and_no_other(service):
    """Ten wrong secrets for one key id: the eleventh try waits (429), the right secret
    included; meanwhile the other tenants' exchanges go through at once."""
    key_id, key = service.stores.credentials().create_key("gamma")
    wrong = key[:-6] + "WRONG!"

    def exchange(api_key: str) -> httpx.Response:
        return httpx.post(f"{service.url}/v1/auth/token", json={"api_key": api_key},
                          timeout=30)

    with ThreadPoolExecutor(10) as pool:
        guesses = list(pool.map(exchange, [wrong] * 10))
        started = time.monotonic()
        others = [pool.submit(exchange, service.keys[t]) for t in (TENANT, OTHER)]
        assert all(f.result().status_code == 200 for f in others)
        assert time.monotonic() - started < 5
    assert [r.status_code for r in guesses] == [401] * 10
    locked = exchange(key)
    assert "for this API key" in _problem(locked, 429)["detail"]
    assert int(locked.headers["retry-after"]) >= 1


def test_a_tenant_over_its_storage_quota_gets_413_and_no_one_else(service, client,
                                                                   bystanders):
    """A tenant whose datasets already take 10 GiB: one catalog row says so (making the
    objects would take minutes), and nothing more is stored for it."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from reasoning.schemas import Column, DatasetInfo
    from reasoning.service.database import datasets, writing

    key = service.stores.credentials().create_key("delta")[1]
    token = httpx.post(f"{service.url}/v1/auth/token", json={"api_key": key},
                       timeout=30).json()["access_token"]
    big = DatasetInfo(dataset_id=uuid.uuid4(), name="big", n_rows=10**8,
                      columns=[Column(name="x", dtype="float"), Column(name="y", dtype="float")],
                      created_at=datetime.now(UTC), tenant="delta")
    with writing(service.stores.engine()) as db:
        db.execute(insert(datasets).values(
            dataset_id=str(big.dataset_id), tenant="delta", created_at=big.created_at.isoformat(),
            info=big.model_dump_json(), bytes=10 * 2**30))
    with httpx.Client(base_url=service.url, timeout=30,
                      headers={"authorization": f"Bearer {token}"}) as delta, bystanders:
        upload = delta.post("/v1/datasets", files={"file": ("t.csv", b"x,y\n1,2\n3,4\n")})
        assert "the quota is" in _problem(upload, 413)["detail"]
        fit = delta.post("/v1/reasoning/fit", json={
            "dataset_id": str(big.dataset_id),
            "task": {"task_kind": "regression", "label_column": "y"}})
        assert "REASONING_MAX_STORED_BYTES_PER_TENANT" in _problem(fit, 413)["detail"]
        assert [d["name"] for d in delta.get("/v1/datasets").json()["datasets"]] == ["big"]
        assert delta.get("/v1/jobs").json()["jobs"] == []
    small = client.post("/v1/datasets", files={"file": ("t.csv", b"x,y\n1,2\n3,4\n")})
    assert small.status_code == 201, small.text


def test_a_fit_whose_design_matrix_is_too_big_is_422_at_submit(client, bystanders):
    """20,000 rows and a categorical of 15,000 levels: 300 million design cells, over the
    default 200 million, in a 300 KB upload."""
    rows = "\n".join(f"{i % 97}.5,s{i % 15_000}" for i in range(20_000))
    dataset = client.post("/v1/datasets", files={"file": ("wide.csv", f"y,street\n{rows}\n")})
    assert dataset.status_code == 201, dataset.text
    jobs_before = len(client.get("/v1/jobs", params={"limit": 1000}).json()["jobs"])
    with bystanders:
        response = client.post("/v1/reasoning/fit", json={
            "dataset_id": dataset.json()["dataset_id"],
            "task": {"task_kind": "regression", "label_column": "y"}})
    detail = _problem(response, 422)["detail"]
    assert "20,000 rows × 15,001 columns = 300,020,000 cells, 1.5 times the limit" in detail
    assert "street (15,001)" in detail
    assert len(client.get("/v1/jobs", params={"limit": 1000}).json()["jobs"]) == jobs_before


# -- a web page against the service in auth mode `none` ----------------------------------


@pytest.fixture(scope="module")
def open_client(open_service: Service) -> Iterator[httpx.Client]:
    """A client that is not a browser: no Origin, no Sec-Fetch-Site."""
    with httpx.Client(base_url=open_service.url, timeout=30) as http:
        yield http


def test_a_web_page_cannot_drive_the_service_in_auth_mode_none(open_service, open_client):
    """DNS rebinding (a name the page controls, pointed at 127.0.0.1), a cross-site form or
    `fetch`, a sandboxed frame: each refused before it reaches a route, while the service
    answers its own clients at once, and nothing is stored."""
    listed = _datasets(open_client)
    upload = form(part("file", b"x,y\n1,2\n3,4\n", filename="t.csv"))
    attacker = "http://attacker.example"
    with Bystanders(open_service, open_client):
        rebound = open_client.get("/v1/datasets",
                                  headers={"host": f"attacker.example:{open_service.port}"})
        assert "REASONING_ALLOWED_HOSTS" in _problem(rebound, 421)["detail"]
        for headers in ({"origin": attacker}, {"origin": "null"},
                        {"sec-fetch-site": "cross-site"}):
            response = open_client.post("/v1/datasets", content=upload,
                                        headers={"content-type": FORM, **headers})
            assert "another web site" in _problem(response, 403)["detail"], headers
        # What a page may send without a preflight never reaches a JSON route.
        for content_type, body in (("text/plain", b'{"dataset_id": "x"}'),
                                   ("application/x-www-form-urlencoded", b"dataset_id=x")):
            _problem(open_client.post("/v1/reasoning/fit", content=body,
                                      headers={"content-type": content_type}), 415)
        # No CORS: a preflight is not granted and no answer is readable by another origin.
        preflight = open_client.options("/v1/reasoning/fit", headers={
            "origin": attacker, "access-control-request-method": "POST",
            "access-control-request-headers": "content-type"})
        read = open_client.get("/v1/datasets", headers={"origin": attacker})
        assert read.status_code == 200
        for answer in (preflight, read):
            assert not any(h.startswith("access-control-") for h in answer.headers), answer
    # The service's own pages and clients are not refused.
    own = open_client.get("/v1/datasets", headers={"origin": open_service.url,
                                                   "sec-fetch-site": "same-origin"})
    assert own.status_code == 200 and _datasets(open_client) == listed


def test_serve_tells_the_ingress_where_it_listens(ray_driver, tmp_path, monkeypatch):
    """However the app is deployed (`serve run`, a Serve config, `build_app`), the ingress
    reads the address from Serve's controller and refuses a bind beyond loopback in auth
    mode `none` before it touches anything. (Nothing here binds beyond loopback: the
    controller's record is read for real, then replaced by one that says 0.0.0.0.)"""
    from types import SimpleNamespace

    from ray.serve import context

    from serve_app import app
    from serve_app.runtime import UnsafeBind, serve_listen_host

    assert serve_listen_host("unknown") == "127.0.0.1"  # the running controller's record
    told = SimpleNamespace(http_config=SimpleNamespace(host="0.0.0.0"))
    monkeypatch.setattr(context, "_get_global_client", lambda **_: told)
    home = tmp_path / "never-made"
    # What a Serve replica runs: @serve.ingress makes the class's __init__ a coroutine.
    ingress = app.ReasoningIngress.func_or_class
    with pytest.raises(UnsafeBind, match="refusing to listen on 0.0.0.0"):
        asyncio.run(ingress.__init__(ingress.__new__(ingress), {
            "home": str(home), "auth_mode": "none", "allow_open_bind": False}, None))
    assert not home.exists()
