"""Upload -> fit -> poll -> predict through the real REST API, for every task kind."""

from __future__ import annotations

import math

import httpx
import pytest

from reasoning.synthetic import houses
from tests.integration.conftest import FITS
from tests.integration.service import upload

ROWS = [
    {"area_sqm": 72.5, "rooms": 3, "neighborhood": "harbor", "has_garden": False,
     "built_year": 1985, "listed_at": "2023-05-01", "price": 300.0, "segment": "mid"},
    {"area_sqm": None, "rooms": 5, "neighborhood": "never-seen", "has_garden": True,
     "built_year": None, "listed_at": "2024-02-11T10:00:00", "price": 500.0,
     "segment": "premium"},
    {"area_sqm": 40.0, "rooms": 1, "neighborhood": None, "has_garden": None,
     "built_year": 2020, "listed_at": None, "price": 100.0, "segment": "budget"},
]
CASES = ["regression", "binary", "multiclass"]
"""The session's fits (conftest.FITS) of each task kind."""


@pytest.mark.parametrize("case", CASES)
def test_fit_completes_with_a_full_model_card(client, fits, houses_dataset, case):
    job = fits[case]
    assert job["status"] == "completed", job
    assert job["kind"] == "reasoning_fit" and job["error"] is None
    assert job["started_at"] and job["finished_at"]
    card = client.get(f"/v1/models/{job['model_id']}").json()
    # The best score so far, as the last trial's report left it: the winner's.
    best = min(t["score"] for t in card["trials"])
    assert job["stage"] == "done"
    assert job["progress"] == {"done": 3, "total": 3, "best": pytest.approx(best)}
    request = FITS[case][1]
    assert card["family"] == request["model_types"][0] and card["task"] == request["task"]
    assert card["dataset_id"] == houses_dataset["dataset_id"]
    assert len(card["trials"]) == 3 and all(t["score"] is not None for t in card["trials"])
    assert card["hyperparameters"] in [t["params"] for t in card["trials"]]
    rows = card["rows"]
    assert rows["total"] == rows["after_filter"] == 600
    assert rows["train"] + rows["validation"] + rows["test"] <= rows["after_filter"]
    assert request["task"]["label_column"] not in {f["name"] for f in card["features"]}
    assert set(card["explanation"]["importance"]) == {f["name"] for f in card["features"]}
    test = card["metrics"]["test"]
    if case == "regression":
        assert test["r2"] > 0.9  # price is linear in area but for noise
    elif case == "binary":
        # has_garden is drawn with p = 0.4 and nudges the price: a model that learnt
        # nothing ranks at random (AUC 0.5) and cannot beat the base rate's log loss.
        base_rate_loss = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6))
        assert test["roc_auc"] > 0.6 and test["log_loss"] < base_rate_loss
    else:
        # segment is price cut in three, and price is a column: a tree finds the cuts.
        assert test["accuracy"] > 0.9 and test["f1_macro"] > 0.9
    assert card["model_id"] in {m["model_id"] for m in client.get("/v1/models").json()["models"]}


@pytest.mark.parametrize("case", CASES)
def test_predict_reasons_sum_to_output(client, fits, case):
    job = fits[case]
    label = FITS[case][1]["task"]["label_column"]
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
        assert answer["classes"] and len(answer["probabilities"]) == len(rows)
        assert len(answer["probabilities"][0]) == len(answer["classes"])
        for probs, pred in zip(answer["probabilities"], answer["predictions"], strict=True):
            assert sum(probs) == pytest.approx(1.0)
            assert answer["classes"][probs.index(max(probs))] == pred


def test_a_gam_with_pair_terms_gives_them_as_reasons_on_request(client, fits):
    """The default fit (gam) on the housing table chose pair terms: its card lists them,
    each column's reason holds half of each, and `pairs: true` gives them apart."""
    model_id = fits["defaults"]["model_id"]
    card = client.get(f"/v1/models/{model_id}").json()
    pairs = card["explanation"]["pairs"]
    assert card["hyperparameters"]["n_pairs"] > 0 and pairs, card["hyperparameters"]
    surface = pairs[0]["surface"]
    assert len(surface["contribution"]) == len(surface["x"]) > 1
    rows = [{k: v for k, v in r.items() if k != "price"} for r in ROWS]
    body = {"dataframe_records": rows, "top_k": None}
    halves = client.post(f"/v1/models/{model_id}/predict", json=body).json()
    apart = client.post(f"/v1/models/{model_id}/predict", json={**body, "pairs": True}).json()
    assert apart["predictions"] == halves["predictions"]
    names = {" & ".join(p["columns"]) for p in pairs}
    for split, whole in zip(halves["explanations"], apart["explanations"], strict=True):
        assert all(r["columns"] is None for r in split["reasons"])
        terms = [r for r in whole["reasons"] if r["columns"]]
        assert {r["column"] for r in terms} == names
        for row in (split, whole):
            total = row["base_value"] + sum(r["contribution"] for r in row["reasons"])
            assert math.isclose(total, row["output"], abs_tol=1e-6)


