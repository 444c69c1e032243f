"""Distillation end to end through the REST API: every teacher kind, round trips, faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.datasets import make_friedman1
from sqlalchemy import select

from reasoning.service import database
from tests.integration import ray_state
from tests.integration.conftest import FITS, REG
from tests.integration.service import Service, submit, upload, wait_job
from tests.teacher_server import TeacherServer


@pytest.fixture(scope="module")
def teacher_server() -> Iterator[TeacherServer]:
    server = TeacherServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def friedman_dataset(client: httpx.Client) -> dict:
    X, y = make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, 11)]).assign(y=y)
    return upload(client, frame, "friedman")


def _card(client: httpx.Client, job: dict) -> dict:
    assert job["status"] == "completed", job
    return client.get(f"/v1/models/{job['model_id']}").json()


def _own_token(client: httpx.Client) -> dict[str, str]:
    return {"authorization": client.headers["authorization"]}


def _log_count(service: Service, needle: str) -> int:
    """Lines naming `needle` in the service's log and in Serve's own request logs."""
    logs = [service.log, *Path(service.info["ray_logs"]).glob("serve/*.log")]
    return sum(p.read_text(errors="replace").count(needle) for p in logs)


@pytest.fixture(scope="module")
def same_server_teacher(client: httpx.Client, fits: dict[str, dict]) -> dict:
    """The session's model trained by /v1/models/fit, searched over two families."""
    return _card(client, fits["teacher"])


@pytest.fixture(scope="module")
def canary() -> Iterator[TeacherServer]:
    """A teacher on 127.0.0.2, which the test service's allow-list (127.0.0.1) leaves out."""
    server = TeacherServer("127.0.0.2")
    yield server
    server.close()


@pytest.fixture(scope="module")
def jobs(client, service, houses_dataset, friedman_dataset, fits, same_server_teacher,
         teacher_server) -> dict[str, dict]:
    """The module's distillations, submitted together and awaited together (none of them
    calls this service's own /invocations, which one test counts): name -> finished job."""
    houses, friedman = houses_dataset["dataset_id"], friedman_dataset["dataset_id"]
    one = {"task": REG, "model_types": ["linear"], "n_hyperopt_steps": 1}
    bodies: dict[str, tuple[str, dict, dict]] = {
        "same server": ("/v1/reasoning/fit", {
            "dataset_id": houses, "task": REG, "model_types": ["gam"], "n_hyperopt_steps": 2,
            "teacher_model_id": same_server_teacher["model_id"]}, {}),
        "headers": ("/v1/reasoning/fit", {
            "dataset_id": houses, **one, "n_hyperopt_steps": 2,
            "teacher_predict_url": f"{teacher_server.url}/price/predict",
            "teacher_predict_headers": {"x-api-key": "secret-123"}},
            # The caller's own credentials come along with the request; they stay here.
            {"refresh-token": "rrt_not.forwarded"}),
        "classification": ("/v1/reasoning/fit", {
            "dataset_id": houses, "task": FITS["multiclass"][1]["task"], "model_types": ["gam"],
            "n_hyperopt_steps": 1, "teacher_model_id": fits["multiclass"]["model_id"]}, {}),
        "diffmodel": ("/v1/reasoning/fit", {
            "dataset_id": friedman, "task": {"task_kind": "regression", "label_column": "y"},
            "model_types": ["gam"],
            "teacher_predict_url": f"{teacher_server.url}/friedman/predict",
            "teacher_get_grads_url": f"{teacher_server.url}/friedman/grads"}, {}),
        "mlp": ("/v1/models/fit", {
            "dataset_id": friedman, "task": {"task_kind": "regression", "label_column": "y"},
            "model_types": ["mlp"], "n_hyperopt_steps": 1}, {}),
        # One teacher fault, end to end: the client's fault paths (a refusal in the
        # teacher's words, a redirect to a refused address, ...) are each tested once, in
        # tests/unit/test_teachers.py and test_egress.py.
        "slow": ("/v1/reasoning/fit", {
            "dataset_id": houses, **one,
            "teacher_predict_url": f"{teacher_server.url}/slow/predict"}, {}),
    }
    before = _log_count(service, "/invocations")
    ids = {name: submit(client, path, body, **headers)
           for name, (path, body, headers) in bodies.items()}
    done = {name: wait_job(client, job_id) for name, job_id in ids.items()}
    done["/invocations logged"] = {"before": before, "after": _log_count(service, "/invocations")}
    return done


