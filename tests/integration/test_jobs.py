"""Jobs under cancel, the running-job limit and load, and a runner that cannot start.

Jobs are held in place without burning CPU: by an HTTP teacher that answers only when
the test opens its gate, or by freezing (SIGSTOP) a trial's process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from reasoning.service.stores import Stores
from reasoning.synthetic import houses
from tests.integration import ray_state
from tests.integration.conftest import PENDING_CAP, REG
from tests.integration.service import TERMINAL, submit, upload, wait_for, wait_job
from tests.teacher_server import TeacherServer

MAX_RUNNING = 2
"""The service's default running-job limit, which the test service keeps."""


def _body(dataset: dict, **extra) -> dict:
    return {"dataset_id": dataset["dataset_id"], "task": REG, "model_types": ["linear"],
            "n_hyperopt_steps": 1, **extra}


@pytest.fixture
def gated() -> Iterator[TeacherServer]:
    """A teacher whose /gated/predict holds every call until the test opens the gate."""
    server = TeacherServer()
    yield server
    server.gate.set()
    server.close()


def test_cancel_stops_a_running_job(client, houses_dataset, ray_driver):
    job_id = submit(client, "/v1/reasoning/fit",
                    _body(houses_dataset, model_types=["xgboost"], n_hyperopt_steps=16))
    wait_for(client, job_id, lambda j: j["stage"] == "train")
    trial = ray_state.wait_trial()
    with ray_state.frozen(trial):  # the search cannot end before the cancel
        response = client.post(f"/v1/jobs/{job_id}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "failed"
    job = wait_job(client, job_id)
    assert job["status"] == "failed" and "cancel" in job["message"]
    assert job["model_id"] is None
    # The cancelled trials gave their CPUs back.
    ray_state.nothing_held()
    # Terminal states never change, whatever the cancelled pipeline did meanwhile.
    assert client.get(f"/v1/jobs/{job_id}").json() == job


def test_the_running_job_limit_queues_jobs_and_a_pending_job_can_be_cancelled(
    client, houses_dataset, gated
):
    held = [submit(client, "/v1/reasoning/fit",
                   _body(houses_dataset, teacher_predict_url=f"{gated.url}/gated/predict",
                         random_state=i)) for i in range(MAX_RUNNING)]
    for job_id in held:
        wait_for(client, job_id, lambda j: j["status"] == "running")
    # Every slot is taken: more jobs wait (the JobManager starts a job as it accepts it
    # when a slot is free, so "pending" right after the submit means it found none).
    queued, cancelled = (submit(client, "/v1/reasoning/fit", _body(houses_dataset, random_state=i))
                         for i in (10, 11))
    assert client.get(f"/v1/jobs/{queued}").json()["status"] == "pending"
    response = client.post(f"/v1/jobs/{cancelled}/cancel")
    assert response.status_code == 200, response.text
    was_cancelled = client.get(f"/v1/jobs/{cancelled}").json()
    assert was_cancelled["status"] == "failed"
    assert was_cancelled["message"] == "cancelled by request"
    assert was_cancelled["attempts"] == 0 and was_cancelled["started_at"] is None  # never ran

    # A freed slot goes to the queued job, not to the cancelled one.
    assert client.post(f"/v1/jobs/{held[0]}/cancel").status_code == 200
    wait_for(client, queued, lambda j: j["status"] != "pending")
    assert client.get(f"/v1/jobs/{held[1]}").json()["status"] == "running"
    for job_id in (queued, held[1]):
        client.post(f"/v1/jobs/{job_id}/cancel")
    assert client.get(f"/v1/jobs/{cancelled}").json() == was_cancelled
    for job_id in (*held, queued):
        assert wait_job(client, job_id)["message"] == "cancelled by request"


def test_a_runner_that_cannot_start_fails_its_job_saying_why(service, tmp_path, ray_driver):
    """A JobManager of the test's own, whose stores name an artifact store no runner can
    open: its runners' processes cannot start, and a job given to one fails at once,
    quoting the error."""
    import dataclasses

    import ray

    from actors import NAMESPACE
    from actors.job_manager import JobManager

    stores = Stores.resolve(tmp_path / "home")
    stores.upgrade()
    broken = dataclasses.replace(stores, artifacts="gs://bucket/nowhere")
    name = f"test-manager-{uuid.uuid4().hex[:8]}"
    manager = ray.remote(JobManager).options(
        name=name, namespace=NAMESPACE, num_cpus=0, max_concurrency=8).remote(
        broken, 1, None, name)
    try:
        job_id = str(uuid.uuid4())
        request = {"dataset_id": str(uuid.uuid4()), "task": REG, "model_types": ["linear"],
                   "n_hyperopt_steps": 1}
        ray.get(manager.submit.remote(job_id, "reasoning_fit", request, "alpha"))
        job = ray_state.wait_until("the job to fail", lambda: (
            j if (j := ray.get(manager.get.remote(job_id))).status == "failed" else None))
        assert job.message.startswith("failed: could not start the pipeline: ")
        assert "ValueError: artifact store 'gs://bucket/nowhere'" in job.message
        assert job.attempts == 1  # a constructor that fails would fail again: no retries
    finally:
        for actor in ray_state.actors("PipelineRunner"):
            if actor["Name"].startswith(f"{name}:"):
                ray.kill(ray.get_actor(actor["Name"], namespace=NAMESPACE))
        ray.kill(manager)


def test_health_is_answered_while_fits_run(service, client, houses_dataset):
    """/healthz is called all the while two searches fill both CPUs; a blocked event loop
    (or serving starved by the fits) would show as a timeout here."""
    body = _body(houses_dataset, model_types=["xgboost"], n_hyperopt_steps=24)
    job_ids = [submit(client, "/v1/reasoning/fit", {**body, "random_state": i}) for i in (1, 2)]
    health, while_training = [], 0
    while True:
        stages = [client.get(f"/v1/jobs/{j}").json() for j in job_ids]
        if all(job["status"] in TERMINAL for job in stages):
            break
        health.append(httpx.get(f"{service.url}/healthz", timeout=5).status_code)
        while_training += any(job["stage"] == "train" for job in stages)
        time.sleep(0.05)
    # Asked while trials held the CPUs (how often depends on this machine's speed).
    assert while_training >= 3 and set(health) == {200}, (while_training, health)
    assert all(wait_job(client, j)["status"] == "completed" for j in job_ids)


def test_jobs_list_shows_the_tenants_jobs(client, fits):
    listed = {j["job_id"] for j in client.get("/v1/jobs").json()["jobs"]}
    assert {job["job_id"] for job in fits.values()} <= listed
    completed = client.get("/v1/jobs", params={"status": "completed"}).json()["jobs"]
    assert fits["regression"]["job_id"] in {j["job_id"] for j in completed}
    assert {j["status"] for j in completed} == {"completed"}


def test_idempotency_key_gives_the_same_job_for_the_same_body(client, houses_dataset):
    body = _body(houses_dataset)
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

    without_key = client.post("/v1/reasoning/fit", json=body).json()["job_id"]
    assert without_key != first.json()["job_id"]
    for job_id in (first.json()["job_id"], without_key):  # only the ids mattered
        client.post(f"/v1/jobs/{job_id}/cancel")
        assert wait_job(client, job_id)["status"] in ("completed", "failed")


def upload_houses(http: httpx.Client) -> dict:
    return upload(http, houses(300, seed=3), "houses")


def _hold_both_slots(client, dataset: dict, gated: TeacherServer) -> list[str]:
    """Two jobs of TENANT that run until the gate opens: every runner is taken."""
    held = [submit(client, "/v1/reasoning/fit",
                   _body(dataset, teacher_predict_url=f"{gated.url}/gated/predict",
                         random_state=100 + i)) for i in range(MAX_RUNNING)]
    for job_id in held:
        wait_for(client, job_id, lambda j: j["status"] == "running")
    return held


def test_the_queue_takes_turns_across_tenants(client, other_client, houses_dataset, gated):
    held = _hold_both_slots(client, houses_dataset, gated)
    mine = [submit(client, "/v1/reasoning/fit", _body(houses_dataset, random_state=200 + i))
            for i in range(3)]
    other_dataset = upload_houses(other_client)
    theirs = submit(other_client, "/v1/reasoning/fit", _body(other_dataset, random_state=300))
    # One slot frees: the other tenant's job, submitted last, goes before my second and
    # third (my running job is my turn already), and before my first as well.
    assert client.post(f"/v1/jobs/{held[0]}/cancel").status_code == 200
    assert wait_job(other_client, theirs)["status"] == "completed"
    client.post(f"/v1/jobs/{held[1]}/cancel")
    done = [wait_job(client, job_id) for job_id in mine]
    started = {job["job_id"]: job["started_at"] for job in done}
    their_start = other_client.get(f"/v1/jobs/{theirs}").json()["started_at"]
    assert all(their_start < started[job_id] for job_id in mine), (their_start, started)


def test_a_tenants_waiting_jobs_are_capped(client, other_client, houses_dataset, gated):
    _hold_both_slots(client, houses_dataset, gated)
    dataset = upload_houses(other_client)
    waiting = [submit(other_client, "/v1/reasoning/fit",
                      _body(dataset, random_state=400 + i), **{"Idempotency-Key": f"w{i}"})
               for i in range(PENDING_CAP)]
    try:
        over = other_client.post("/v1/reasoning/fit", json=_body(dataset, random_state=999))
        assert over.status_code == 429, over.text
        assert f"at most {PENDING_CAP} may wait" in over.json()["detail"]
        assert int(over.headers["retry-after"]) > 0
        # A retry of a job already made makes nothing new: it is answered as before.
        again = other_client.post("/v1/reasoning/fit", json=_body(dataset, random_state=400),
                                  headers={"Idempotency-Key": "w0"})
        assert again.status_code == 202 and again.json()["job_id"] == waiting[0]
        # Another tenant's queue is its own.
        assert submit(client, "/v1/reasoning/fit", _body(houses_dataset, random_state=998))
    finally:
        for job_id in waiting:
            other_client.post(f"/v1/jobs/{job_id}/cancel")
        for job in client.get("/v1/jobs", params={"status": "pending"}).json()["jobs"]:
            client.post(f"/v1/jobs/{job['job_id']}/cancel")
        for job in client.get("/v1/jobs", params={"status": "running"}).json()["jobs"]:
            client.post(f"/v1/jobs/{job['job_id']}/cancel")


def test_a_tenants_running_cap_and_the_time_limit(tmp_path, gated, ray_driver):
    """A JobManager of the test's own, on stores of its own (the service's JobManager would
    take the jobs too), with two runners, one job per tenant at a time, and two seconds per
    attempt: jobs held by a gated teacher."""
    import ray

    from actors import NAMESPACE
    from actors.job_manager import JobManager
    from reasoning.distill import DistillOptions
    from reasoning.service.jobs import JobLimits

    stores = Stores.resolve(tmp_path / "home")
    stores.upgrade()
    tenant = "alpha"
    dataset = stores.datasets().add(houses(300, seed=3), "houses", tenant)
    name = f"test-manager-{uuid.uuid4().hex[:8]}"
    manager = ray.remote(JobManager).options(
        name=name, namespace=NAMESPACE, num_cpus=0, max_concurrency=8).remote(
        stores, 2, DistillOptions(teacher_allow="127.0.0.1/32"), name,
        JobLimits(running_per_tenant=1, time_limit=2.0))
    try:
        request = {**_body({"dataset_id": str(dataset.dataset_id)}),
                   "teacher_predict_url": f"{gated.url}/gated/predict"}
        first, second, theirs = (str(uuid.uuid4()) for _ in range(3))
        ray.get(manager.submit.remote(first, "reasoning_fit", request, tenant))
        ray.get(manager.submit.remote(second, "reasoning_fit", request, tenant))
        ray.get(manager.submit.remote(theirs, "reasoning_fit", request, "someone-else"))

        def job(job_id: str):
            return ray.get(manager.get.remote(job_id))

        ray_state.wait_until("two jobs running", lambda: (
            job(first).status == job(theirs).status == "running") or None)
        assert job(second).status == "pending"  # its tenant is at its cap, a runner is not
        ended = ray_state.wait_until("the first job to end", lambda: (
            j if (j := job(first)).status == "failed" else None))
        assert "longer than its time limit of 2 s" in ended.message
        ray_state.wait_until("the second job to run", lambda: (
            job(second).status != "pending") or None)
        assert job(second).attempts == 1
    finally:
        gated.gate.set()
        for actor in ray_state.actors("PipelineRunner"):
            if actor["Name"].startswith(f"{name}:"):
                ray.kill(ray.get_actor(actor["Name"], namespace=NAMESPACE))
        ray.kill(manager)
