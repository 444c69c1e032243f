"""The JobManager: one named, detached actor that tracks every job and its pipeline.

Its state is the JobStore in the metadata store: the JobManager is the one writer of job
state changes, written on every change and read back in __init__ (ingress replicas read
jobs there themselves, so status reads never wait on this actor).
Pipelines run in a pool of warm PipelineRunner actors, one per running-job slot, started
with the JobManager. After a JobManager restart the new instance asks the runners which
attempts they hold and reattaches to those, and re-runs (fits are deterministic) the
jobs nothing holds any more, e.g. after a restart of the whole service. A job is never
left `running` without something running it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from actors import JOB_MANAGER_NAME, NAMESPACE, first_line, last_line
from actors.pipeline import CANCELLED, Outcome, runner, runner_name
from reasoning.distill import DistillOptions
from reasoning.schemas import Job, JobKind
from reasoning.service.jobs import JobLimits
from reasoning.service.stores import Stores, keep_private

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
"""A runner that dies (node lost, killed) mid-attempt costs the job that attempt; a job
is tried this many times in all."""
OUTCOME_WAIT = 30.0
"""Seconds one outcome() call waits before the watcher asks again: a call left waiting by
a killed JobManager then frees its runner thread soon, so restarts cannot use them up."""
LAUNCH_EVERY = 1.0
"""Seconds between the watcher's looks at the queue, for jobs recorded while this actor
was not there to be woken (starting, restarting)."""
QUEUE_LOOKAHEAD = 64
"""Jobs read past the free slots each time the queue is looked at: room to skip the turns
of tenants at their cap of running jobs."""
RUNNER_ANSWER_WAIT = 120.0
"""Seconds a restarted JobManager waits for each runner to say what it holds (a runner
that is itself starting answers once it has)."""


@dataclass(frozen=True)
class Running:
    """A running attempt: the pool slot of its runner, and the call that ends with it."""

    slot: int
    ref: ray.ObjectRef
    attempt: int
    tenant: str


class JobManager:
    """Submit, track, cancel and re-run jobs; every method is quick and thread-safe."""

    def __init__(
        self,
        stores: Stores,
        max_running_jobs: int = 2,
        options: DistillOptions | None = None,
        name: str = JOB_MANAGER_NAME,
        limits: JobLimits | None = None,
    ) -> None:
        keep_private()
        self.stores, self.name = stores, name
        self.max_running = max_running_jobs
        self.limits = limits or JobLimits()
        self.options = options or DistillOptions()
        self.store = stores.jobs()
        self.lock = threading.Lock()
        # The pool, started now so that no job waits for a process to start.
        self.runners: list[Any] = [self._new_runner(slot) for slot in range(max_running_jobs)]
        self.running: dict[str, Running] = {}
        # ping() calls to runners Ray is starting again after a death -> their slots; a slot
        # takes no attempt until its runner answers.
        self.restarting: dict[ray.ObjectRef, int] = {}
        # job_id -> when the latest report recorded for its running attempt was made
        self.reported: dict[str, int] = {}
        self.recovered = threading.Event()
        """Set once the attempts the runners hold are known; nothing launches before."""
        threading.Thread(target=self._watch, name="job-watcher", daemon=True).start()

    # -- called by the ingress -------------------------------------------------------

    def submit(
        self,
        job_id: str,
        kind: JobKind,
        request_json: dict[str, Any],
        tenant: str,
        idempotency_key: str | None = None,
    ) -> Job:
        """Record the job and start it when a slot is free; the same job_id is a no-op,
        and so is the same idempotency key with the same request (IdempotencyConflict
        with another request)."""
        job = self.store.create(job_id, kind, request_json["dataset_id"], request_json,
                                tenant, idempotency_key)
        self._launch_pending()
        return job

    def wake(self) -> None:
        """A job was recorded in the store (by the ingress): start it if a slot is free.
        The watcher also looks every LAUNCH_EVERY seconds, so a lost wake costs no job."""
        self._launch_pending()

    def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or None if there is none (or it is another tenant's)."""
        try:
            return self.store.get(job_id, tenant)
        except KeyError:
            return None

    def cancel(self, job_id: str) -> Job | None:
        """Fail the job as cancelled now; its runner stops its trials and is free again."""
        if self.store.fail(job_id, CANCELLED):
            with self.lock:
                entry = self.running.get(job_id)
            if entry is not None:
                self.runners[entry.slot].cancel.remote(job_id)
        return self.get(job_id)

    def ping(self) -> str:
        return "ok"

    def ready(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the pool: the runners said what they hold and
        each has its warm trial workers. `reasoning serve` says it is listening once this
        holds, so that the first job starts as fast as any later one."""
        deadline = time.monotonic() + timeout
        warm = [runner.warm.remote(timeout) for runner in self.runners]
        try:
            all_warm = all(ray.get(warm, timeout=timeout))
        except (RayActorError, GetTimeoutError):
            return False
        return all_warm and self.recovered.wait(max(0.0, deadline - time.monotonic()))

    def runner_of(self, job_id: str) -> str | None:
        """The name of the runner actor that runs this job now, if one does."""
        with self.lock:
            entry = self.running.get(job_id)
        return None if entry is None else runner_name(self.name, entry.slot)

    # -- called by pipeline runners --------------------------------------------------

    def report(self, job_id: str, attempt: int, made: int, **fields: Any) -> None:
        """Progress from a runner, made at `made` (its monotonic clock). Reports from an
        older attempt are ignored, and so are ones a later report overtook."""
        with self.lock:
            current = self.running.get(job_id)
            if (current is None or current.attempt != attempt
                    or made < self.reported.get(job_id, 0)):
                return
            self.reported[job_id] = made
            self.store.report(job_id, **fields)  # under the lock, so in order

    # -- internals -------------------------------------------------------------------

    def _new_runner(self, slot: int) -> Any:
        return runner(self.name, slot, self.stores, self.options)

    def _launch_pending(self) -> None:
        if not self.recovered.is_set():
            return  # the watcher launches once it knows what the runners hold
        with self.lock:
            free = self.max_running - len(self.running) - len(self.restarting)
            if free <= 0:  # the common case under load: no need to read the queue
                return
            # Turns across tenants; a tenant at its cap of running jobs waits its next turn.
            per_tenant = self.limits.running_per_tenant or self.max_running
            running = Counter(entry.tenant for entry in self.running.values())
            for job in self.store.in_turn(limit=free + len(self.running) + QUEUE_LOOKAHEAD):
                if free <= 0:
                    break
                if str(job.job_id) in self.running or running[job.tenant] >= per_tenant:
                    continue
                if self._launch(job):
                    running[job.tenant] += 1
                    free -= 1

    def _launch(self, job: Job, lost: str | None = None) -> bool:
        """Start a new attempt on a free runner (the caller holds the lock); `lost`: how
        the last one ended. Whether it started."""
        job_id = str(job.job_id)
        self.reported.pop(job_id, None)  # a new attempt, maybe on another node's clock
        if job.attempts >= MAX_ATTEMPTS:
            last = f"the last was {lost}" if lost else "see the service logs"
            self.store.fail(job_id, f"failed: the pipeline was lost {MAX_ATTEMPTS} times; "
                            f"{last}")
            return False
        busy = {entry.slot for entry in self.running.values()} | set(self.restarting.values())
        slot = next((i for i in range(self.max_running) if i not in busy), None)
        if slot is None:
            return False  # every runner is busy or starting again: the job waits its turn
        message = "starting" if lost is None else f"re-running: the last attempt was {lost}"
        attempt = self.store.start_attempt(job_id, message)
        if attempt == 0:
            return False
        try:
            ref = self.runners[slot].run.remote(
                job_id, attempt, job.kind, self.store.request(job_id), job.tenant,
                self.limits.time_limit,
            )
        except Exception as err:  # noqa: BLE001 - a job nothing runs must not stay running
            log.exception("could not start the pipeline of job %s", job_id)
            self.store.fail(job_id, f"failed: could not start the pipeline: {err}"[:1000])
            return False
        self.running[job_id] = Running(slot, ref, attempt, job.tenant)
        return True

    def _recover(self) -> None:
        """Reattach to the attempts the runners hold (after a JobManager restart); every
        other job left `running` is re-run by the next launch."""
        held: dict[str, tuple[int, int]] = {}
        for slot, handle in enumerate(self.runners):
            try:
                holding = ray.get(handle.holding.remote(), timeout=RUNNER_ANSWER_WAIT)
            except (RayActorError, GetTimeoutError) as err:
                log.warning("runner %d did not say what it holds: %s", slot, first_line(err))
                with self.lock:
                    self._not_answering(slot, err)
                continue
            if holding is not None:
                held[holding[0]] = (slot, holding[1])
        with self.lock:
            for job in self.store.unfinished():
                job_id = str(job.job_id)
                if job.status != "running":
                    continue
                slot, attempt = held.get(job_id, (-1, -1))
                if attempt == job.attempts:
                    self.running[job_id] = Running(slot, self._outcome(slot, job_id, attempt),
                                                   attempt, job.tenant)
                else:
                    self.store.report(job_id, message="re-running after a restart")
        self.recovered.set()

    def _outcome(self, slot: int, job_id: str, attempt: int) -> ray.ObjectRef:
        return self.runners[slot].outcome.remote(job_id, attempt, OUTCOME_WAIT)

    def _watch(self) -> None:
        """Settle finished attempts and start queued jobs; runs for the actor's life.

        An unexpected error is logged and the loop goes on: a dead watcher would leave
        every job `running` with nothing to settle it.
        """
        while not self.recovered.is_set():
            try:
                self._recover()
            except Exception:  # noqa: BLE001
                log.exception("job watcher: recovering the runners' attempts")
                time.sleep(1)
        launched = 0.0
        while True:
            try:
                if time.monotonic() - launched > LAUNCH_EVERY:
                    launched = time.monotonic()
                    self._launch_pending()
                self._watch_once()
            except Exception:  # noqa: BLE001
                log.exception("job watcher")
                time.sleep(1)

    def _watch_once(self) -> None:
        with self.lock:
            refs = {entry.ref: job_id for job_id, entry in self.running.items()}
            pings = dict(self.restarting)
        if not refs and not pings:
            time.sleep(0.2)
            return
        ready, _ = ray.wait([*refs, *pings], num_returns=1, timeout=0.5)
        for ref in ready:
            if ref in pings:
                self._runner_answered(ref)
            else:
                self._settle(refs[ref], ref)
        if ready:
            self._launch_pending()

    def _restarting(self, slot: int) -> None:
        """Give this slot no attempt until its runner (being started again) answers."""
        self.restarting[self.runners[slot].ping.remote()] = slot

    def _not_answering(self, slot: int, err: Exception) -> None:
        """A runner did not answer: wait for Ray to start it again, or, if it cannot
        start at all (its constructor failed), put a new one in its place, which fails the
        next job given to it saying why (the caller holds the lock)."""
        if isinstance(err, RayActorError) and err.actor_init_failed:
            self.runners[slot] = self._new_runner(slot)
        else:
            self._restarting(slot)

    def _runner_answered(self, ping: ray.ObjectRef) -> None:
        try:
            ray.get(ping)
        except RayActorError as err:
            if not err.actor_init_failed:
                time.sleep(0.2)  # not up yet: ask again shortly
            with self.lock:
                self._not_answering(self.restarting.pop(ping), err)
            return
        with self.lock:
            del self.restarting[ping]

    def _settle(self, job_id: str, ref: ray.ObjectRef) -> None:
        with self.lock:
            entry = self.running[job_id]
        try:
            outcome: Outcome | None = ray.get(ref)
        except RayActorError as err:
            if err.actor_init_failed:
                # The runner's process cannot start (its constructor failed): trying again
                # would fail the same way. Ray does not restart it; a new one is made.
                log.error("the runner of job %s cannot start: %s", job_id, err)
                with self.lock:
                    del self.running[job_id]
                    self.runners[entry.slot] = self._new_runner(entry.slot)
                    self.store.fail(job_id, "failed: could not start the pipeline: "
                                    f"{last_line(err)}"[:1000], str(err))
                return
            # The runner died mid-attempt (killed, node lost); Ray starts it again and
            # removed the placement groups of its trials with it, so nothing is held.
            log.warning("pipeline of job %s was lost: %s", job_id, err)
            with self.lock:
                self._restarting(entry.slot)
            self._relaunch(job_id, f"lost ({first_line(err)})")
            return
        if outcome is None:  # still running: wait again
            with self.lock:
                self.running[job_id] = Running(
                    entry.slot, self._outcome(entry.slot, job_id, entry.attempt), entry.attempt,
                    entry.tenant)
            return
        if outcome.status == "lost":
            self._relaunch(job_id, f"lost ({outcome.message})")
            return
        with self.lock:
            del self.running[job_id]
            self.reported.pop(job_id, None)
        if outcome.status == "completed":
            assert outcome.model_id is not None, "a completed attempt names its model"
            self.store.complete(job_id, outcome.model_id, outcome.message)
        else:
            self.store.fail(job_id, outcome.message, outcome.error)

    def _relaunch(self, job_id: str, lost: str) -> None:
        with self.lock:
            del self.running[job_id]
            self._launch(self.store.get(job_id), lost)


def job_manager(
    stores: Stores,
    max_running_jobs: int = 2,
    options: DistillOptions | None = None,
    limits: JobLimits | None = None,
) -> ray.actor.ActorHandle:
    """Get the JobManager, creating it on first use (detached: it outlives its creator)."""
    # Ray's stubs type .remote() as a handle or the class itself (for method typing).
    return cast(ray.actor.ActorHandle, (
        ray.remote(JobManager)
        .options(
            name=JOB_MANAGER_NAME,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_restarts=-1,
            max_task_retries=-1,
            max_concurrency=64,
        )
        .remote(stores, max_running_jobs, options, JOB_MANAGER_NAME, limits)
    ))
