"""The fit pipeline driver: a pool of long-lived PipelineRunner actors, each running one
job attempt at a time.

Why a pool of warm actors: starting a worker process that imports pandas, scikit-learn
and xgboost takes seconds, which a small job would spend before its first row is read.
The runners start with the JobManager and take attempts as method calls.

Why detached actors, and not tasks owned by the JobManager: a task dies with its owner,
and with it the attempt's trials and synth-gen work. A detached runner outlives a
JobManager restart (the new JobManager asks the runners what they hold and reattaches),
it is stopped by a flag its stages look at, and when its process dies Ray cancels the
trials it owned and starts it again. It reserves no CPU (the trials need them) and runs
at fit niceness (`actors.lower_priority`).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Any, cast

import ray

from actors import JOB_MANAGER_NAME, NAMESPACE, lower_priority
from actors.synth_gen import ShardReport, TeacherSpec, run_synth_gen
from actors.trainer import run_search, sample_configs, warm_trial_workers
from reasoning.distill import DistillOptions, diffmodel_fit
from reasoning.munge import synthetic_size
from reasoning.schemas import FitRequest, ModelCard, ModelFitRequest, ReasoningFitRequest
from reasoning.service.stores import Stores, keep_private
from reasoning.teachers import TeacherError
from reasoning.training import (
    JobFailure,
    PreparedData,
    finalize,
    model_card,
    prepare,
    with_label_metrics,
)

REQUEST_MODELS: dict[str, type[FitRequest]] = {
    "reasoning_fit": ReasoningFitRequest, "model_fit": ModelFitRequest}
log = logging.getLogger(__name__)
CANCELLED = "cancelled by request"


class Cancelled(Exception):
    """The job was cancelled while this attempt ran."""


@dataclass
class Outcome:
    """How an attempt ended, in the JobManager's terms."""

    status: str  # "completed", "failed", or "lost": the runner does not hold the attempt
    message: str
    model_id: str | None = None
    error: str | None = None


def runner_name(manager: str, slot: int) -> str:
    return f"{manager}:runner:{slot}"


@dataclass(frozen=True)
class Reporter:
    """Fire-and-forget progress reports to the JobManager, found by name each time.

    Plain data, so it can travel to other processes. Each report carries the
    time it was made, so the JobManager (a threaded actor, running calls in any order)
    drops one overtaken by a later one; progress reports repeat their stage, so one lost
    while the JobManager restarts is made good by the next.
    """

    job_id: str
    attempt: int
    manager: str = JOB_MANAGER_NAME

    def __call__(self, **fields: Any) -> None:
        try:
            manager = ray.get_actor(self.manager, namespace=NAMESPACE)
            manager.report.remote(self.job_id, self.attempt, time.monotonic_ns(), **fields)
        except ValueError:
            pass  # the JobManager is restarting; it reattaches and reads the outcome

    def trials(self, done: int, total: int, best: float | None) -> None:
        self(stage="train", done=done, total=total, best=best,
             message=f"{done} of {total} trials done")

    def rows(self, done: int, total: int) -> None:
        self(stage="synth_gen", done=done, total=total,
             message=f"{done:,} of {total:,} rows labelled")


