"""The durable record of every job: a small SQLite table that survives any process.

Ray keeps no actor state, so the JobManager writes each change here and reloads it on
start. The one rule the store enforces itself: terminal states (completed, failed)
never change, whoever asks.
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

from reasoning.schemas import Job, JobKind, Progress

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
_OPEN = "status NOT IN ('completed', 'failed')"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class JobStore:
    """Jobs in one SQLite file; safe to share between the threads of one process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)
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
        self, job_id: str, kind: JobKind, dataset_id: str, request: dict[str, Any]
    ) -> Job:
        """Record a new pending job; creating the same job_id again returns the first one."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, kind, status, stage, message, dataset_id,"
                " request, created_at) VALUES (?, ?, 'pending', 'queued', ?, ?, ?, ?)",
                (str(job_id), kind, "queued", str(dataset_id), json.dumps(request), _now()),
            )
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        """The job, or KeyError."""
        row = self._conn.execute("SELECT * FROM jobs WHERE job_id = ?", (str(job_id),)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return _to_job(row)

    def request(self, job_id: str) -> dict[str, Any]:
        row = self._conn.execute(
            "SELECT request FROM jobs WHERE job_id = ?", (str(job_id),)
        ).fetchone()
        if row is None:
            raise KeyError(job_id)
        return json.loads(row["request"])

    def list(self, limit: int = 100, status: str | None = None) -> list[Job]:
        sql, args = "SELECT * FROM jobs", []
        if status:
            sql, args = sql + " WHERE status = ?", [status]
        rows = self._conn.execute(sql + " ORDER BY created_at DESC LIMIT ?", [*args, limit])
        return [_to_job(r) for r in rows]

    def unfinished(self) -> list[Job]:
        """Jobs to (re)run after a start: pending or running, oldest first."""
        rows = self._conn.execute(f"SELECT * FROM jobs WHERE {_OPEN} ORDER BY created_at")
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
    )
