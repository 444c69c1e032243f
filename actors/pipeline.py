"""The fit pipeline driver: one Ray task per job attempt, owned by the JobManager.

It reserves no CPU (the trials need them) and reports each stage and trial count to
the JobManager by name, so reports still land after the JobManager restarts.
"""

from __future__ import annotations

from typing import Any

import ray

from actors import JOB_MANAGER_NAME, NAMESPACE
from actors.trainer import run_search
from reasoning.datasets import DatasetStore
from reasoning.home import Home
from reasoning.registry import ModelRegistry
from reasoning.schemas import ModelFitRequest, ReasoningFitRequest
from reasoning.training import finalize, prepare

REQUEST_MODELS = {"reasoning_fit": ReasoningFitRequest, "model_fit": ModelFitRequest}
TUNE_ENV = {
    # One line per job in the logs instead of Tune's tables and per-trial logger files.
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_MAX_PENDING_TRIALS_PG": "8",
}


class _Reporter:
    """Fire-and-forget progress reports to the JobManager for one attempt."""

    def __init__(self, job_id: str, attempt: int) -> None:
        self.job_id, self.attempt = job_id, attempt

    def __call__(self, **fields: Any) -> None:
        try:
            manager = ray.get_actor(JOB_MANAGER_NAME, namespace=NAMESPACE)
            manager.report.remote(self.job_id, self.attempt, **fields)
        except ValueError:
            pass  # the JobManager is restarting; it re-runs this job anyway


@ray.remote(num_cpus=0, max_retries=2, runtime_env={"env_vars": TUNE_ENV})
def run_fit_job(
    job_id: str, attempt: int, kind: str, request_json: dict[str, Any], home: str
) -> dict[str, str]:
    """Load, filter, split, search, finalize, register; returns the model id and summary."""
    report = _Reporter(job_id, attempt)
    paths = Home.at(home)
    request = REQUEST_MODELS[kind].model_validate(request_json)
    family = request.family_names()[0]
    n = request.n_hyperopt_steps

    report(stage="queued", message="loading and splitting the dataset")
    df = DatasetStore(paths.datasets).load(str(request.dataset_id))
    data = prepare(df, request)

    report(stage="train", message=f"running {n} {family} trials", done=0, total=n)
    trials = run_search(
        data, family, n, request.random_state, paths.tune, f"{job_id}-attempt{attempt}",
        on_progress=lambda done, total: report(
            done=done, total=total, message=f"{done} of {total} {family} trials done"
        ),
    )

    report(stage="finalize", message="refitting the best configuration and explaining it")
    model, card = finalize(data, request, family, trials, job_id, kind)
    ModelRegistry(paths.models).add(model, card)
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in card.metrics.test.items())
    return {"model_id": str(card.model_id), "message": f"completed: {family} model; test {metrics}"}
