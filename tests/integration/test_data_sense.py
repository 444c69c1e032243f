"""Tables as people really have them, over HTTP (issue 14): a European spreadsheet export
uploaded and retyped, submit-time checks of labels and levels, predict naming unseen
levels, and /docs and /redoc rendered in Chromium with nothing but the service reachable.

Cheap by design: one small upload, no fit of its own (predict uses the session's model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import Chromium
from tests.integration.conftest import REG
from tests.integration.service import Service, submit, wait_for, wait_job
from tests.teacher_server import TeacherServer

ROWS = 40


def _european_csv() -> bytes:
    """What a spreadsheet in much of Europe exports: semicolons, decimal commas, day-first
    dates, one stray value in a numeric column, an identifier."""
    lines = ["id;neighborhood;weight;listed;price"]
    for i in range(ROWS):
        hood = ("harbor", "hills")[i % 2]
        lines.append(f"{1000 + i};{hood};{10 + i},5;{(i % 28) + 1:02d}/{(i % 12) + 1:02d}/2023;"
                     f"{200 + 3 * i},25")
    lines[5] = "1004;hills;12 kg;13/05/2023;212,25"
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def european(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/v1/datasets", files={"file": ("export.csv", _european_csv())})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_semicolon_export_is_read_in_its_dialect(european: dict[str, Any]) -> None:
    assert {c["name"]: c["dtype"] for c in european["columns"]} == {
        "id": "integer", "neighborhood": "categorical", "weight": "categorical",
        "listed": "timestamp", "price": "float"}
    assert european["dialect"] == {"format": "csv", "delimiter": ";", "decimal": ",",
                                   "encoding": "utf-8", "date_formats": {"listed": "%d/%m/%Y"}}
    [warning] = european["warnings"]
    assert (warning["column"], warning["kind"], warning["values"]) == (
        "weight", "stray_values", ["12 kg"])


def test_upload_fields_name_the_dialect_and_bad_ones_are_422(client: httpx.Client) -> None:
    text = b"a|b\n1|31.12.2023\n2|01.01.2024\n"
    response = client.post("/v1/datasets", files={"file": ("pipes.txt", text)},
                           data={"delimiter": "|", "date_format": "%d.%m.%Y",
                                 "dtypes": '{"a": "float"}'})
    assert response.status_code == 201, response.text
    body = response.json()
    assert {c["name"]: c["dtype"] for c in body["columns"]} == {"a": "float", "b": "timestamp"}
    for data, field, words in [({"decimal": ";"}, "decimal", "'.' or ','"),
                               ({"dtypes": '{"a": "number"}'}, "dtypes", "JSON object"),
                               ({"dtypes": '{"zz": "float"}'}, "dtypes", "no column 'zz'")]:
        bad = client.post("/v1/datasets", files={"file": ("pipes.txt", text)},
                          data={"delimiter": "|", **data})
        assert bad.status_code == 422, bad.text
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["errors"][0]["loc"] == ["body", field] and words in bad.text


def test_a_spreadsheet_is_a_422_saying_how_to_export(client: httpx.Client) -> None:
    response = client.post("/v1/datasets", files={"file": ("book.xlsx", b"PK\x03\x04zip")})
    assert response.status_code == 422
    assert "save it as CSV first" in response.json()["detail"]


def test_patch_retypes_without_reuploading(client: httpx.Client,
                                           european: dict[str, Any]) -> None:
    url = f"/v1/datasets/{european['dataset_id']}"
    refused = client.patch(url, json={"dtypes": {"weight": "float"}})
    assert refused.status_code == 422, refused.text
    assert "'12 kg'" in refused.json()["detail"] and "nothing was changed" in refused.text
    assert client.get(url).json()["columns"] == european["columns"]
    done = client.patch(url, json={"dtypes": {"weight": "float"}, "errors": "coerce"})
    assert done.status_code == 200, done.text
    assert {c["name"]: c["dtype"] for c in done.json()["columns"]}["weight"] == "float"
    assert [w["kind"] for w in done.json()["warnings"]] == ["coerced_values"]
    assert client.get(url).json() == done.json()
    assert client.patch(url, json={"dtypes": {"nope": "float"}}).status_code == 422
    assert client.patch(
        "/v1/datasets/00000000-0000-4000-8000-000000000000",
        json={"dtypes": {"weight": "float"}}).status_code == 404


def test_patch_waits_for_the_jobs_that_use_the_dataset(client: httpx.Client) -> None:
    # A job held mid-run by a teacher that answers only when told: the dataset it reads
    # (again, if its runner is lost) must keep its types until it ends.
    houses = Path(__file__).parents[2] / "reasoning" / "data" / "houses.csv"
    uploaded = client.post("/v1/datasets", files={"file": ("houses.csv", houses.read_bytes())})
    assert uploaded.status_code == 201, uploaded.text
    url = f"/v1/datasets/{uploaded.json()['dataset_id']}"
    teacher = TeacherServer()
    try:
        job_id = submit(client, "/v1/reasoning/fit", {
            "dataset_id": uploaded.json()["dataset_id"], "task": REG, "model_types": ["linear"],
            "n_hyperopt_steps": 1, "teacher_predict_url": f"{teacher.url}/gated/predict"})
        wait_for(client, job_id, lambda j: j["stage"] == "synth_gen")
        busy = client.patch(url, json={"dtypes": {"rooms": "float"}})
        assert busy.status_code == 409, busy.text
        assert job_id in busy.json()["detail"] and "pending or running" in busy.text
        assert client.get(url).json()["columns"] == uploaded.json()["columns"]  # unchanged
        teacher.gate.set()
        assert wait_job(client, job_id)["status"] == "completed"
    finally:
        teacher.gate.set()
        teacher.close()
    done = client.patch(url, json={"dtypes": {"rooms": "float"}})
    assert done.status_code == 200, done.text
    assert {c["name"]: c["dtype"] for c in done.json()["columns"]}["rooms"] == "float"


def _submit(client: httpx.Client, dataset: dict[str, Any], **body: Any) -> httpx.Response:
    return client.post("/v1/reasoning/fit", json={"dataset_id": dataset["dataset_id"], **body})


def test_an_identifier_label_is_a_422(client: httpx.Client, european: dict[str, Any]) -> None:
    response = _submit(client, european,
                       task={"task_kind": "classification", "label_column": "id"})
    assert response.status_code == 422
    assert "looks like an identifier" in response.json()["detail"]


@pytest.mark.parametrize(("value", "words"), [
    ("Harbor", "did you mean 'harbor'?"),
    (5, "5 is not a level of categorical column 'neighborhood'")])
def test_filter_levels_are_checked_at_submit(
    client: httpx.Client, european: dict[str, Any], value: Any, words: str
) -> None:
    response = _submit(client, european,
                       task={"task_kind": "regression", "label_column": "price"},
                       filter={"col": "neighborhood", "value": value})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "filter", "value"]
    assert words in response.json()["detail"]


def test_predict_names_unseen_levels_and_empty_rows(
    client: httpx.Client, some_model: dict[str, Any]
) -> None:
    row = {**some_model["examples"][0]}
    assert "neighborhood" in row
    rows = [{**row, "neighborhood": "harbor"}, {**row, "neighborhood": "Harbor"},
            {name: None for name in row}]
    response = client.post(f"/v1/models/{some_model['model_id']}/predict",
                           json={"dataframe_records": rows})
    assert response.status_code == 200, response.text
    warnings = response.json()["warnings"]
    assert [(w["row"], w["column"], w["kind"], w["did_you_mean"]) for w in warnings] == [
        (1, "neighborhood", "unseen_level", "harbor"), (2, None, "all_null", None)]
    assert len(response.json()["predictions"]) == 3


@pytest.mark.parametrize(("path", "ready"), [
    ("/docs", ".opblock-summary-path"),
    ("/redoc", "[data-role='redoc-summary'], li[data-item-id^='tag/'], .menu-content li"),
])
def test_docs_render_with_the_network_off(
    service: Service, chromium: Chromium, path: str, ready: str
) -> None:
    """Every request that is not to the service is aborted, as with no internet access;
    the page still lists the API's operations, and asked for no script, style sheet, font
    or data from elsewhere (ReDoc's bundle names its own footer logo on its CDN: an image,
    which is simply missing offline)."""
    outside: list[tuple[str, str]] = []

    def route(request_route: Any) -> None:
        if request_route.request.url.startswith(service.url):
            request_route.continue_()
        else:
            outside.append((request_route.request.resource_type, request_route.request.url))
            request_route.abort("internetdisconnected")

    context = chromium._browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        page.route("**/*", route)
        page.goto(f"{service.url}{path}", wait_until="load", timeout=30_000)
        page.wait_for_selector(ready, timeout=30_000)
        listed = page.locator(ready).all_inner_texts()
    finally:
        context.close()
    assert [(kind, url) for kind, url in outside if kind != "image"] == []
    assert not [url for _, url in outside if path == "/docs"]
    if path == "/docs":
        assert "/v1/datasets/{dataset_id}" in listed and "/v1/reasoning/fit" in listed
    else:
        assert len(listed) >= 5


def test_the_document_cites_nothing_outside(service: Service) -> None:
    document = httpx.get(f"{service.url}/openapi.json", timeout=30).text
    assert "DESIGN.md" not in document and "../shared" not in document
    assert httpx.get(f"{service.url}/static-offline-docs/swagger-ui.css",
                     timeout=30).status_code == 200
