"""The fit pipeline driver: one detached PipelineRunner actor per job attempt.

Why an actor, detached, and not a task owned by the JobManager: a task dies with its
owner, and Ray then leaves the placement groups its Tune run created behind, holding
CPUs that no later trial gets. A detached runner outlives a JobManager restart (the
new JobManager reattaches to it by name), and it is stopped through Tune itself, which
removes its placement groups. It reserves no CPU: the trials need them.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import ray

from actors import JOB_MANAGER_NAME, NAMESPACE
from actors.synth_gen import TeacherSpec, run_synth_gen
from actors.trainer import request_stop, run_search, sample_configs
from reasoning.datasets import DatasetStore
from reasoning.distill import DistillOptions, diffmodel_fit
from reasoning.home import Home
from reasoning.munge import synthetic_size
from reasoning.registry import ModelRegistry
from reasoning.schemas import ModelCard, ModelFitRequest, ReasoningFitRequest
from reasoning.teachers import TeacherError
from reasoning.training import (
    JobFailure,
    PreparedData,
    finalize,
    model_card,
    prepare,
    with_label_metrics,
)

REQUEST_MODELS = {"reasoning_fit": ReasoningFitRequest, "model_fit": ModelFitRequest}
CANCELLED = "cancelled by request"
TUNE_ENV = {
    # Quiet Tune: no progress tables in the logs. Set in the runner's own process (Tune
    # reads them when it runs), not as a runtime_env, which would keep Ray from reusing an
    # idle worker and cost a fresh process per job.
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_MAX_PENDING_TRIALS_PG": "8",
}


class Cancelled(Exception):
    """The job was cancelled while this attempt ran."""


@dataclass
class Outcome:
    """How an attempt ended, in the JobManager's terms."""

    status: str  # "completed" or "failed"
    message: str
    model_id: str | None = None
    error: str | None = None


def runner_name(job_id: str) -> str:
    return f"pipeline:{job_id}"


@dataclass(frozen=True)
class Reporter:
    """Fire-and-forget progress reports to the JobManager, found by name each time.

    Plain data, so Tune can pickle it into its progress callback. Each report carries the
    time it was made, so the JobManager (a threaded actor, running calls in any order)
    drops one overtaken by a later one; progress reports repeat their stage, so one lost
    while the JobManager restarts is made good by the next.
    """

    job_id: str
    attempt: int

    def __call__(self, **fields: Any) -> None:
        try:
            manager = ray.get_actor(JOB_MANAGER_NAME, namespace=NAMESPACE)
            manager.report.remote(self.job_id, self.attempt, time.monotonic_ns(), **fields)
        except ValueError:
            pass  # the JobManager is restarting; it reattaches and reads the outcome

    def trials(self, done: int, total: int) -> None:
        self(stage="train", done=done, total=total, message=f"{done} of {total} trials done")

    def rows(self, done: int, total: int) -> None:
        self(stage="synth_gen", done=done, total=total,
             message=f"{done:,} of {total:,} rows labelled")


