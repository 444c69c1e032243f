"""The durable record of every job: a small SQLite table that survives any process.

Ray keeps no actor state, so the JobManager writes each change here and reloads it on
start. Rules the store enforces itself: terminal states (completed, failed) never
change, whoever asks; a job is seen only by its tenant; an Idempotency-Key names one
job per tenant; and secret request fields (teacher headers) are stored sealed with the
service's keyring, never in plain text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reasoning.keyring import Keyring
from reasoning.schemas import DEFAULT_TENANT, Job, JobKind, Progress

SECRET_FIELDS = ("teacher_predict_headers",)
"""Request fields that hold credentials for someone else's server."""
SEALED = "<sealed>"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    stage TEXT NOT NULL,
    message TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    request TEXT NOT NULL,
    progress_done INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    model_id TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
)
"""
# Columns added after the first release; an older jobs.sqlite gets them on open.
_ADDED = {
    "tenant": f"TEXT NOT NULL DEFAULT '{DEFAULT_TENANT}'",
    "idempotency_key": "TEXT",
    "fingerprint": "TEXT",
    "sealed": "TEXT",
}
_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (tenant, idempotency_key)"
    " WHERE idempotency_key IS NOT NULL",
    # The JobManager looks for the oldest open jobs at every submit, with thousands queued.
    "CREATE INDEX IF NOT EXISTS jobs_open ON jobs (status, created_at)",
)
_OPEN = "status NOT IN ('completed', 'failed')"


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was used before with a different request."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class JobStore:
    """Jobs in one SQLite file; safe to share between the threads of one process."""

    def __init__(self, path: Path, keyring: Keyring | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._keyring = keyring
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)
        present = {r["name"] for r in self._conn.execute("PRAGMA table_info(jobs)")}
        for column, decl in _ADDED.items():
            if column not in present:
                self._conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {decl}")
        for index in _INDEXES:
            self._conn.execute(index)
        self._lock = threading.Lock()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

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
        with self._tx() as db:
            if idempotency_key is not None:
                earlier = db.execute(
                    "SELECT * FROM jobs WHERE tenant = ? AND idempotency_key = ?",
                    (tenant, idempotency_key),
                ).fetchone()
                if earlier is not None:
                    if earlier["fingerprint"] != fingerprint:
                        raise IdempotencyConflict(
                            f"Idempotency-Key {idempotency_key!r} was already used for job"
                            f" {earlier['job_id']} with a different request"
                        )
                    return _to_job(earlier)
            db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, kind, status, stage, message, dataset_id,"
                " request, created_at, tenant, idempotency_key, fingerprint, sealed)"
                " VALUES (?, ?, 'pending', 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                (str(job_id), kind, "queued", str(dataset_id), json.dumps(stored), _now(),
                 tenant, idempotency_key, fingerprint, sealed),
            )
        return self.get(job_id)

    def get(self, job_id: str, tenant: str | None = None) -> Job:
        """The job, or KeyError (also when it belongs to a tenant other than `tenant`)."""
        row = self._conn.execute("SELECT * FROM jobs WHERE job_id = ?", (str(job_id),)).fetchone()
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise KeyError(job_id)
        return _to_job(row)

    def request(self, job_id: str) -> dict[str, Any]:
        """The job's request as submitted, secret fields unsealed: for its runner only."""
        row = self._conn.execute(
            "SELECT request, sealed FROM jobs WHERE job_id = ?", (str(job_id),)
        ).fetchone()
        if row is None:
            raise KeyError(job_id)
        request = json.loads(row["request"])
        if row["sealed"]:
            request.update(self._need_keyring().unseal(row["sealed"]))
        return request

    def list(
        self, limit: int = 100, status: str | None = None, tenant: str | None = None
    ) -> list[Job]:
        where = [(c, v) for c, v in (("status", status), ("tenant", tenant)) if v]
        sql = "SELECT * FROM jobs" + (
            " WHERE " + " AND ".join(f"{c} = ?" for c, _ in where) if where else ""
        )
        rows = self._conn.execute(
            sql + " ORDER BY created_at DESC LIMIT ?", [*(v for _, v in where), limit]
        )
        return [_to_job(r) for r in rows]

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

    def unfinished(self, limit: int = -1) -> list[Job]:
        """Jobs to (re)run: pending or running, oldest first (at most `limit`; -1: all)."""
        rows = self._conn.execute(
            "SELECT * FROM jobs WHERE status IN ('pending', 'running') ORDER BY created_at"
            " LIMIT ?", (limit,),
        )
        return [_to_job(r) for r in rows]

    def start_attempt(self, job_id: str, message: str) -> int:
        """Mark the job running for a new attempt; returns the attempt number (0 if terminal)."""
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE jobs SET status = 'running', stage = 'queued', message = ?,"
                f" attempts = attempts + 1, started_at = COALESCE(started_at, ?),"
                f" progress_done = 0, progress_total = 0 WHERE job_id = ? AND {_OPEN}",
                (message, _now(), str(job_id)),
            )
            if cur.rowcount == 0:
                return 0
            row = db.execute("SELECT attempts FROM jobs WHERE job_id = ?", (str(job_id),))
            return int(row.fetchone()["attempts"])

    def report(
        self,
        job_id: str,
        *,
        stage: str | None = None,
        message: str | None = None,
        done: int | None = None,
        total: int | None = None,
    ) -> None:
        """Record progress of an open job; a terminal job ignores it."""
        with self._tx() as db:
            db.execute(
                f"UPDATE jobs SET stage = COALESCE(?, stage), message = COALESCE(?, message),"
                f" progress_done = COALESCE(?, progress_done),"
                f" progress_total = COALESCE(?, progress_total) WHERE job_id = ? AND {_OPEN}",
                (stage, message, done, total, str(job_id)),
            )

    def complete(self, job_id: str, model_id: str, message: str) -> bool:
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE jobs SET status = 'completed', stage = 'done', model_id = ?,"
                f" message = ?, finished_at = ?, progress_done = progress_total"
                f" WHERE job_id = ? AND {_OPEN}",
                (str(model_id), message, _now(), str(job_id)),
            )
            return cur.rowcount == 1

    def fail(self, job_id: str, message: str, error: str | None = None) -> bool:
        """Fail an open job with a message a user can act on; `error` keeps the detail."""
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE jobs SET status = 'failed', message = ?, error = ?, finished_at = ?"
                f" WHERE job_id = ? AND {_OPEN}",
                (message, error or message, _now(), str(job_id)),
            )
            return cur.rowcount == 1

    def close(self) -> None:
        self._conn.close()


def _to_job(row: sqlite3.Row) -> Job:
    return Job(
        job_id=row["job_id"],
        status=row["status"],
        message=row["message"],
        dataset_id=row["dataset_id"],
        kind=row["kind"],
        stage=row["stage"],
        progress=Progress(done=row["progress_done"], total=row["progress_total"]),
        model_id=row["model_id"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        attempts=row["attempts"],
        tenant=row["tenant"],
    )
