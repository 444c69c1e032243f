"""Upload -> fit -> poll -> predict through the real REST API, for every task kind."""

from __future__ import annotations

import math

import httpx
import pytest

from tests.integration.service import wait_job

ROWS = [
    {"area_sqm": 72.5, "rooms": 3, "neighborhood": "harbor", "has_garden": False,
     "built_year": 1985, "listed_at": "2023-05-01", "price": 300.0, "segment": "mid"},
    {"area_sqm": None, "rooms": 5, "neighborhood": "never-seen", "has_garden": True,
     "built_year": None, "listed_at": "2024-02-11T10:00:00", "price": 500.0,
     "segment": "premium"},
    {"area_sqm": 40.0, "rooms": 1, "neighborhood": None, "has_garden": None,
     "built_year": 2020, "listed_at": None, "price": 100.0, "segment": "budget"},
]

CASES = {
    "regression": ({"task_kind": "regression", "label_column": "price"}, "linear"),
    "binary": ({"task_kind": "classification", "label_column": "has_garden"}, "xgboost"),
    "multiclass": ({"task_kind": "classification", "label_column": "segment"},
                   "decision_tree"),
}


def _fit(client: httpx.Client, dataset_id: str, task: dict, family: str, **extra) -> dict:
    body = {"dataset_id": dataset_id, "task": task, "model_types": [family],
            "n_hyperopt_steps": 3, **extra}
    response = client.post("/v1/reasoning/fit", json=body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "pending"
    assert accepted["dataset_id"] == dataset_id
    return wait_job(client, accepted["job_id"])


@pytest.fixture(scope="module")
def fitted(client: httpx.Client, houses_dataset: dict) -> dict[str, dict]:
    """One completed job per task kind (the fits are shared by the tests below)."""
    return {
        name: _fit(client, houses_dataset["dataset_id"], task, family)
        for name, (task, family) in CASES.items()
    }


@pytest.mark.parametrize("case", list(CASES))
def test_fit_completes_with_a_full_model_card(client, fitted, houses_dataset, case):
    job = fitted[case]
    assert job["status"] == "completed", job
    assert job["stage"] == "done" and job["progress"] == {"done": 3, "total": 3}
    assert job["kind"] == "reasoning_fit" and job["error"] is None
    assert job["started_at"] and job["finished_at"]
    card = client.get(f"/v1/models/{job['model_id']}").json()
    task, family = CASES[case]
    assert card["family"] == family and card["task"] == task
    assert card["dataset_id"] == houses_dataset["dataset_id"]
    assert len(card["trials"]) == 3 and all(t["score"] is not None for t in card["trials"])
    assert card["hyperparameters"] in [t["params"] for t in card["trials"]]
    rows = card["rows"]
    assert rows["total"] == rows["after_filter"] == 600
    assert rows["train"] + rows["validation"] + rows["test"] <= rows["after_filter"]
    assert task["label_column"] not in {f["name"] for f in card["features"]}
    assert set(card["explanation"]["importance"]) == {f["name"] for f in card["features"]}
    metric = "r2" if case == "regression" else "accuracy"
    assert card["metrics"]["test"][metric] > (0.5 if case != "binary" else 0.0)
    assert card["model_id"] in {m["model_id"] for m in client.get("/v1/models").json()["models"]}


@pytest.mark.parametrize("case", list(CASES))
def test_predict_reasons_sum_to_output(client, fitted, case):
    job = fitted[case]
    label = CASES[case][0]["label_column"]
    rows = [{k: v for k, v in r.items() if k != label} for r in ROWS]
    response = client.post(f"/v1/models/{job['model_id']}/predict",
                           json={"dataframe_records": rows, "top_k": None})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["predictions"]) == len(rows) == len(answer["explanations"])
    for explanation in answer["explanations"]:
        total = explanation["base_value"] + sum(r["contribution"] for r in explanation["reasons"])
        assert math.isclose(total, explanation["output"], abs_tol=1e-6)
        assert len(explanation["reasons"]) == len(rows[0])
    if case == "regression":
        assert [e["output"] for e in answer["explanations"]] == pytest.approx(
            answer["predictions"])
    else:
        assert answer["classes"] and len(answer["probabilities"][0]) == len(answer["classes"])
        for probs, pred in zip(answer["probabilities"], answer["predictions"], strict=True):
            assert sum(probs) == pytest.approx(1.0)
            assert answer["classes"][probs.index(max(probs))] == pred


def test_predict_top_k_and_split_shape(client, fitted):
    model_id = fitted["regression"]["model_id"]
    columns = [k for k in ROWS[0] if k != "price"]
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in ROWS]}
    answer = client.post(f"/v1/models/{model_id}/predict",
                         json={"dataframe_split": split, "top_k": 2}).json()
    records = client.post(f"/v1/models/{model_id}/predict",
                          json={"dataframe_records": [{c: r[c] for c in columns}
                                                      for r in ROWS]}).json()
    assert answer["predictions"] == records["predictions"]
    assert all(len(e["reasons"]) == 2 for e in answer["explanations"])
    assert all(len(e["reasons"]) == 5 for e in records["explanations"])  # the default k
    sizes = [abs(r["contribution"]) for r in records["explanations"][0]["reasons"]]
    assert sizes == sorted(sizes, reverse=True)


def test_predict_names_missing_and_unexpected_columns(client, fitted):
    model_id = fitted["regression"]["model_id"]
    row = {k: v for k, v in ROWS[0].items() if k not in ("price", "rooms")}
    row["colour"] = "blue"
    response = client.post(f"/v1/models/{model_id}/predict", json={"dataframe_records": [row]})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert "rooms" in detail and "colour" in detail


def test_same_request_gives_same_model(client, houses_dataset, fitted):
    task, family = CASES["regression"]
    again = _fit(client, houses_dataset["dataset_id"], task, family)
    first = client.get(f"/v1/models/{fitted['regression']['model_id']}").json()
    second = client.get(f"/v1/models/{again['model_id']}").json()
    assert again["model_id"] != fitted["regression"]["model_id"]
    assert second["hyperparameters"] == first["hyperparameters"]
    assert second["trials"] == first["trials"]
    rows = [{k: v for k, v in r.items() if k != "price"} for r in ROWS]
    predict = [client.post(f"/v1/models/{m}/predict", json={"dataframe_records": rows}).json()
               for m in (first["model_id"], second["model_id"])]
    assert predict[0]["predictions"] == predict[1]["predictions"]


def test_filter_is_applied_and_reported(client, houses_dataset):
    task, _ = CASES["regression"]
    job = _fit(client, houses_dataset["dataset_id"], task, "gam",
               filter={"kind": "cmp", "col": "listed_at", "op": ">=", "value": "2021-01-01"})
    assert job["status"] == "completed", job
    card = client.get(f"/v1/models/{job['model_id']}").json()
    assert 0 < card["rows"]["after_filter"] < card["rows"]["total"]
    assert card["filter"]["col"] == "listed_at"
    assert f"{card['rows']['after_filter']:,} of {card['rows']['total']:,}" in card["summary"]


def test_filter_leaving_too_few_rows_fails_with_the_count(client, houses_dataset):
    task, _ = CASES["regression"]
    job = _fit(client, houses_dataset["dataset_id"], task, "linear",
               filter={"kind": "cmp", "col": "rooms", "op": ">", "value": 8})
    assert job["status"] == "failed"
    assert "rows" in job["message"] and "Traceback" not in job["message"]
    assert job["model_id"] is None
