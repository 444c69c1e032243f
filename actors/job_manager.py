"""The JobManager: one named, detached actor that owns every job's pipeline task.

Its state is the SQLite JobStore, written on every change and read back in __init__,
so when Ray restarts the actor (or the whole service restarts) every job that was
pending or running is launched again: fits are deterministic, so a re-run gives the
model the lost run would have given. The pipeline tasks it owns die with it, which
is what keeps a job from running twice.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import ray
from ray.exceptions import RayTaskError, TaskCancelledError

from actors import JOB_MANAGER_NAME, NAMESPACE
from actors.pipeline import run_fit_job
from reasoning.home import Home
from reasoning.jobs import JobStore
from reasoning.schemas import Job, JobKind
from reasoning.training import JobFailure

log = logging.getLogger(__name__)
CANCELLED = "cancelled by request"


class JobManager:
    """Submit, track, cancel and re-run jobs; every method is quick and thread-safe."""

    def __init__(self, home: str, max_running_jobs: int = 2) -> None:
        self.home = home
        self.max_running = max_running_jobs
        self.store = JobStore(Home.at(home).jobs_db)
        self.lock = threading.Lock()
        self.running: dict[str, tuple[ray.ObjectRef, int]] = {}
        for job in self.store.unfinished():
            if job.status == "running":
                self.store.report(str(job.job_id), message="re-running after a restart")
        threading.Thread(target=self._watch, name="job-watcher", daemon=True).start()

    # -- called by the ingress -------------------------------------------------------

    def submit(self, job_id: str, kind: JobKind, request_json: dict[str, Any]) -> Job:
        """Record the job and start it when a slot is free; the same job_id is a no-op."""
        job = self.store.create(job_id, kind, request_json["dataset_id"], request_json)
        self._launch_pending()
        return job

    def get(self, job_id: str) -> Job | None:
        try:
            return self.store.get(job_id)
        except KeyError:
            return None

    def list(self, limit: int = 100, status: str | None = None) -> list[Job]:
        return self.store.list(limit=limit, status=status)

    def cancel(self, job_id: str) -> Job | None:
        """Fail the job as cancelled and kill its pipeline (and with it, its trials)."""
        if self.store.fail(job_id, CANCELLED):
            with self.lock:
                entry = self.running.pop(job_id, None)
            if entry is not None:
                ray.cancel(entry[0], force=True, recursive=True)
            self._launch_pending()
        return self.get(job_id)

    def ping(self) -> str:
        return "ok"

    # -- called by pipeline tasks ----------------------------------------------------

    def report(self, job_id: str, attempt: int, **fields: Any) -> None:
        """Progress from a pipeline; reports from an older attempt are ignored."""
        with self.lock:
            current = self.running.get(job_id)
        if current is not None and current[1] == attempt:
            self.store.report(job_id, **fields)

    # -- internals -------------------------------------------------------------------

    def _launch_pending(self) -> None:
        with self.lock:
            free = self.max_running - len(self.running)
            if free <= 0:
                return
            queued = [j for j in self.store.unfinished() if str(j.job_id) not in self.running]
            for job in queued[:free]:
                job_id = str(job.job_id)
                attempt = self.store.start_attempt(job_id, "starting")
                if attempt == 0:
                    continue
                ref = run_fit_job.remote(
                    job_id, attempt, job.kind, self.store.request(job_id), self.home
                )
                self.running[job_id] = (ref, attempt)

    def _watch(self) -> None:
        """Settle finished pipelines and start queued jobs; runs for the actor's life."""
        self._launch_pending()
        while True:
            with self.lock:
                refs = {ref: job_id for job_id, (ref, _) in self.running.items()}
            if not refs:
                time.sleep(0.2)
                continue
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            for ref in ready:
                self._settle(refs[ref], ref)
            if ready:
                self._launch_pending()

    def _settle(self, job_id: str, ref: ray.ObjectRef) -> None:
        with self.lock:
            if self.running.get(job_id, (None,))[0] == ref:
                del self.running[job_id]
        try:
            result = ray.get(ref)
        except TaskCancelledError:
            self.store.fail(job_id, CANCELLED)
        except RayTaskError as err:
            cause = getattr(err, "cause", None) or err
            if isinstance(cause, JobFailure):
                self.store.fail(job_id, f"failed: {cause}", str(err))
            else:
                stage = self.store.get(job_id).stage
                self.store.fail(
                    job_id, f"failed during {stage}: {type(cause).__name__}: {cause}"[:1000],
                    str(err),
                )
        except Exception as err:  # worker or node lost beyond the task's retries
            self.store.fail(job_id, f"failed: the job's worker was lost ({err})"[:1000], repr(err))
        else:
            self.store.complete(job_id, result["model_id"], result["message"])


def job_manager(home: str, max_running_jobs: int = 2) -> ray.actor.ActorHandle:
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
        .remote(home, max_running_jobs)
    )
