"""Jobs under cancel, load and the JobManager's death, on the real service."""

from __future__ import annotations

import httpx

from tests.integration.service import wait_for, wait_job

SLOW_FIT = {
    "task": {"task_kind": "regression", "label_column": "price"},
    "model_types": ["xgboost"],
    "n_hyperopt_steps": 24,  # a train stage of several seconds, to act on mid-job
}


def _submit(client: httpx.Client, dataset: dict, **extra) -> str:
    body = {"dataset_id": dataset["dataset_id"], **SLOW_FIT, **extra}
    response = client.post("/v1/reasoning/fit", json=body)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def _training(job: dict) -> bool:
    return job["status"] == "running" and job["stage"] == "train"


def test_cancel_stops_a_running_job(client, houses_dataset):
    job_id = _submit(client, houses_dataset)
    wait_for(client, job_id, _training)
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    job = wait_job(client, job_id)
    assert job["status"] == "failed" and "cancel" in job["message"]
    assert job["model_id"] is None
    # The cancelled trials gave their CPUs back: the next fit runs to the end.
    again = wait_job(client, _submit(client, houses_dataset, n_hyperopt_steps=2))
    assert again["status"] == "completed", again
    # Terminal states never change, whatever the cancelled pipeline did meanwhile.
    assert client.get(f"/v1/jobs/{job_id}").json() == job


def test_health_is_answered_while_a_fit_runs(client, service, houses_dataset):
    job_id = _submit(client, houses_dataset)
    wait_for(client, job_id, _training)
    answers = []
    while client.get(f"/v1/jobs/{job_id}").json()["status"] not in ("completed", "failed"):
        # A blocked event loop would show as a timeout here.
        answers.append(httpx.get(f"{service.url}/healthz", timeout=5).status_code)
    assert answers and set(answers) == {200}
    assert wait_job(client, job_id)["status"] == "completed"


def test_job_survives_the_death_of_the_job_manager(client, houses_dataset, ray_driver):
    import ray

    from actors import JOB_MANAGER_NAME, NAMESPACE

    job_id = _submit(client, houses_dataset, random_state=7)
    wait_for(client, job_id, _training)
    manager = ray.get_actor(JOB_MANAGER_NAME, namespace=NAMESPACE)
    ray.kill(manager, no_restart=False)
    # Ray restarts it; the new instance reloads SQLite and reattaches to the job's runner.
    assert ray.get(manager.ping.remote(), timeout=60) == "ok"
    job = wait_job(client, job_id)
    assert job["status"] == "completed", job
    assert job["attempts"] == 1  # the running attempt was kept, not started over
    assert job["progress"] == {"done": 24, "total": 24}
    assert client.get(f"/v1/models/{job['model_id']}").status_code == 200
    # Everything the job held was given back: a new fit still gets its trials run.
    again = wait_job(client, _submit(client, houses_dataset, n_hyperopt_steps=2))
    assert again["status"] == "completed", again


def test_jobs_list_shows_submitted_jobs(client, houses_dataset):
    job_id = _submit(client, houses_dataset, n_hyperopt_steps=1, model_types=["linear"])
    listed = client.get("/v1/jobs").json()["jobs"]
    assert job_id in {j["job_id"] for j in listed}
    assert wait_job(client, job_id)["status"] == "completed"
    completed = client.get("/v1/jobs", params={"status": "completed"}).json()["jobs"]
    assert job_id in {j["job_id"] for j in completed}
    assert {j["status"] for j in completed} == {"completed"}


def test_idempotency_key_gives_the_same_job_for_the_same_body(client, houses_dataset):
    body = {"dataset_id": houses_dataset["dataset_id"], "n_hyperopt_steps": 1,
            "task": {"task_kind": "regression", "label_column": "price"},
            "model_types": ["linear"]}
    key = {"Idempotency-Key": "retry-me-1"}
    first = client.post("/v1/reasoning/fit", json=body, headers=key)
    # The same body spelled differently (a default made explicit) is the same request.
    again = client.post("/v1/reasoning/fit", json={**body, "random_state": 42}, headers=key)
    assert first.status_code == again.status_code == 202, again.text
    assert again.json()["job_id"] == first.json()["job_id"]

    changed = client.post("/v1/reasoning/fit", json={**body, "n_hyperopt_steps": 2},
                          headers=key)
    assert changed.status_code == 422
    assert "idempotency-key" in str(changed.json()["errors"][0]["loc"]).lower()
    assert first.json()["job_id"] in changed.json()["detail"]
    # The key is the same route's: another kind of job under it is another request too.
    other_route = client.post("/v1/models/fit", json=body, headers=key)
    assert other_route.status_code == 422

    assert client.post("/v1/reasoning/fit", json=body).json()["job_id"] != first.json()["job_id"]
    wait_job(client, first.json()["job_id"])