@dataclass
class Attempt:
    """One attempt of one job, as a runner holds it."""

    job_id: str
    number: int
    kind: str
    request: FitRequest
    tenant: str
    reporter: Reporter
    stage: str = "queued"
    cancelled: bool = False
    deadline: float | None = None
    """time.monotonic() past which the attempt fails (the job's time limit)."""
    time_limit: float | None = None
    shard_rows: dict[int, int] = field(default_factory=dict)
    """Rows labelled so far by each synth-gen shard, as the shards report them."""
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class PipelineRunner:
    """A warm worker of the pool: `run` holds one attempt at a time; `outcome`, `cancel`
    and `holding` answer meanwhile (a threaded actor)."""

    def __init__(self, manager: str, stores: Stores, options: DistillOptions) -> None:
        lower_priority()
        keep_private()
        self.manager = manager
        self.stores = stores
        # Opened now: a runner that cannot reach the stores cannot run any attempt.
        self.datasets, self.models = stores.datasets(), stores.models()
        self.options = options
        self.attempt: Attempt | None = None
        self._lock = threading.Lock()
        # Ray gives a task worker only to tasks under the same detached actor as the
        # first task it ran: each runner has trial workers of its own, warmed now.
        self.warming = warm_trial_workers()

    def ping(self) -> str:
        return "ok"

    def warm(self, timeout: float) -> bool:
        """Whether this runner's trial workers have their imports, waiting up to
        `timeout` seconds."""
        done, _ = ray.wait(self.warming, num_returns=len(self.warming), timeout=timeout)
        return len(done) == len(self.warming)

    def run(
        self, job_id: str, number: int, kind: str, request_json: dict[str, Any], tenant: str,
        time_limit: float | None = None,
    ) -> Outcome:
        """Run the attempt to its end (the JobManager waits on this call); past
        `time_limit` seconds it fails, saying so."""
        with self._lock:
            if self.attempt is not None and not self.attempt.done.is_set():
                held = self.attempt
                return Outcome("lost", f"the runner was busy with job {held.job_id}")
            attempt = Attempt(job_id, number, kind, REQUEST_MODELS[kind].model_validate(
                request_json), tenant, Reporter(job_id, number, self.manager))
            if time_limit is not None:
                attempt.time_limit = time_limit
                attempt.deadline = time.monotonic() + time_limit
            self.attempt = attempt
        try:
            attempt.outcome = self._outcome_of(attempt)
        finally:
            attempt.done.set()
        return attempt.outcome

    def outcome(self, job_id: str, number: int, timeout: float) -> Outcome | None:
        """The attempt's outcome, waiting up to `timeout` seconds (None: still running).
        A JobManager that restarted asks this instead of holding `run`'s result."""
        attempt = self.attempt
        if attempt is None or (attempt.job_id, attempt.number) != (job_id, number):
            return Outcome("lost", "the runner does not hold this attempt")
        attempt.done.wait(timeout)
        return attempt.outcome

    def holding(self) -> tuple[str, int] | None:
        """The job and attempt number this runner runs, or last ran."""
        attempt = self.attempt
        return None if attempt is None else (attempt.job_id, attempt.number)

    def count_rows(self, job_id: str, number: int, shard: int, rows: int) -> None:
        """A synth-gen shard's count of rows labelled (a retried shard counts again)."""
        attempt = self.attempt
        if attempt is not None and (attempt.job_id, attempt.number) == (job_id, number):
            attempt.shard_rows[shard] = rows

    def cancel(self, job_id: str) -> None:
        attempt = self.attempt
        if attempt is not None and attempt.job_id == job_id:
            attempt.cancelled = True  # the running stage sees it within a moment

    def _outcome_of(self, attempt: Attempt) -> Outcome:
        try:
            return _Pipeline(self, attempt).fit()
        except Cancelled:
            return Outcome("failed", CANCELLED)
        except JobFailure as err:
            return Outcome("failed", f"failed: {err}", error=traceback.format_exc())
        except Exception as err:  # noqa: BLE001 - every failure must end the job
            # The traceback goes to this worker's log and the job's stored error, which
            # operators read; callers get the message and the error's last line.
            log.exception("job %s failed during %s", attempt.job_id, attempt.stage)
            message = f"failed during {attempt.stage}: {type(err).__name__}: {err}"
            return Outcome("failed", message[:1000], error=traceback.format_exc())


