"""A restart of the whole service keeps every dataset, model and job, and re-runs jobs."""

from __future__ import annotations

import httpx

from reasoning.jobs import JobStore
from reasoning.synthetic import houses
from tests.integration.service import Service, upload, wait_for, wait_job
from tests.teacher_server import TeacherServer


def test_restart_keeps_state_and_reruns_running_jobs(tmp_path):
    # The running job waits on a teacher that answers only when the test says so, so it is
    # certainly mid-job when the service stops, however fast the machine.
    teacher = TeacherServer()
    svc = Service(tmp_path / "home", REASONING_TEACHER_ALLOW="127.0.0.1/32").start()
    try:
        with httpx.Client(base_url=svc.url, timeout=60) as client:
            dataset = upload(client, houses(500, seed=3), "houses")
            body = {"dataset_id": dataset["dataset_id"], "n_hyperopt_steps": 1,
                    "task": {"task_kind": "regression", "label_column": "price"},
                    "model_types": ["linear"]}
            done = wait_job(client, client.post("/v1/reasoning/fit", json=body).json()["job_id"])
            assert done["status"] == "completed"
            gated = {**body, "teacher_predict_url": f"{teacher.url}/gated/predict"}
            job_id = client.post("/v1/reasoning/fit", json=gated).json()["job_id"]
            wait_for(client, job_id, lambda j: j["stage"] == "synth_gen")
        svc.stop()
        stored = JobStore(svc.home / "jobs.sqlite")
        assert stored.get(job_id).status == "running"  # stopped mid-job
        stored.close()
        svc.start()
        teacher.gate.set()
        with httpx.Client(base_url=svc.url, timeout=60) as client:
            assert client.get(f"/v1/datasets/{dataset['dataset_id']}").status_code == 200
            assert client.get(f"/v1/models/{done['model_id']}").status_code == 200
            assert client.get(f"/v1/jobs/{done['job_id']}").json() == done
            job = wait_job(client, job_id)
            assert job["status"] == "completed", job
            assert job["attempts"] == 2
            assert client.get(f"/v1/models/{job['model_id']}").status_code == 200
    finally:
        svc.stop()
        teacher.gate.set()
        teacher.close()
