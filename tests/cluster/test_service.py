"""The service on a real multi-host Ray cluster, with its state in PostgreSQL and S3.

Hosts (tests/cluster/conftest.py): `store` runs PostgreSQL and an S3 server, `head`
runs the Ray head (no CPUs) and `reasoning serve`, and `worker` the only CPUs, in a
mount namespace where the head's folder does not exist. Anything still passed through
local files would fail there. Each test is a REST call sequence against the head; they
share one service and run in file order, the destructive ones last.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reasoning.synthetic import houses
from tests.cluster.hosts import VENV_BIN, WARM_WORKERS, Network
from tests.integration.service import TERMINAL, login, submit, upload, wait_for, wait_job
from tests.teacher_server import TeacherServer

PORT = 8000
TENANT = "alpha"
REG = {"task_kind": "regression", "label_column": "price"}
JOB_WAIT = 240.0


class ClusterService:
    """`reasoning serve` on the head host, joined to the cluster, stores remote."""

    def __init__(self, network: Network) -> None:
        self.network, self.head = network, network["head"]
        self.home = network.head_dir / "service-home"
        secret = network.base / "secrets" / "service.key"  # a mounted secret, on every host
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.write_bytes(secrets.token_bytes(32))
        secret.chmod(0o600)
        self.env = {
            "REASONING_HOME": str(self.home),
            "REASONING_STORE": network.postgres.url,
            "REASONING_ARTIFACTS": "s3://reasoning/service",
            "REASONING_SECRET_KEY_FILE": str(secret),
            "REASONING_AUTH_MODE": "token",
            # The test's own teacher server listens on the network's .1.
            "REASONING_TEACHER_ALLOW": str(network.subnet),
            **network.s3.env,
        }
        self.url = f"http://{self.head.ip}:{PORT}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        self.process = self.head.popen(
            [
                VENV_BIN / "reasoning",
                "serve",
                "--address",
                self.network.gcs_address,
                # Every node's Serve proxy takes these options: 0.0.0.0 is each host's own.
                "--host",
                "0.0.0.0",
                "--port",
                str(PORT),
                "--replicas",
                "2",
            ],
            self.env,
        )
        # Up when `reasoning serve` says so: Serve has then every ingress replica running
        # (one /healthz answer comes from one replica, and the other may still be starting
        # and answer 503) and the JobManager's pool is ready.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited:\n{self.log()}")
            try:
                said = Path(self.process.log).read_text(errors="replace")  # type: ignore[attr-defined]
                if ("reasoning service on" in said
                        and httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"service did not come up:\n{self.log()}")

    def stop(self) -> None:
        """Ctrl-C, as an operator would."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        assert self.process is not None
        return Path(self.process.log).read_text(errors="replace")[-5000:]  # type: ignore[attr-defined]

    def create_key(self, tenant: str) -> str:
        out = self.head.run(
            [VENV_BIN / "reasoning", "admin", "create-key", "--tenant", tenant], self.env
        ).stdout
        return next(
            line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("api key: ")
        )

    def ray(self, code: str) -> Any:
        """Run a driver snippet on the head (joined to the cluster); its JSON output."""
        # RAY_ADDRESS (set by the harness for every host) names the cluster.
        prelude = "import json, ray\nray.init(namespace='reasoning', logging_level='ERROR')\n"
        return json.loads(self.head.python(prelude + code).strip().splitlines()[-1])


ACTORS = """
from ray._private.state import actors
print(json.dumps([[a["ActorClassName"], a["Address"]["IPAddress"], a["State"], a["Name"]]
                  for a in actors().values()]))
"""


@pytest.fixture(scope="module")
def service(hosts: Network) -> Iterator[ClusterService]:
    svc = ClusterService(hosts)
    svc.start()
    svc.key = svc.create_key(TENANT)  # type: ignore[attr-defined]
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def client(service: ClusterService) -> Iterator[httpx.Client]:
    token = login(service.url, service.key)["access_token"]  # type: ignore[attr-defined]
    with httpx.Client(
        base_url=service.url, timeout=60, headers={"authorization": f"Bearer {token}"}
    ) as http:
        yield http


@pytest.fixture(scope="module")
def dataset(client: httpx.Client) -> dict[str, Any]:
    return upload(client, houses(600, seed=1), "houses")


def _submit(client: httpx.Client, body: dict[str, Any]) -> str:
    return submit(client, "/v1/reasoning/fit", body)