def test_predict_top_k_and_split_shape(client, some_model):
    model_id = some_model["model_id"]
    columns = [k for k in ROWS[0] if k != "price"]
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in ROWS]}
    answer = client.post(f"/v1/models/{model_id}/predict",
                         json={"dataframe_split": split, "top_k": 2}).json()
    records = client.post(f"/v1/models/{model_id}/predict",
                          json={"dataframe_records": [{c: r[c] for c in columns}
                                                      for r in ROWS]}).json()
    assert answer["predictions"] == records["predictions"]
    assert [len(e["reasons"]) for e in answer["explanations"]] == [2] * len(ROWS)
    # the default k
    assert [len(e["reasons"]) for e in records["explanations"]] == [5] * len(ROWS)
    sizes = [abs(r["contribution"]) for r in records["explanations"][0]["reasons"]]
    assert sizes == sorted(sizes, reverse=True)


def test_predict_names_missing_and_unexpected_columns(client, some_model):
    model_id = some_model["model_id"]
    row = {k: v for k, v in ROWS[0].items() if k not in ("price", "rooms")}
    row["colour"] = "blue"
    response = client.post(f"/v1/models/{model_id}/predict", json={"dataframe_records": [row]})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert "rooms" in detail and "colour" in detail


def test_same_request_gives_same_model(client, fits, some_model):
    again = fits["regression again"]  # submitted beside "regression", run at the same time
    first = some_model
    second = client.get(f"/v1/models/{again['model_id']}").json()
    assert again["model_id"] != first["model_id"]
    assert second["hyperparameters"] == first["hyperparameters"]
    assert len(first["trials"]) == 3 and second["trials"] == first["trials"]
    rows = [{k: v for k, v in r.items() if k != "price"} for r in ROWS]
    predict = [client.post(f"/v1/models/{m}/predict", json={"dataframe_records": rows}).json()
               for m in (first["model_id"], second["model_id"])]
    assert len(predict[0]["predictions"]) == len(rows)
    assert predict[0]["predictions"] == predict[1]["predictions"]


def test_a_filter_is_applied_and_reported(client, fits):
    job = fits["filtered"]
    assert job["status"] == "completed", job
    card = client.get(f"/v1/models/{job['model_id']}").json()
    assert 0 < card["rows"]["after_filter"] < card["rows"]["total"]
    assert card["filter"]["col"] == "listed_at"
    assert f"{card['rows']['after_filter']:,} of {card['rows']['total']:,}" in card["summary"]


def test_a_filter_leaving_too_few_rows_fails_with_the_count(fits):
    job = fits["starved"]
    assert job["status"] == "failed"
    assert "rows" in job["message"] and "Traceback" not in job["message"]
    assert job["model_id"] is None


def test_a_parquet_upload_keeps_its_types(client):
    """The same table as CSV and as Parquet registers as the same columns and rows."""
    import io

    frame = houses(200, seed=4)
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    response = client.post("/v1/datasets", files={"file": ("houses.parquet", parquet.getvalue())},
                           data={"name": "houses (parquet)"})
    assert response.status_code == 201, response.text
    from_parquet = response.json()
    from_csv = upload(client, frame, "houses (csv)")
    assert from_parquet["n_rows"] == from_csv["n_rows"] == 200
    assert from_parquet["columns"] == from_csv["columns"]
    assert {c["name"]: c["dtype"] for c in from_parquet["columns"]} == {
        "area_sqm": "float", "rooms": "integer", "neighborhood": "categorical",
        "has_garden": "boolean", "built_year": "integer", "listed_at": "timestamp",
        "price": "float", "segment": "categorical"}
    assert client.get(f"/v1/datasets/{from_parquet['dataset_id']}").json() == from_parquet


def test_the_api_documentation_is_served(service):
    spec = httpx.get(f"{service.url}/openapi.json").json()
    assert "/v1/reasoning/fit" in spec["paths"]
    for page in ("/docs", "/redoc"):
        response = httpx.get(f"{service.url}{page}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/html")
        assert "/openapi.json" in response.text
