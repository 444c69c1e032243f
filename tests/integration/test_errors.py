"""Every 4xx of the fit API, as problem+json that names the field."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import UPLOAD_LIMIT

PROBLEM = "application/problem+json"


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def _locs(body: dict) -> list[list]:
    return [e["loc"] for e in body.get("errors") or []]


REG = {"task_kind": "regression", "label_column": "price"}

INVALID = {
    "n_hyperopt_steps below 1": ({"n_hyperopt_steps": 0}, "n_hyperopt_steps"),
    "n_hyperopt_steps above 200": ({"n_hyperopt_steps": 201}, "n_hyperopt_steps"),
    "two model types": ({"model_types": ["gam", "linear"]}, "model_types"),
    "unknown family": ({"model_types": ["prophet"]}, "model_types"),
    "both teachers": ({"teacher_model_id": str(uuid.uuid4()),
                       "teacher_predict_url": "http://example.com/p"}, "body"),
    "grads without predict url": ({"teacher_get_grads_url": "http://example.com/g"}, "body"),
    "grads with a tree": ({"teacher_predict_url": "http://example.com/p",
                           "teacher_get_grads_url": "http://example.com/g",
                           "model_types": ["decision_tree"]}, "body"),
    "missing label column": ({"task": {"task_kind": "regression", "label_column": "nope"}},
                             "label_column"),
    "categorical regression label": (
        {"task": {"task_kind": "regression", "label_column": "neighborhood"}}, "label_column"),
    "unknown task kind": ({"task": {"task_kind": "ranking", "label_column": "price"}}, "task"),
    "filter column missing": ({"filter": {"kind": "cmp", "col": "nope", "op": "==",
                                          "value": 1}}, "col"),
    "filter value not coercible": ({"filter": {"kind": "cmp", "col": "rooms", "op": ">",
                                               "value": "many"}}, "value"),
    "filter timestamp not coercible": ({"filter": {"kind": "cmp", "col": "listed_at",
                                                   "op": ">=", "value": "yesterday"}}, "value"),
    "filter unknown op": ({"filter": {"kind": "cmp", "col": "rooms", "op": "~",
                                      "value": 1}}, "op"),
    "in without a list": ({"filter": {"kind": "cmp", "col": "rooms", "op": "in",
                                      "value": 1}}, "filter"),
    "unknown field": ({"n_trials": 3}, "n_trials"),
    "no task without teacher": ({"task": None}, "body"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_fit_validation_is_a_422_naming_the_field(client, houses_dataset, case):
    extra, field = INVALID[case]
    body = {"dataset_id": houses_dataset["dataset_id"], "task": REG, **extra}
    problem = _problem(client.post("/v1/reasoning/fit", json=body), 422)
    assert any(field in map(str, loc) for loc in _locs(problem)), problem
    assert "Traceback" not in problem["detail"]


def test_unknown_teacher_model_is_a_404_like_an_unknown_dataset(client, houses_dataset):
    missing = str(uuid.uuid4())
    body = {"dataset_id": houses_dataset["dataset_id"], "task": REG, "teacher_model_id": missing}
    assert missing in _problem(client.post("/v1/reasoning/fit", json=body), 404)["detail"]


def test_unknown_family_message_lists_the_valid_ones(client, houses_dataset):
    body = {"dataset_id": houses_dataset["dataset_id"], "task": REG, "model_types": ["svm"]}
    detail = _problem(client.post("/v1/reasoning/fit", json=body), 422)["detail"]
    for family in ("linear", "gam", "decision_tree", "xgboost"):
        assert family in detail


def test_unknown_dataset_is_a_404(client):
    body = {"dataset_id": str(uuid.uuid4()), "task": REG}
    assert "not found" in _problem(client.post("/v1/reasoning/fit", json=body), 404)["detail"]


def test_defaults_are_the_seeds(client, fits):
    """FITS["defaults"] gave only the dataset and the task."""
    job = fits["defaults"]
    assert job["status"] == "completed", job
    card = client.get(f"/v1/models/{job['model_id']}").json()
    best = min(t["score"] for t in card["trials"])
    assert job["progress"] == {"done": 5, "total": 5, "best": pytest.approx(best)}
    assert card["family"] == "gam" and card["random_state"] == 42 and card["filter"] is None
    assert len(card["trials"]) == 5 and {t["family"] for t in card["trials"]} == {"gam"}


@pytest.mark.parametrize("path", ["/v1/jobs/{id}", "/v1/models/{id}", "/v1/datasets/{id}"])
def test_unknown_ids_are_404(client, path):
    _problem(client.get(path.format(id=uuid.uuid4())), 404)


def test_malformed_id_is_422(client):
    _problem(client.get("/v1/jobs/not-a-uuid"), 422)


def test_predict_on_unknown_model_is_404(client):
    body = {"dataframe_records": [{"a": 1}]}
    _problem(client.post(f"/v1/models/{uuid.uuid4()}/predict", json=body), 404)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"a,b\n", "no data rows"),
        (b'a,b\n1,"2\n', "EOF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00garbage\xff\xfe", ""),
    ],
)
def test_bad_uploads_are_422_quoting_the_parser(client, content, words):
    before = len(client.get("/v1/datasets").json()["datasets"])
    response = client.post("/v1/datasets", files={"file": ("t.csv", content)})
    problem = _problem(response, 422)
    assert words.lower() in problem["detail"].lower()
    assert problem["errors"][0]["loc"] == ["body", "file"]
    assert len(client.get("/v1/datasets").json()["datasets"]) == before


def test_upload_over_the_limit_is_413_and_stores_nothing(client):
    before = len(client.get("/v1/datasets").json()["datasets"])
    row = b"1,2,3\n"
    content = b"a,b,c\n" + row * (UPLOAD_LIMIT // len(row) + 1)
    _problem(client.post("/v1/datasets", files={"file": ("big.csv", content)}), 413)
    assert len(client.get("/v1/datasets").json()["datasets"]) == before


def test_cancel_of_a_finished_job_is_409(client, fits):
    job = fits["regression"]
    assert job["status"] == "completed"
    _problem(client.post(f"/v1/jobs/{job['job_id']}/cancel"), 409)
    assert client.get(f"/v1/jobs/{job['job_id']}").json() == job


def test_openapi_declares_problem_responses(client):
    spec = client.get("/openapi.json").json()
    fit = spec["paths"]["/v1/reasoning/fit"]["post"]
    assert "422" in fit["responses"] and "202" in fit["responses"]
    assert PROBLEM in fit["responses"]["422"]["content"]
