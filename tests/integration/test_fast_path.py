"""The fast path: no process start on a job's path, no actor on a submit's, and serving
processes ahead of fit processes for the CPU. Speed itself is measured in bench/."""

from __future__ import annotations

import psutil

from actors import FIT_NICENESS
from tests.integration import ray_state
from tests.integration.conftest import REG
from tests.integration.service import submit, wait_for, wait_job

SEARCH = {"task": REG, "model_types": ["xgboost"], "n_hyperopt_steps": 16}
"""Enough trials that the search still runs when the test looks at it."""


def test_a_jobs_trials_run_in_workers_started_before_it(client, houses_dataset, ray_driver):
    body = {"dataset_id": houses_dataset["dataset_id"], **SEARCH}
    first = submit(client, "/v1/reasoning/fit", {**body, "n_hyperopt_steps": 2})
    assert wait_job(client, first)["status"] == "completed"
    before = set(psutil.pids())
    job_id = submit(client, "/v1/reasoning/fit", {**body, "random_state": 1})
    wait_for(client, job_id, lambda j: j["stage"] == "train")
    trial = ray_state.wait_trial()
    assert trial in before, "the trial's worker process was started for this job"
    # Fit processes yield the CPU to the processes serving requests.
    assert psutil.Process(trial).nice() == FIT_NICENESS
    runners = ray_state.processes("PipelineRunner")
    assert runners and {p.nice() for p in runners} == {FIT_NICENESS}
    serving = [*ray_state.processes("ReasoningIngress"),
               *ray_state.processes("ModelPredictor"), *ray_state.processes("JobManager")]
    assert len(serving) >= 3 and {p.nice() for p in serving} == {0}
    assert wait_job(client, job_id)["status"] == "completed"


def test_a_submit_is_answered_while_the_job_manager_cannot_answer(
    client, houses_dataset, ray_driver
):
    manager = ray_state.wait_actor("JobManager", state="ALIVE")
    body = {"dataset_id": houses_dataset["dataset_id"], "task": REG,
            "model_types": ["linear"], "n_hyperopt_steps": 1}
    with ray_state.frozen(manager["Pid"]):
        # A submit that waited on the JobManager would time out here.
        response = client.post("/v1/reasoning/fit", json=body, timeout=10)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        job = client.get(f"/v1/jobs/{job_id}", timeout=10).json()
        assert job["status"] == "pending", job
    # Woken or not, the JobManager finds the job in the store and runs it.
    assert wait_job(client, job_id)["status"] == "completed"
