"""Jobs under faults: killing any actor of a running job settles the job, never leaves it
`running`, and gives back everything it held (a fresh fit afterwards still runs).

Each test pins the moment of the kill instead of racing the job: a distillation whose
TeacherModel process is frozen (SIGSTOP) waits in synth-gen while the test acts, or a
frozen trial holds the search. Seconds only: Ray gives up on a connection a frozen
process never answers. The service runs without Ray's dashboard, so actors are found in
the GCS actor table (`ray._private.state.actors()`), not `ray.util.state`.
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

from tests.integration.service import Service, wait_for, wait_job

REG = {"task_kind": "regression", "label_column": "price"}
SMALL = {"task": REG, "model_types": ["linear"], "n_hyperopt_steps": 1}


def _submit(client: httpx.Client, dataset: dict, path: str = "/v1/reasoning/fit",
            **body: Any) -> str:
    response = client.post(path, json={"dataset_id": dataset["dataset_id"], **SMALL, **body})
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def _actors(class_name: str, name: str | None = None, state: str | None = None,
            job_id: str | None = None) -> list[dict[str, Any]]:
    """Live actors of this class in the service's cluster that have a process; optionally
    only those of this name or state, or those the runner of `job_id` started."""
    import ray

    owner = None
    if job_id is not None:
        owner = _where(_wait_actor("PipelineRunner", f"pipeline:{job_id}")["Address"])
    return [a for a in ray._private.state.actors().values()
            if a["ActorClassName"] == class_name and a["State"] != "DEAD" and a["Pid"]
            and name in (None, a["Name"]) and state in (None, a["State"])
            and owner in (None, _where(a["OwnerAddress"]))]


def _where(address: dict[str, Any]) -> tuple[str, int]:
    """A worker process, as the GCS actor table names it."""
    return address["IPAddress"], address["Port"]


def _wait_actor(class_name: str, name: str | None = None, state: str | None = None,
                job_id: str | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while not (found := _actors(class_name, name, state, job_id)):
        assert time.monotonic() < deadline, f"no live {class_name} actor appeared"
        time.sleep(0.05)
    return found[0]


def _settled(client: httpx.Client, job_id: str) -> dict:
    """The job's end; wait_job fails the test if it stays pending or running."""
    return wait_job(client, job_id, timeout=120)


def _placement_groups() -> list[dict[str, Any]]:
    """The cluster's placement groups not removed yet (Tune makes one per trial)."""
    from ray.util import placement_group_table

    return [g for g in placement_group_table().values() if g["state"] != "REMOVED"]


def _fresh_fit_completes(client: httpx.Client, dataset: dict) -> None:
    """Nothing the faulted job held is left behind: no placement group lives on, every CPU
    is free again, and a new fit gets its trial run."""
    import ray

    deadline = time.monotonic() + 30
    while True:
        groups = _placement_groups()
        free = ray.available_resources().get("CPU", 0)
        if not groups and free == ray.cluster_resources()["CPU"]:
            break
        assert time.monotonic() < deadline, f"still held: {free} CPUs free; {groups}"
        time.sleep(0.2)
    job = _settled(client, _submit(client, dataset))
    assert job["status"] == "completed", job


@pytest.fixture(scope="module")
def teacher_model_id(client: httpx.Client, houses_dataset: dict) -> str:
    """A model fitted on this server, to distil from through a TeacherModel actor."""
    job = _settled(client, _submit(client, houses_dataset, "/v1/models/fit",
                                   model_types=["random_forest"]))
    assert job["status"] == "completed", job
    return job["model_id"]