class _Pipeline:
    """The stages of one attempt, with what they share."""

    def __init__(self, runner: PipelineRunner, attempt: Attempt) -> None:
        self.runner, self.options = runner, runner.options
        self.attempt = attempt
        self.job_id, self.kind, self.tenant = attempt.job_id, attempt.kind, attempt.tenant
        self.request = attempt.request
        self.reporter = attempt.reporter

    def _report(self, **fields: Any) -> None:
        self.attempt.stage = fields.get("stage", self.attempt.stage)
        self.reporter(**fields)

    def _check_cancelled(self) -> None:
        """Each stage asks between steps (the search every fraction of a second)."""
        if self.attempt.cancelled:
            raise Cancelled()
        deadline = self.attempt.deadline
        if deadline is not None and time.monotonic() > deadline:
            raise JobFailure(f"the job ran longer than its time limit of "
                             f"{self.attempt.time_limit:,.0f} s (REASONING_JOB_TIME_LIMIT)")

    def fit(self) -> Outcome:
        """Load, filter, split, (label with the teacher,) search, finalize, register."""
        request, n = self.request, self.request.n_hyperopt_steps
        families = request.family_names()
        what = f"{n} {'/'.join(families)} trials"
        self._report(stage="queued", message="loading and splitting the dataset")
        df = self.runner.datasets.load(str(request.dataset_id))
        data = prepare(df, request)
        self._check_cancelled()
        if request.teacher_get_grads_url:
            return self._register(*self._diffmodel(data))
        if request.has_teacher:
            self._report(stage="synth_gen", message="generating and labelling rows")
            data.teacher = run_synth_gen(
                data,
                self._teacher_spec(),
                request.random_state,
                synthetic_size(len(data.X_train), self.options.synthetic_factor,
                               self.options.synthetic_cap),
                self.options.synth_gen_shards,
                report=ShardReport(ray.get_runtime_context().current_actor, self.job_id,
                                   self.attempt.number),
                labelled=lambda: dict(self.attempt.shard_rows),
                on_progress=self.reporter.rows,
                check_cancelled=self._check_cancelled,
            )
            self._check_cancelled()

        self._report(stage="train", message=f"running {what}", done=0, total=n)
        trials = run_search(
            data,
            sample_configs(families, n, request.random_state),
            request.random_state,
            on_progress=self.reporter.trials,
            check_cancelled=self._check_cancelled,
        )
        self._check_cancelled()

        self._report(stage="finalize", message="refitting the best configuration, explaining it")
        return self._register(*finalize(data, request, trials, self.job_id, self.kind))

    def _register(self, model: Any, card: ModelCard) -> Outcome:
        self._check_cancelled()
        card = card.model_copy(update={"tenant": self.tenant})
        self.runner.models.add(model, card)
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
            return TeacherSpec(model_id=str(request.teacher_model_id), stores=self.runner.stores)
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
            model, metrics, targets = diffmodel_fit(
                data,
                self._teacher_spec().http(),
                request.teacher_get_grads_url or "",
                request.family_names()[0],
                request.random_state,
            )
        except TeacherError as err:
            raise JobFailure(str(err)) from None
        data = replace(data, teacher=targets)
        metrics = with_label_metrics(metrics, model, data, model.family, model.params_,
                                     request.random_state)
        card = model_card(model, data, request, self.job_id, self.kind, model.family,
                          model.params_, [], metrics)
        return model, card


def runner(
    manager: str, slot: int, stores: Stores, options: DistillOptions
) -> ray.actor.ActorHandle:
    """The pool's runner in this slot: the live one, or a new one (detached, named, so a
    new JobManager finds it; restarted by Ray if its process dies)."""
    # Ray's stubs type .remote() as a handle or the class itself (for method typing).
    return cast(ray.actor.ActorHandle, (
        ray.remote(PipelineRunner)
        .options(
            name=runner_name(manager, slot),
            namespace=NAMESPACE,
            get_if_exists=True,
            lifetime="detached",
            num_cpus=0,
            # run, the JobManager's outcome() calls, and the shards' count_rows reports
            max_concurrency=8,
            max_restarts=-1,
            max_task_retries=0,  # an attempt lost with its process is the JobManager's call
        )
        .remote(manager, stores, options)
    ))
