"""The durable record of every job: the metadata store's `jobs` table.

Ray keeps no actor state, so the JobManager writes each change here and reloads it on
start; ingress replicas read jobs straight from it. Rules the store enforces itself:
terminal states (completed, failed) never change, whoever asks (every change is one
UPDATE conditioned on an open status); a job is seen only by its tenant; an
Idempotency-Key names one job per tenant (a unique index); and secret request fields
(teacher headers) are stored sealed with the service's keyring, never in plain text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, RowMapping, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from reasoning.schemas import DEFAULT_TENANT, OPEN_STATUSES, Job, JobKind, Progress
from reasoning.service.database import jobs, reading, writing
from reasoning.service.keyring import Keyring

SECRET_FIELDS = ("teacher_predict_headers",)
"""Request fields that hold credentials for someone else's server."""
SEALED = "<sealed>"
Jobs = list[Job]
"""For annotations inside `JobStore`, whose `list` method hides the builtin there."""
OPEN = jobs.c.status.in_(OPEN_STATUSES)
"""A job whose state may still change (an IN list, so the (status, created_at) index serves)."""


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was used before with a different request."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class JobStore:
    """Jobs in the metadata store; safe to share between threads and processes."""

    def __init__(self, engine: Engine, keyring: Keyring | None = None) -> None:
        self._engine, self._keyring = engine, keyring

    def create(
        self,
        job_id: str,
        kind: JobKind,
        dataset_id: str,
        request: dict[str, Any],
        tenant: str = DEFAULT_TENANT,
        idempotency_key: str | None = None,
    ) -> Job:
        """Record a new pending job and return it.

        Creating the same job_id again returns the first job. With an idempotency key,
        the tenant's earlier job under that key is returned if its request was the
        same, and IdempotencyConflict is raised if it was not.
        """
        fingerprint = None
        if idempotency_key is not None:
            fingerprint = self._need_keyring().fingerprint({"kind": kind, "request": request})
        stored, sealed = self._seal(request)
        row = dict(
            job_id=str(job_id), kind=kind, status="pending", stage="queued", message="queued",
            dataset_id=str(dataset_id), request=json.dumps(stored), created_at=_now(),
            tenant=tenant, idempotency_key=idempotency_key, fingerprint=fingerprint,
            sealed=sealed, progress_done=0, progress_total=0, attempts=0,
        )
        try:
            with writing(self._engine) as db:
                db.execute(insert(jobs).values(**row))
        except IntegrityError:
            # The id or the tenant's key is taken (perhaps by a submit racing this one).
            pass
        if idempotency_key is not None:
            earlier = self._one(
                (jobs.c.tenant == tenant) & (jobs.c.idempotency_key == idempotency_key))
            if earlier is not None and earlier["fingerprint"] != fingerprint:
                raise IdempotencyConflict(
                    f"Idempotency-Key {idempotency_key!r} was already used for job"
                    f" {earlier['job_id']} with a different request"
                )
            if earlier is not None:
                return _to_job(earlier)
        return self.get(job_id)

    def by_key(self, tenant: str, idempotency_key: str) -> Job | None:
        """The tenant's job made under this Idempotency-Key, if there is one."""
        row = self._one((jobs.c.tenant == tenant) & (jobs.c.idempotency_key == idempotency_key))
        return None if row is None else _to_job(row)

    def _one(self, where: Any) -> RowMapping | None:
        with reading(self._engine) as db:
            return db.execute(select(jobs).where(where)).mappings().first()

    def get(self, job_id: str, tenant: str | None = None) -> Job:
        """The job, or KeyError (also when it belongs to a tenant other than `tenant`)."""
        row = self._one(jobs.c.job_id == str(job_id))
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise KeyError(job_id)
        return _to_job(row)

    def error_detail(self, job_id: str) -> str | None:
        """What ended a failed job, traceback and all: for operators (`reasoning admin
        show-job`), never in the API's answers, which carry its last line only."""
        row = self._one(jobs.c.job_id == str(job_id))
        if row is None:
            raise KeyError(job_id)
        return row["error"]

    def request(self, job_id: str) -> dict[str, Any]:
        """The job's request as submitted, secret fields unsealed: for its runner only."""
        row = self._one(jobs.c.job_id == str(job_id))
        if row is None:
            raise KeyError(job_id)
        request = json.loads(row["request"])
        if row["sealed"]:
            request.update(self._need_keyring().unseal(row["sealed"]))
        return request

    def list(
        self, limit: int = 100, status: str | None = None, tenant: str | None = None
    ) -> list[Job]:
        query = select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(jobs.c.status == status)
        if tenant:
            query = query.where(jobs.c.tenant == tenant)
        with reading(self._engine) as db:
            return [_to_job(r) for r in db.execute(query).mappings()]

    def _seal(self, request: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The request to store in plain text (secret values masked), and the sealed rest."""
        secret = {f: request[f] for f in SECRET_FIELDS if request.get(f)}
        if not secret:
            return request, None
        masked = {f: {name: SEALED for name in value} for f, value in secret.items()}
        return {**request, **masked}, self._need_keyring().seal(secret)

    def _need_keyring(self) -> Keyring:
        if self._keyring is None:
            raise RuntimeError("this JobStore was opened without the service's keyring")
        return self._keyring

    def in_turn(self, limit: int) -> Jobs:
        """Jobs to start, at most `limit`: ones marked running (an attempt that was lost)
        first, then pending ones taking turns across tenants, each tenant's oldest before
        anyone's second, so a tenant's thousand queued jobs do not hold up another's one."""
        turn = func.row_number().over(partition_by=jobs.c.tenant, order_by=jobs.c.created_at)
        ranked = (select(jobs, turn.label("turn"))
                  .where(OPEN).subquery())
        query = (select(ranked)
                 .order_by((ranked.c.status == "pending"), ranked.c.turn, ranked.c.created_at)
                 .limit(limit))
        with reading(self._engine) as db:
            return [_to_job(r) for r in db.execute(query).mappings()]

    def open_on_dataset(self, dataset_id: str, tenant: str) -> tuple[str, ...]:
        """The tenant's pending or running jobs on this dataset, oldest first: they read
        it when they start (or restart), so it must not change under them."""
        query = (select(jobs.c.job_id)
                 .where(OPEN & (jobs.c.tenant == tenant) & (jobs.c.dataset_id == dataset_id))
                 .order_by(jobs.c.created_at))
        with reading(self._engine) as db:
            return tuple(str(job_id) for job_id in db.execute(query).scalars())

    def pending_count(self, tenant: str) -> int:
        """The tenant's jobs waiting for a runner."""
        query = (select(func.count()).select_from(jobs)
                 .where((jobs.c.tenant == tenant) & (jobs.c.status == "pending")))
        with reading(self._engine) as db:
            return int(db.execute(query).scalar() or 0)

    def unfinished(self, limit: int | None = None) -> Jobs:
        """Jobs to (re)run: pending or running, oldest first (at most `limit`)."""
        query = (select(jobs).where(OPEN)
                 .order_by(jobs.c.created_at).limit(limit))
        with reading(self._engine) as db:
            return [_to_job(r) for r in db.execute(query).mappings()]

    def start_attempt(self, job_id: str, message: str) -> int:
        """Mark the job running for a new attempt; returns the attempt number (0 if terminal)."""
        with writing(self._engine) as db:
            attempts = db.execute(
                update(jobs)
                .where((jobs.c.job_id == str(job_id)) & OPEN)
                .values(status="running", stage="queued", message=message,
                        attempts=jobs.c.attempts + 1,
                        started_at=func.coalesce(jobs.c.started_at, _now()),
                        progress_done=0, progress_total=0, progress_best=None)
                .returning(jobs.c.attempts)
            ).scalar()
        return int(attempts or 0)

    def report(
        self,
        job_id: str,
        *,
        stage: str | None = None,
        message: str | None = None,
        done: int | None = None,
        total: int | None = None,
        best: float | None = None,
    ) -> None:
        """Record progress of an open job; a terminal job ignores it."""
        values = {k: v for k, v in (("stage", stage), ("message", message),
                                    ("progress_done", done), ("progress_total", total),
                                    ("progress_best", best))
                  if v is not None}
        if values:
            self._update_open(job_id, **values)

    def complete(self, job_id: str, model_id: str, message: str) -> bool:
        return self._update_open(
            job_id, status="completed", stage="done", model_id=str(model_id), message=message,
            finished_at=_now(), progress_done=jobs.c.progress_total,
        )

    def fail(self, job_id: str, message: str, error: str | None = None) -> bool:
        """Fail an open job with a message a user can act on; `error` keeps the detail."""
        return self._update_open(
            job_id, status="failed", message=message, error=error or message, finished_at=_now()
        )

    def _update_open(self, job_id: str, **values: Any) -> bool:
        """Change an open job; False if it is terminal (or unknown)."""
        with writing(self._engine) as db:
            changed = db.execute(
                update(jobs).where((jobs.c.job_id == str(job_id)) & OPEN).values(**values)
            )
            return changed.rowcount == 1


@dataclass(frozen=True)
class JobLimits:
    """How the queue is shared: caps per tenant, and how long one attempt may run."""

    running_per_tenant: int | None = None
    """Jobs of one tenant running at once (None: as many as there are runners); the
    queue takes turns across tenants whatever this is."""
    pending_per_tenant: int = 100
    """Jobs of one tenant waiting for a runner; a submit beyond is a 429."""
    time_limit: float = 6 * 3600.0
    """Seconds one attempt may run before the job fails saying so."""


def last_line(text: str) -> str:
    """A traceback's (or a Ray error's) last line: the exception's own words ("" for
    none). Callers see a stored error so: file paths and code of the service are nobody
    else's business."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _to_job(row: RowMapping) -> Job:
    return Job(
        job_id=row["job_id"],
        status=row["status"],
        message=row["message"],
        dataset_id=row["dataset_id"],
        kind=row["kind"],
        stage=row["stage"],
        progress=Progress(done=row["progress_done"], total=row["progress_total"],
                          best=row["progress_best"]),
        model_id=row["model_id"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=None if row["error"] is None else last_line(row["error"])[:500] or None,
        attempts=row["attempts"],
        tenant=row["tenant"],
    )
