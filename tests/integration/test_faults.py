"""Jobs under faults: killing any process of a running job settles the job, never leaves it
`running`, and gives back everything it held.

Each test pins the moment of the kill instead of racing the job: a distillation whose
TeacherModel process is frozen (SIGSTOP) waits in synth-gen while the test acts (the
test waits until the frozen teacher has unread calls, so synth-gen has surely called
it), a frozen trial holds the search, or an HTTP teacher holds its callers until the test
opens its gate. After each fault no placement group is left and every CPU is free; the
last test's fresh jobs show that work still runs after all of them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import ray

from tests.integration import ray_state
from tests.integration.conftest import REG
from tests.integration.service import Service, submit, wait_for, wait_job
from tests.teacher_server import TeacherServer

SMALL = {"task": REG, "model_types": ["linear"], "n_hyperopt_steps": 1}
SHARD = "_synth_gen_shard"
"""The synth-gen task, as Ray titles the process running it (`ray::_synth_gen_shard`)."""


def _submit(client: httpx.Client, dataset: dict, path: str = "/v1/reasoning/fit",
            **body: Any) -> str:
    return submit(client, path, {"dataset_id": dataset["dataset_id"], **SMALL, **body})


def _settled(client: httpx.Client, job_id: str) -> dict:
    """The job's end; wait_job fails the test if it stays pending or running."""
    return wait_job(client, job_id, timeout=120)


@pytest.fixture(scope="module")
def teacher_model_id(fits: dict[str, dict]) -> str:
    """A model fitted on this server, to distil from through a TeacherModel actor."""
    assert fits["teacher"]["status"] == "completed", fits["teacher"]
    return fits["teacher"]["model_id"]


@contextmanager
def _frozen_teacher(service: Service, model_id: str) -> Iterator[dict[str, Any]]:
    """The TeacherModel actor the job's synth-gen shards will call, started now and frozen
    (its actor-table entry is yielded); thawed on the way out unless the test killed it."""
    from actors.teacher import teacher_model

    teacher_model(model_id, service.stores)
    teacher = ray_state.wait_actor("TeacherModel", f"teacher:{model_id}", "ALIVE")
    with ray_state.frozen(teacher["Pid"]):
        yield teacher


def _teacher_called(teacher: dict[str, Any], since: int) -> int:
    """Wait until callers have sent the frozen teacher more than `since` unread bytes."""
    return ray_state.wait_until(
        "the frozen teacher to be called",
        lambda: (n := ray_state.unread_call_bytes(teacher)) > since and n)


def _kill_a_shard_and_wait_for_its_retry(teacher: dict[str, Any]) -> int:
    """Kill the process of a running synth-gen shard; return the process of its retry,
    once that has called the (frozen) teacher."""
    running = set(ray_state.wait_until(
        "a running synth-gen shard", lambda: ray_state.task_processes(SHARD)))
    unread = ray_state.unread_call_bytes(teacher)
    os.kill(min(running), signal.SIGKILL)
    again = ray_state.wait_until("the shard's retry", lambda: sorted(
        set(ray_state.task_processes(SHARD)) - running))[0]
    _teacher_called(teacher, unread)
    return again


def _distill_mid_synth_gen(client: httpx.Client, dataset: dict, teacher_id: str,
                           teacher: dict[str, Any]) -> str:
    """Submit a distillation and return once its synth-gen shards have called the teacher."""
    before = ray_state.unread_call_bytes(teacher)
    job_id = _submit(client, dataset, teacher_model_id=teacher_id)
    wait_for(client, job_id, lambda j: j["stage"] == "synth_gen", timeout=60)
    _teacher_called(teacher, before)
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
    return job_id


def test_killing_the_job_manager_a_synth_gen_and_the_teacher_mid_job(
    client, service, houses_dataset, teacher_model_id, ray_driver
):
    """Three faults one job survives, one after the other while it waits in synth-gen."""
    import ray

    from actors import JOB_MANAGER_NAME, NAMESPACE

    with _frozen_teacher(service, teacher_model_id) as teacher:
        job_id = _distill_mid_synth_gen(client, houses_dataset, teacher_model_id, teacher)
        # The JobManager: Ray restarts it; it reloads the job store and reattaches to the
        # runner that holds the attempt.
        manager = ray.get_actor(JOB_MANAGER_NAME, namespace=NAMESPACE)
        ray.kill(manager, no_restart=False)
        assert ray.get(manager.ping.remote(), timeout=60) == "ok"
        # A synth-gen shard's worker: Ray runs the shard again on another (seeded: the
        # same rows), which calls the teacher again.
        _kill_a_shard_and_wait_for_its_retry(teacher)
        # The TeacherModel, mid-predict: Ray restarts it (detached, max_restarts=-1) and
        # the calls are made again.
        os.kill(teacher["Pid"], signal.SIGKILL)
    job = _settled(client, job_id)
    assert job["status"] == "completed", job
    assert job["attempts"] == 1  # the attempt that was running went on
    # ... and its reports reached the new JobManager: the trials were counted.
    # (done == total is also what completing sets; the best score comes with a report,
    # which may have been the one lost while the JobManager restarted.)
    assert job["progress"]["done"] == job["progress"]["total"] == 1
    restarted = ray_state.wait_actor("TeacherModel", f"teacher:{teacher_model_id}", "ALIVE")
    assert restarted["ActorID"] == teacher["ActorID"] and restarted["Pid"] != teacher["Pid"]
    ray_state.nothing_held()


