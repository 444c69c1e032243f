"""A restart of the whole service (Ray included) keeps every dataset, model, job and API
key, and re-runs the jobs that were running.

It restarts the session's own service, with the same home and port, so it comes last
among the integration tests (pytest runs files in name order); the `ray_driver` fixture
joins the new Ray if a later test needs it.
"""

from __future__ import annotations

from tests.integration.conftest import REG, TENANT
from tests.integration.service import login, submit, wait_for, wait_job
from tests.teacher_server import TeacherServer


def test_restart_keeps_state_and_reruns_running_jobs(service, client, houses_dataset, fits):
    # The running job waits on a teacher that answers only when the test says so, so it is
    # certainly mid-job when the service stops, however fast the machine.
    teacher = TeacherServer()
    try:
        done = fits["regression"]
        job_id = submit(client, "/v1/reasoning/fit", {
            "dataset_id": houses_dataset["dataset_id"], "task": REG, "model_types": ["linear"],
            "n_hyperopt_steps": 1, "teacher_predict_url": f"{teacher.url}/gated/predict"})
        wait_for(client, job_id, lambda j: j["stage"] == "synth_gen")
        old_ray = service.info["ray_address"]
        import ray

        if ray.is_initialized():
            ray.shutdown()  # this process's driver belongs to the Ray about to stop
        service.stop()
        stored = service.stores.jobs()
        assert stored.get(job_id).status == "running"  # stopped mid-job
        # Open before the start: the new service re-runs the job as soon as its runners
        # answer, which may be before `start` returns.
        teacher.gate.set()

        service.start()
        assert service.info["ray_address"] != old_ray  # a new Ray, not the old one kept
        # The access token from before still works (the same service secret signs it), and
        # the API key still buys new ones.
        assert login(service.url, service.keys[TENANT])["access_token"]
        assert client.get(f"/v1/datasets/{houses_dataset['dataset_id']}").json() == (
            houses_dataset)
        assert client.get(f"/v1/models/{done['model_id']}").status_code == 200
        assert client.get(f"/v1/jobs/{done['job_id']}").json() == done
        job = wait_job(client, job_id)
        assert job["status"] == "completed", job
        # Re-run by the new service: its second attempt at least (a runner lost while a
        # loaded machine starts the new pool costs one more, as the durability rules say).
        assert job["attempts"] >= 2
        assert client.get(f"/v1/models/{job['model_id']}").status_code == 200
    finally:
        teacher.gate.set()
        teacher.close()