class PipelineRunner:
    """Runs one attempt of one job in a thread; `outcome()` waits for its end."""

    def __init__(
        self,
        job_id: str,
        attempt: int,
        kind: str,
        request_json: dict[str, Any],
        home: str,
        options: DistillOptions,
        tenant: str,
    ) -> None:
        os.environ.update(TUNE_ENV)
        self.options, self.tenant = options, tenant
        self.job_id, self.attempt, self.kind = job_id, attempt, kind
        self.request = REQUEST_MODELS[kind].model_validate(request_json)
        self.home = Home.at(home)
        self.stage = "queued"
        self.cancelled = False
        self.search_name = f"{job_id}-attempt{attempt}"
        self.reporter = Reporter(job_id, attempt)
        self._done = threading.Event()
        self._outcome: Outcome | None = None
        threading.Thread(target=self._run, name="pipeline", daemon=True).start()

    def outcome(self, timeout: float | None = None) -> Outcome | None:
        """The attempt's outcome, waiting up to `timeout` seconds (None: until it ends)."""
        self._done.wait(timeout)
        return self._outcome

    def cancel(self) -> None:
        self.cancelled = True
        request_stop(self.search_name)

    def _report(self, **fields: Any) -> None:
        self.stage = fields.get("stage", self.stage)
        self.reporter(**fields)

    def _check_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled()

    def _run(self) -> None:
        try:
            self._outcome = self._fit()
        except Cancelled:
            self._outcome = Outcome("failed", CANCELLED)
        except JobFailure as err:
            self._outcome = Outcome("failed", f"failed: {err}", error=traceback.format_exc())
        except Exception as err:  # noqa: BLE001 - every failure must end the job
            message = f"failed during {self.stage}: {type(err).__name__}: {err}"
            self._outcome = Outcome("failed", message[:1000], error=traceback.format_exc())
        finally:
            self._done.set()

    def _fit(self) -> Outcome:
        """Load, filter, split, (label with the teacher,) search, finalize, register."""
        request, n = self.request, self.request.n_hyperopt_steps
        families = request.family_names()
        what = f"{n} {'/'.join(families)} trials"
        self._report(stage="queued", message="loading and splitting the dataset")
        df = DatasetStore(self.home.datasets).load(str(request.dataset_id))
        data = prepare(df, request)
        self._check_cancelled()
        if getattr(request, "teacher_get_grads_url", None):
            return self._register(*self._diffmodel(data))
        if getattr(request, "has_teacher", False):
            self._report(stage="synth_gen", message="generating and labelling rows")
            data.teacher = run_synth_gen(
                data,
                self._teacher_spec(),
                request.random_state,
                synthetic_size(len(data.X_train), self.options.synthetic_factor,
                               self.options.synthetic_cap),
                self.options.synth_gen_shards,
                on_progress=self.reporter.rows,
                check_cancelled=self._check_cancelled,
            )
            self._check_cancelled()

        self._report(stage="train", message=f"running {what}", done=0, total=n)
        trials = run_search(
            data,
            sample_configs(families, n, request.random_state),
            request.random_state,
            self.home.tune,
            self.search_name,
            on_progress=self.reporter.trials,
        )
        self._check_cancelled()

        self._report(stage="finalize", message="refitting the best configuration, explaining it")
        return self._register(*finalize(data, request, trials, self.job_id, self.kind))

    def _register(self, model: Any, card: ModelCard) -> Outcome:
        self._check_cancelled()
        card = card.model_copy(update={"tenant": self.tenant})
        ModelRegistry(self.home.models).add(model, card)
        shown = card.metrics.fidelity or card.metrics.test
        which = "fidelity" if card.metrics.fidelity else "test"
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
        return Outcome(
            "completed", f"completed: {card.family} model; {which} {metrics}",
            str(card.model_id),
        )

    def _teacher_spec(self) -> TeacherSpec:
        request = self.request
        if request.teacher_model_id is not None:
            return TeacherSpec(model_id=str(request.teacher_model_id), home=str(self.home.root))
        headers = tuple(sorted((request.teacher_predict_headers or {}).items()))
        return TeacherSpec(url=request.teacher_predict_url, headers=headers,
                           timeout=self.options.teacher_timeout,
                           retries=self.options.teacher_retries,
                           allow=self.options.teacher_allow)

    def _diffmodel(self, data: PreparedData) -> tuple[Any, ModelCard]:
        """DiffModel teacher: no synth-gen, no search; a Sobolev fit to values + Jacobians."""
        request = self.request
        self._report(stage="finalize", message="fetching the teacher's values and Jacobians")
        try:
            model, metrics = diffmodel_fit(
                data,
                self._teacher_spec().http(),
                request.teacher_get_grads_url or "",
                request.family_names()[0],
                request.random_state,
            )
        except TeacherError as err:
            raise JobFailure(str(err)) from None
        metrics = with_label_metrics(metrics, model, data, model.family, model.params_,
                                     request.random_state)
        card = model_card(model, data, request, self.job_id, self.kind, model.family,
                          model.params_, [], metrics)
        return model, card


def start_runner(
    job_id: str,
    attempt: int,
    kind: str,
    request_json: dict[str, Any],
    home: str,
    options: DistillOptions,
    tenant: str,
) -> ray.actor.ActorHandle:
    """Start a detached runner for this attempt (named, so a new JobManager finds it)."""
    return (
        ray.remote(PipelineRunner)
        .options(
            name=runner_name(job_id),
            namespace=NAMESPACE,
            lifetime="detached",
            num_cpus=0,
            max_concurrency=4,
            max_restarts=0,
        )
        .remote(job_id, attempt, kind, request_json, home, options, tenant)
    )


def find_runner(job_id: str) -> ray.actor.ActorHandle | None:
    """The live runner of this job, if one survived (a JobManager restart)."""
    try:
        return ray.get_actor(runner_name(job_id), namespace=NAMESPACE)
    except ValueError:
        return None