def test_models_fit_spreads_trials_across_families(same_server_teacher):
    card = same_server_teacher
    assert card["kind"] == "model_fit"
    assert [t["family"] for t in card["trials"]] == ["xgboost"] * 2 + ["random_forest"] * 2
    best = min(card["trials"], key=lambda t: t["score"])
    assert card["family"] == best["family"] and card["hyperparameters"] == best["params"]


def test_distill_from_a_same_server_model_opens_no_socket(client, jobs, same_server_teacher):
    card = _card(client, jobs["same server"])
    nodes = card["teacher"].pop("synth_gen_nodes")
    assert card["teacher"] == {"kind": "model", "model_id": same_server_teacher["model_id"]}
    assert len(nodes) == 1  # one host: both shards ran on it
    metrics = card["metrics"]
    assert metrics["fidelity"]["r2"] > 0.8
    # The same family fitted on the labels alone, measured the same way, for comparison.
    assert set(metrics["label_only"]) == set(metrics["test"]) == {"rmse", "mae", "r2"}
    assert metrics["label_only"]["r2"] > 0.5 and metrics["test"]["r2"] > 0.5
    assert "price" not in {f["name"] for f in card["features"]}
    assert "synthetic rows" in card["summary"]
    # No HTTP on this path: the service's scoring routes were not called while it ran.
    logged = jobs["/invocations logged"]
    assert logged["after"] == logged["before"]


def test_distill_through_the_models_own_invocations_url(
    client, service, houses_dataset, same_server_teacher, jobs
):
    url = f"{service.url}/v1/models/{same_server_teacher['model_id']}/invocations"
    before = _log_count(service, "/invocations")
    job = wait_job(client, submit(client, "/v1/reasoning/fit", {
        "dataset_id": houses_dataset["dataset_id"], "task": REG, "model_types": ["linear"],
        # A query value may be a credential: the card shows the URL without it.
        "n_hyperopt_steps": 1, "teacher_predict_url": f"{url}?api_key=not-for-the-card",
        # This service wants a token: the caller lends its own, as for any teacher.
        "teacher_predict_headers": _own_token(client),
    }))
    card = _card(client, job)
    assert card["teacher"].pop("synth_gen_nodes")
    assert card["teacher"] == {"kind": "url", "url": f"{url}?api_key=***"}
    assert card["metrics"]["fidelity"]["r2"] > 0.8
    assert _log_count(service, "/invocations") > before


def test_external_teacher_gets_its_headers_and_no_record_keeps_them(
    client, service, jobs, teacher_server
):
    card = _card(client, jobs["headers"])
    seen = [r for r in teacher_server.requests if r["path"] == "/price/predict"]
    assert len(seen) == teacher_server.count("/price/predict") > 0
    for request in seen:
        names = {k.lower() for k in request["headers"]}
        assert request["headers"].get("x-api-key") == "secret-123"
        assert not names & {"authorization", "refresh-token"}, names
    assert "secret-123" not in str(card)
    # The job's record holds the headers sealed with the service's key, not in plain text;
    # no log (the service's, or any of Ray's: workers, raylet, Serve) mentions them.
    with service.stores.engine().connect() as db:
        stored = repr(db.execute(select(database.jobs)).all())
    assert "x-api-key" in stored and "secret-123" not in stored
    assert "secret-123" not in service.log.read_text(errors="replace")
    assert ray_state.log_files(service.info["ray_logs"])
    assert ray_state.logs_mention(service.info["ray_logs"], "secret-123") == []
    # The rule is linear in area: a distilled linear student reproduces it closely.
    assert card["metrics"]["fidelity"]["r2"] > 0.95