@contextmanager
def _frozen_teacher(service: Service, model_id: str) -> Iterator[int]:
    """The TeacherModel actor the job's SynthGen actors will call, started now and frozen
    (its pid is yielded); thawed on the way out unless the test killed it."""
    from actors.teacher import teacher_model

    teacher_model(model_id, str(service.home))
    pid = _wait_actor("TeacherModel", f"teacher:{model_id}", "ALIVE")["Pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def _distill_mid_synth_gen(client: httpx.Client, dataset: dict, teacher_id: str) -> str:
    """Submit a distillation and return once its SynthGen actors wait on the teacher."""
    job_id = _submit(client, dataset, teacher_model_id=teacher_id)
    wait_for(client, job_id, lambda j: j["stage"] == "synth_gen", timeout=60)
    _wait_actor("SynthGen", state="ALIVE", job_id=job_id)
    time.sleep(1.5)  # the shards make their rows (milliseconds) and call the teacher
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
    return job_id


def test_killing_the_job_manager_mid_job(
    client, service, houses_dataset, teacher_model_id, ray_driver
):
    import ray

    from actors import JOB_MANAGER_NAME, NAMESPACE

    with _frozen_teacher(service, teacher_model_id):
        job_id = _distill_mid_synth_gen(client, houses_dataset, teacher_model_id)
        manager = ray.get_actor(JOB_MANAGER_NAME, namespace=NAMESPACE)
        ray.kill(manager, no_restart=False)
    # Ray restarts it; it reloads SQLite and reattaches to the job's runner.
    assert ray.get(manager.ping.remote(), timeout=60) == "ok"
    job = _settled(client, job_id)
    assert job["status"] == "completed", job
    assert job["attempts"] == 1  # the attempt that was running went on
    _fresh_fit_completes(client, houses_dataset)


def test_killing_a_synth_gen_actor_mid_labelling(
    client, service, houses_dataset, teacher_model_id, ray_driver
):
    with _frozen_teacher(service, teacher_model_id):
        job_id = _distill_mid_synth_gen(client, houses_dataset, teacher_model_id)
        os.kill(_wait_actor("SynthGen", job_id=job_id)["Pid"], signal.SIGKILL)
    job = _settled(client, job_id)
    # Ray restarts the actor and runs its shard again (seeded, so the same rows).
    assert job["status"] == "completed", job
    assert job["attempts"] == 1
    _fresh_fit_completes(client, houses_dataset)


def test_killing_a_teacher_model_mid_predict(
    client, service, houses_dataset, teacher_model_id, ray_driver
):
    with _frozen_teacher(service, teacher_model_id) as pid:
        job_id = _distill_mid_synth_gen(client, houses_dataset, teacher_model_id)
        os.kill(pid, signal.SIGKILL)
    job = _settled(client, job_id)
    # Ray restarts the teacher (detached, max_restarts=-1) and retries the calls.
    assert job["status"] == "completed", job
    assert job["attempts"] == 1
    assert _wait_actor("TeacherModel", f"teacher:{teacher_model_id}")["Pid"] != pid
    _fresh_fit_completes(client, houses_dataset)


def test_killing_a_trial_worker_mid_search(client, service, houses_dataset, ray_driver):
    job_id = _submit(client, houses_dataset, model_types=["xgboost"], n_hyperopt_steps=2)
    wait_for(client, job_id, lambda j: j["stage"] == "train", timeout=60)
    # Tune's trial actor (ImplicitFunc), owned by this job's runner; it has a process
    # seconds before its trial ends.
    os.kill(_wait_actor("ImplicitFunc", job_id=job_id)["Pid"], signal.SIGKILL)
    job = _settled(client, job_id)
    assert job["status"] == "completed", job
    # Tune recorded the killed run and ran the trial again: every trial has its score.
    assert list((service.home / "tune").glob(f"{job_id}-attempt1/*/error.txt"))
    card = client.get(f"/v1/models/{job['model_id']}").json()
    assert len(card["trials"]) == 2
    assert all(t["score"] is not None for t in card["trials"]), card["trials"]
    _fresh_fit_completes(client, houses_dataset)


def test_killing_the_pipeline_runner_mid_search(client, houses_dataset, ray_driver):
    """The runner is no named target of the issue, but its death is what would strand
    Tune's placement groups (holding the CPUs) if anything did."""
    job_id = _submit(client, houses_dataset)
    wait_for(client, job_id, lambda j: j["stage"] == "train", timeout=60)
    runner = _wait_actor("PipelineRunner", f"pipeline:{job_id}")["Pid"]
    trial = _wait_actor("ImplicitFunc", job_id=job_id)["Pid"]
    os.kill(trial, signal.SIGSTOP)  # so the search cannot end before the runner dies
    try:
        assert _placement_groups()  # the trial's, which must not outlive the runner
        os.kill(runner, signal.SIGKILL)
    finally:
        try:
            os.kill(trial, signal.SIGCONT)
        except ProcessLookupError:
            pass
    job = _settled(client, job_id)
    # The JobManager starts the attempt over; Ray removed the dead runner's groups.
    assert job["status"] == "completed", job
    assert job["attempts"] == 2
    _fresh_fit_completes(client, houses_dataset)