def _fit(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    job = wait_job(client, _submit(client, body), JOB_WAIT)
    assert job["status"] == "completed", job
    return client.get(f"/v1/models/{job['model_id']}").json()


def test_a_fit_on_labels_runs_every_trial_on_the_worker(
    hosts: Network, client: httpx.Client, dataset: dict[str, Any]
) -> None:
    card = _fit(
        client,
        {
            "dataset_id": dataset["dataset_id"],
            "task": REG,
            "model_types": ["xgboost"],
            "n_hyperopt_steps": 4,
        },
    )
    assert len(card["trials"]) == 4
    assert [t["node"] for t in card["trials"]] == [hosts["worker"].ip] * 4
    rows = houses(3, seed=5).drop(columns=["price"]).to_json(orient="records", date_format="iso")
    response = client.post(
        f"/v1/models/{card['model_id']}/predict",
        json={"dataframe_records": json.loads(rows), "top_k": None},
    )
    assert response.status_code == 200, response.text
    explanations = response.json()["explanations"]
    assert len(explanations) == 3
    for row in explanations:
        total = row["base_value"] + sum(r["contribution"] for r in row["reasons"])
        assert total == pytest.approx(row["output"], abs=1e-6)


def test_distillation_runs_its_teacher_and_synth_gen_on_the_worker(
    hosts: Network, service: ClusterService, client: httpx.Client, dataset: dict[str, Any]
) -> None:
    teacher = client.get("/v1/models").json()["models"][0]
    card = _fit(
        client,
        {
            "dataset_id": dataset["dataset_id"],
            "model_types": ["linear"],
            "n_hyperopt_steps": 1,
            "teacher_model_id": teacher["model_id"],
        },
    )
    assert card["metrics"]["fidelity"]["r2"] > 0.5
    assert card["teacher"]["synth_gen_nodes"] == [hosts["worker"].ip]
    teachers = {ip for name, ip, _, _ in service.ray(ACTORS) if name == "TeacherModel"}
    assert teachers == {hosts["worker"].ip}


def test_status_reads_go_on_while_the_job_manager_is_killed(
    service: ClusterService, client: httpx.Client, dataset: dict[str, Any]
) -> None:
    job_id = _submit(
        client,
        {
            "dataset_id": dataset["dataset_id"],
            "task": REG,
            "model_types": ["xgboost"],
            "n_hyperopt_steps": 2,
        },
    )
    answers: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for path in (f"/v1/jobs/{job_id}", "/v1/jobs", "/v1/models"):
                answers.append(client.get(path).status_code)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        time.sleep(1)
        killed = service.ray(
            "manager = ray.get_actor('job_manager')\n"
            "ray.kill(manager, no_restart=False)\n"
            "print(json.dumps('killed'))\n"
        )
        assert killed == "killed"
        time.sleep(3)
    finally:
        stop.set()
        reader.join()
    assert len(answers) > 20 and set(answers) == {200}, answers
    # Ray restarts the JobManager; the job it held completes.
    assert wait_job(client, job_id, JOB_WAIT)["status"] == "completed"


def test_a_service_restart_keeps_jobs_models_and_keys_and_finishes_the_job(
    hosts: Network, service: ClusterService, client: httpx.Client, dataset: dict[str, Any]
) -> None:
    # The job waits on a teacher (on the test's own host, .1) that answers only once the
    # service is back, so it is certainly mid-job across the restart.
    teacher = TeacherServer(hosts.gateway)
    try:
        before = client.get("/v1/models").json()["models"]
        done = [job for job in client.get("/v1/jobs").json()["jobs"] if job["status"] in TERMINAL]
        body = {
            "dataset_id": dataset["dataset_id"],
            "task": REG,
            "model_types": ["linear"],
            "n_hyperopt_steps": 1,
            "teacher_predict_url": f"{teacher.url}/gated/predict",
            "teacher_predict_headers": {"x-api-key": "sealed-in-postgres"},
        }
        job_id = _submit(client, body)
        wait_for(client, job_id, lambda job: job["stage"] == "synth_gen", JOB_WAIT)
        service.stop()
        service.start()
        # Up means up on every ingress replica: none answers "starting" any more.
        assert {httpx.get(f"{service.url}/healthz").status_code for _ in range(20)} == {200}
        teacher.gate.set()
        # A new access token from the same API key: keys and the secret survived.
        token = login(service.url, service.key)["access_token"]  # type: ignore[attr-defined]
        client.headers["authorization"] = f"Bearer {token}"
        assert client.get("/v1/models").json()["models"] == before
        listed = {job["job_id"]: job for job in client.get("/v1/jobs").json()["jobs"]}
        assert all(listed[job["job_id"]] == job for job in done) and len(done) >= 3
        job = wait_job(client, job_id, JOB_WAIT)
        assert job["status"] == "completed", job
    finally:
        teacher.gate.set()
        teacher.close()
    # The sealed headers opened after the restart: the teacher got them.
    assert {r["headers"].get("x-api-key") for r in teacher.requests} == {"sealed-in-postgres"}


def test_the_worker_host_dies_mid_job_and_a_fresh_one_finishes_it(
    hosts: Network, client: httpx.Client
) -> None:
    big = upload(client, houses(4000, seed=2), "houses-big")
    body = {
        "dataset_id": big["dataset_id"],
        "task": REG,
        "model_types": ["xgboost"],
        "n_hyperopt_steps": 12,
    }
    job_id = _submit(client, body)
    at_kill = wait_for(
        client, job_id, lambda job: job["stage"] == "train" or job["status"] in TERMINAL, JOB_WAIT
    )
    hosts["worker"].kill_all()  # the host is gone: raylet, workers, everything
    assert at_kill["status"] == "running" and at_kill["progress"]["done"] < 12, at_kill
    fresh = hosts.add_worker("worker2", env=WARM_WORKERS)
    job = wait_job(client, job_id, JOB_WAIT)
    assert job["status"] == "completed", job
    card = client.get(f"/v1/models/{job['model_id']}").json()
    assert len(card["trials"]) == 12 and fresh.ip in {t["node"] for t in card["trials"]}


def test_no_process_wrote_under_the_home(service: ClusterService) -> None:
    assert not service.home.exists()
    assert not os.path.exists(service.network.head_dir / ".reasoning")