def test_classification_distillation_reports_agreement(client, jobs, fits):
    teacher = _card(client, fits["multiclass"])  # a decision tree on segment
    card = _card(client, jobs["classification"])
    assert card["classes"] == teacher["classes"] == ["budget", "mid", "premium"]
    fidelity = card["metrics"]["fidelity"]
    assert set(fidelity) == {"agreement", "mean_kl"}
    # A close student: agrees on most rows, and its probabilities are near the teacher's.
    assert fidelity["agreement"] > 0.8 and 0 <= fidelity["mean_kl"] < 0.5
    assert card["metrics"]["test"]["accuracy"] > 0.8


def test_diffmodel_teacher_skips_synth_gen_and_search(client, jobs):
    card = _card(client, jobs["diffmodel"])
    assert card["trials"] == [] and card["teacher"]["kind"] == "diffmodel"
    fidelity = card["metrics"]["fidelity"]
    assert fidelity["r2"] > 0.8 and fidelity["gradient_cosine"] > 0.8
    assert "Sobolev" in card["summary"]


def test_an_mlp_on_this_server_is_a_diffmodel_teacher(client, service, friedman_dataset, jobs):
    teacher = _card(client, jobs["mlp"])
    base = f"{service.url}/v1/models/{teacher['model_id']}"
    card = _card(client, wait_job(client, submit(client, "/v1/reasoning/fit", {
        "dataset_id": friedman_dataset["dataset_id"], "task": teacher["task"],
        "model_types": ["linear"],
        "teacher_predict_url": f"{base}/invocations", "teacher_get_grads_url": f"{base}/grads",
        "teacher_predict_headers": _own_token(client),
    })))
    assert card["metrics"]["fidelity"]["gradient_cosine"] > 0.5


def test_a_teacher_fault_fails_the_job_in_the_teacher_clients_words(jobs):
    # The service's teacher settings reach the pipeline (REASONING_TEACHER_TIMEOUT=2).
    job = jobs["slow"]
    assert job["status"] == "failed", job
    assert "no answer within 2 s" in job["message"] and "Traceback" not in job["message"]


def test_invocations_accepts_mlflow_shapes(client, same_server_teacher):
    model_id = same_server_teacher["model_id"]
    row = {"area_sqm": 80.0, "rooms": 3, "neighborhood": "harbor", "has_garden": True,
           "built_year": 1990, "listed_at": "2022-01-01", "segment": "mid"}
    split = {"columns": list(row), "data": [list(row.values())]}
    answers = [
        client.post(f"/v1/models/{model_id}/invocations", json=body).json()
        for body in ({"dataframe_split": split}, {"dataframe_records": [row]},
                     {"instances": [row]})
    ]
    assert answers[0] == answers[1] == answers[2]
    assert len(answers[0]["predictions"]) == 1 and isinstance(answers[0]["predictions"][0], float)


def test_grads_needs_a_differentiable_family(client, same_server_teacher):
    body = {"dataframe_records": [{"area_sqm": 80.0}]}
    response = client.post(f"/v1/models/{same_server_teacher['model_id']}/grads", json=body)
    assert response.status_code == 422 and "not differentiable" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0:8000/p",
        "http://[::1]:8000/p",
        "http://[::ffff:10.0.0.1]:8000/p",
        "http://10.0.0.7/p",
        "ftp://teacher.example/p",
    ],
)
def test_teacher_urls_to_forbidden_addresses_are_refused_at_submit(client, houses_dataset, url):
    response = client.post("/v1/reasoning/fit", json={
        "dataset_id": houses_dataset["dataset_id"], "task": REG, "teacher_predict_url": url,
    })
    assert response.status_code == 422, response.text
    assert ["body", "teacher_predict_url"] in [e["loc"] for e in response.json()["errors"]]


def test_a_teacher_outside_the_allow_list_is_refused_at_submit(client, houses_dataset, canary):
    # A literal address outside the allow-list is refused at submit; at connection time
    # (a name resolving there, a redirect to it) the client refuses it too, tested in
    # tests/unit/test_egress.py.
    refused = client.post("/v1/reasoning/fit", json={
        "dataset_id": houses_dataset["dataset_id"], "task": REG,
        "teacher_predict_url": f"{canary.url}/price/predict"})
    assert refused.status_code == 422 and "127.0.0.2" in refused.json()["detail"]
    assert canary.count() == 0
