"""The JobManager: one named, detached actor that tracks every job and its pipeline.

Its state is the SQLite JobStore, written on every change and read back in __init__.
Each running job has a detached PipelineRunner actor; after a JobManager restart the
new instance reattaches to the runners that survived, and re-runs (fits are
deterministic) the jobs whose runner is gone, e.g. after a restart of the whole
service. A job is never left `running` without something running it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors import JOB_MANAGER_NAME, NAMESPACE, first_line
from actors.pipeline import CANCELLED, Outcome, find_runner, start_runner
from reasoning.distill import DistillOptions
from reasoning.home import Home
from reasoning.jobs import JobStore
from reasoning.keyring import Keyring
from reasoning.schemas import Job, JobKind

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
"""A runner that dies (node lost, killed) is replaced this many times in all."""
OUTCOME_WAIT = 30.0
"""Seconds one outcome() call waits before the watcher asks again: a call left waiting by
a killed JobManager then frees its runner thread soon, so restarts cannot use them up."""


class JobManager:
    """Submit, track, cancel and re-run jobs; every method is quick and thread-safe."""

    def __init__(
        self, home: str, max_running_jobs: int = 2, options: DistillOptions | None = None
    ) -> None:
        self.home = home
        self.max_running = max_running_jobs
        self.options = options or DistillOptions()
        paths = Home.at(home)
        self.store = JobStore(paths.jobs_db, Keyring.at(paths.secret_key))
        self.lock = threading.Lock()
        # job_id -> (runner, its outcome() ref, attempt)
        self.running: dict[str, tuple[Any, ray.ObjectRef, int]] = {}
        # job_id -> when the latest report recorded for its running attempt was made
        self.reported: dict[str, int] = {}
        for job in self.store.unfinished():
            runner = find_runner(str(job.job_id)) if job.status == "running" else None
            if runner is not None:
                self.running[str(job.job_id)] = (runner, _outcome(runner), job.attempts)
            elif job.status == "running":
                self.store.report(str(job.job_id), message="re-running after a restart")
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

    def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or None if there is none (or it is another tenant's)."""
        try:
            return self.store.get(job_id, tenant)
        except KeyError:
            return None

    def list(
        self, limit: int = 100, status: str | None = None, tenant: str | None = None
    ) -> list[Job]:
        return self.store.list(limit=limit, status=status, tenant=tenant)

    def cancel(self, job_id: str) -> Job | None:
        """Fail the job as cancelled now; its runner stops its trials and ends."""
        if self.store.fail(job_id, CANCELLED):
            with self.lock:
                entry = self.running.get(job_id)
            if entry is not None:
                entry[0].cancel.remote()
        return self.get(job_id)

    def ping(self) -> str:
        return "ok"

    # -- called by pipeline runners --------------------------------------------------

    def report(self, job_id: str, attempt: int, made: int, **fields: Any) -> None:
        """Progress from a runner, made at `made` (its monotonic clock). Reports from an
        older attempt are ignored, and so are ones a later report overtook."""
        with self.lock:
            current = self.running.get(job_id)
            if current is None or current[2] != attempt or made < self.reported.get(job_id, 0):
                return
            self.reported[job_id] = made
            self.store.report(job_id, **fields)  # under the lock, so in order

    # -- internals -------------------------------------------------------------------

    def _launch_pending(self) -> None:
        with self.lock:
            free = self.max_running - len(self.running)
            if free <= 0:  # the common case under load: no need to read the queue
                return
            oldest = self.store.unfinished(limit=free + len(self.running))
            queued = [j for j in oldest if str(j.job_id) not in self.running]
            for job in queued[:free]:
                self._launch(job)

    def _launch(self, job: Job, lost: str | None = None) -> None:
        """Start a new attempt (the caller holds the lock); `lost`: how the last one ended."""
        job_id = str(job.job_id)
        self.reported.pop(job_id, None)  # a new runner, maybe on another node's clock
        if job.attempts >= MAX_ATTEMPTS:
            last = f"the last was {lost}" if lost else "see the service logs"
            self.store.fail(job_id, f"failed: the pipeline was lost {MAX_ATTEMPTS} times; "
                            f"{last}")
            return
        message = "starting" if lost is None else f"re-running: the last attempt was {lost}"
        attempt = self.store.start_attempt(job_id, message)
        if attempt == 0:
            return
        try:
            runner = start_runner(
                job_id, attempt, job.kind, self.store.request(job_id), self.home, self.options,
                job.tenant,
            )
        except Exception as err:  # noqa: BLE001 - a job nothing runs must not stay running
            log.exception("could not start the pipeline of job %s", job_id)
            self.store.fail(job_id, f"failed: could not start the pipeline: {err}"[:1000])
            return
        self.running[job_id] = (runner, _outcome(runner), attempt)

    def _watch(self) -> None:
        """Settle finished attempts and start queued jobs; runs for the actor's life.

        An unexpected error is logged and the loop goes on: a dead watcher would leave
        every job `running` with nothing to settle it.
        """
        self._launch_pending()
        while True:
            try:
                self._watch_once()
            except Exception:  # noqa: BLE001
                log.exception("job watcher")
                time.sleep(1)

    def _watch_once(self) -> None:
        with self.lock:
            refs = {ref: job_id for job_id, (_, ref, _) in self.running.items()}
        if not refs:
            time.sleep(0.2)
            return
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
        for ref in ready:
            self._settle(refs[ref], ref)
        if ready:
            self._launch_pending()

    def _settle(self, job_id: str, ref: ray.ObjectRef) -> None:
        with self.lock:
            runner, _, attempt = self.running[job_id]
        try:
            outcome: Outcome | None = ray.get(ref)
        except RayActorError as err:
            # The runner died mid-attempt (killed, node lost): run the job again; _launch
            # caps the attempts. Ray removed the placement groups of the dead runner's
            # trials with it (they belong to the detached runner), so nothing is held.
            log.warning("pipeline of job %s was lost: %s", job_id, err)
            with self.lock:
                del self.running[job_id]
                self._launch(self.store.get(job_id),
                             f"lost ({first_line(err)})")
            return
        if outcome is None:  # still running: wait again
            with self.lock:
                self.running[job_id] = (runner, _outcome(runner), attempt)
            return
        with self.lock:
            del self.running[job_id]
            self.reported.pop(job_id, None)
        ray.kill(runner)
        if outcome.status == "completed":
            self.store.complete(job_id, outcome.model_id, outcome.message)
        else:
            self.store.fail(job_id, outcome.message, outcome.error)


def _outcome(runner: ray.actor.ActorHandle) -> ray.ObjectRef:
    return runner.outcome.remote(OUTCOME_WAIT)


def job_manager(
    home: str, max_running_jobs: int = 2, options: DistillOptions | None = None
) -> ray.actor.ActorHandle:
    """Get the JobManager, creating it on first use (detached: it outlives its creator)."""
    return (
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
        .remote(home, max_running_jobs, options)
    )