def test_a_synth_gen_shard_lost_twice_fails_the_job(
    client, service, houses_dataset, teacher_model_id, ray_driver
):
    with _frozen_teacher(service, teacher_model_id) as teacher:
        job_id = _distill_mid_synth_gen(client, houses_dataset, teacher_model_id, teacher)
        # Run once more; the shard runs again and calls the teacher again ...
        again = _kill_a_shard_and_wait_for_its_retry(teacher)
        # ... and a second death is one too many.
        os.kill(again, signal.SIGKILL)
    job = _settled(client, job_id)  # once the other shard got its answers
    assert job["status"] == "failed", job
    assert job["message"].startswith("failed: a synth-gen worker was lost")
    assert job["attempts"] == 1 and job["model_id"] is None
    ray_state.nothing_held()


def test_killing_a_trial_worker_mid_search(client, houses_dataset, ray_driver):
    # Enough trials that the search is still running when the test finds one.
    job_id = _submit(client, houses_dataset, model_types=["xgboost"], n_hyperopt_steps=16)
    wait_for(client, job_id, lambda j: j["stage"] == "train", timeout=60)
    killed = ray_state.wait_trial()
    os.kill(killed, signal.SIGKILL)
    job = _settled(client, job_id)
    assert job["status"] == "completed", job
    # Ray ran the lost trial once more on another worker: every trial has its score.
    assert killed not in ray_state.task_processes("_trial")
    card = client.get(f"/v1/models/{job['model_id']}").json()
    assert len(card["trials"]) == 16
    assert all(t["score"] is not None for t in card["trials"]), card["trials"]
    ray_state.nothing_held()


def test_killing_the_pipeline_runner_mid_search(client, houses_dataset, ray_driver):
    """The trials a dead runner owned must not go on holding the CPUs."""
    job_id = _submit(client, houses_dataset, model_types=["xgboost"], n_hyperopt_steps=16)
    wait_for(client, job_id, lambda j: j["stage"] == "train", timeout=60)
    runner = ray_state.runner_of(job_id)
    trial = ray_state.wait_trial()
    with ray_state.frozen(trial):  # so the search cannot end before the runner dies
        assert ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]
        os.kill(runner["Pid"], signal.SIGKILL)
    job = _settled(client, job_id)
    # The JobManager starts the attempt over; Ray ended the dead runner's trials ...
    assert job["status"] == "completed", job
    assert job["attempts"] == 2
    ray_state.nothing_held()
    # ... and started the runner again, warm for the next job.
    restarted = ray_state.wait_actor("PipelineRunner", runner["Name"], "ALIVE")
    assert restarted["ActorID"] == runner["ActorID"] and restarted["Pid"] != runner["Pid"]


@pytest.fixture
def gated() -> Iterator[TeacherServer]:
    """A teacher whose /gated/predict holds every call until the test opens the gate."""
    server = TeacherServer()
    yield server
    server.gate.set()
    server.close()


def test_a_runner_lost_at_every_attempt_fails_the_job_at_the_cap(
    client, houses_dataset, gated, ray_driver
):
    import ray

    from actors import JOB_MANAGER_NAME, NAMESPACE
    from actors.job_manager import MAX_ATTEMPTS

    job_id = _submit(client, houses_dataset, teacher_predict_url=f"{gated.url}/gated/predict")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        calls = gated.count()
        wait_for(client, job_id, lambda j, n=attempt: j["attempts"] == n
                 and j["stage"] == "synth_gen")
        runner = ray_state.runner_of(job_id)
        ray_state.wait_until("the attempt to call its teacher", lambda n=calls: gated.count() > n)
        if attempt == 2:
            # A report of the lost attempt 1, arriving late, changes nothing.
            before = client.get(f"/v1/jobs/{job_id}").json()
            manager = ray.get_actor(JOB_MANAGER_NAME, namespace=NAMESPACE)
            ray.get(manager.report.remote(job_id, 1, time.monotonic_ns(), stage="finalize",
                                          message="a late report of attempt 1"))
            after = client.get(f"/v1/jobs/{job_id}").json()
            assert after["stage"] == before["stage"] == "synth_gen"
            assert "attempt 1" not in after["message"]
        os.kill(runner["Pid"], signal.SIGKILL)
    job = _settled(client, job_id)
    assert job["status"] == "failed" and job["attempts"] == MAX_ATTEMPTS
    assert f"the pipeline was lost {MAX_ATTEMPTS} times" in job["message"]
    ray_state.nothing_held()


def test_a_teacher_model_lost_for_good_fails_its_job_and_the_next_job_starts_another(
    client, service, houses_dataset, teacher_model_id, ray_driver
):
    """Last in the module: its fresh jobs also show that, after every fault above, work
    still gets the CPUs (synth-gen shards and trials both run)."""
    import ray

    with _frozen_teacher(service, teacher_model_id) as teacher:
        job_id = _distill_mid_synth_gen(client, houses_dataset, teacher_model_id, teacher)
        handle = ray.get_actor(f"teacher:{teacher_model_id}", namespace=service.info["namespace"])
        ray.kill(handle, no_restart=True)
        job = _settled(client, job_id)
    assert job["status"] == "failed", job
    assert job["message"].startswith("failed: the teacher model's actor was lost")
    ray_state.nothing_held()

    again = _settled(client, _submit(client, houses_dataset, teacher_model_id=teacher_model_id))
    assert again["status"] == "completed", again
    new = ray_state.wait_actor("TeacherModel", f"teacher:{teacher_model_id}", "ALIVE")
    assert new["ActorID"] != teacher["ActorID"]
