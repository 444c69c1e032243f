"""The metadata store: one SQL database, named by a SQLAlchemy URL, for every record.

Jobs and idempotency keys, the dataset and model catalogs, API keys and refresh tokens
live here; file-sized things (tables, pickled models) live in the artifact store and are
reached through their catalog row. SQLite (a file under the home) is the zero-set-up
default; PostgreSQL serves a cluster, where every host reaches the same server.

The tables are SQLAlchemy Core, written so that each rule holds on both databases:
state changes are single conditional UPDATEs, uniqueness is a constraint, and
read-modify-write sequences check what they changed. The schema itself belongs to the
Alembic migrations in `reasoning/service/migrations/`: `upgrade` applies them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url

METADATA = MetaData()

jobs = Table(
    "jobs", METADATA,
    Column("job_id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("dataset_id", String(64), nullable=False),
    Column("request", Text, nullable=False),
    Column("sealed", Text),
    Column("idempotency_key", String(255)),
    Column("fingerprint", String(64)),
    Column("progress_done", Integer, nullable=False, default=0),
    Column("progress_total", Integer, nullable=False, default=0),
    Column("progress_best", Float, comment="best trial score so far (since 0004)"),
    Column("model_id", String(64)),
    Column("created_at", String(40), nullable=False),
    Column("started_at", String(40)),
    Column("finished_at", String(40)),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, default=0),
    # NULL keys are distinct in both databases, so keyless jobs never collide.
    Index("jobs_idempotency", "tenant", "idempotency_key", unique=True),
    # The JobManager looks for the oldest open jobs at every submit, with thousands queued.
    Index("jobs_open", "status", "created_at"),
    Index("jobs_tenant", "tenant", "created_at"),
)



def _catalog(name: str, key: str, body: str, what: str, artifact: str, *extra: Column) -> Table:
    """A catalog table: one JSON `body` per stored artifact, by tenant, newest first."""
    return Table(
        name, METADATA,
        Column(key, String(36), primary_key=True),
        Column("tenant", String(64), nullable=False),
        Column("created_at", String(40), nullable=False),
        Column(body, Text, nullable=False, comment=f"the {what}, as JSON"),
        *extra,
        Column("bytes", BigInteger, comment=f"size of the stored {artifact} (since 0005)"),
        Index(f"{name}_tenant", "tenant", "created_at"),
    )


datasets = _catalog(
    "datasets", "dataset_id", "info", "DatasetInfo", "Parquet",
    Column("stats", Text, comment="each column's ColumnSummary, as JSON (since 0003)"),
)
models = _catalog("models", "model_id", "card", "ModelCard", "pickle")

api_keys = Table(
    "api_keys", METADATA,
    Column("key_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

refresh_tokens = Table(
    "refresh_tokens", METADATA,
    Column("token_id", String(32), primary_key=True),
    Column("family_id", String(32), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
    Column("revoked", Integer, nullable=False, default=0),
    Index("refresh_family", "family_id"),
)

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine(url: str) -> Engine:
    """The process's engine for `url` (one pool per database, shared by every store)."""
    with _ENGINES_LOCK:
        if url not in _ENGINES:
            _ENGINES[url] = _create(url)
        return _ENGINES[url]


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: a server restarted under a long-lived replica costs one retry, not a 500.
        return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    created = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    # SQLite's Python driver begins transactions on its own, too late for a writer to
    # wait its turn. The recipe from SQLAlchemy's docs: take control of BEGIN, and make
    # every transaction IMMEDIATE (the write lock up front, waited for up to `timeout`),
    # so a read-then-write never fails half-way on a lock; autocommit reads take none.
    @event.listens_for(created, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(created, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return created


@contextmanager
def writing(bound: Engine) -> Iterator[Connection]:
    """One transaction: committed on leaving, rolled back on an exception."""
    with bound.begin() as connection:
        yield connection


@contextmanager
def reading(bound: Engine) -> Iterator[Connection]:
    """A connection for reads that take no lock (each statement sees committed rows)."""
    with bound.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


def catalog_id(value: object) -> str:
    """A dataset's or model's id as a UUID's text; KeyError for anything else (so an id
    is never a query fragment nor a path)."""
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except (ValueError, AttributeError, TypeError):
        raise KeyError(value) from None


def catalog_entry(bound: Engine, body: Column, key: object, tenant: str | None) -> str | None:
    """The JSON `body` of one catalog row (datasets' info, models' card), or None when there
    is no such row, or it is not `tenant`'s."""
    table = body.table
    primary = next(iter(table.primary_key.columns))
    with reading(bound) as db:
        row = db.execute(
            select(table.c.tenant, body).where(primary == catalog_id(key))
        ).first()
    if row is None or (tenant is not None and row[0] != tenant):
        return None
    return row[1]


def catalog_entries(bound: Engine, body: Column, tenant: str | None) -> list[str]:
    """The JSON `body` of every catalog row (of `tenant`), newest first."""
    table = body.table
    query = select(body).order_by(table.c.created_at.desc())
    if tenant is not None:
        query = query.where(table.c.tenant == tenant)
    with reading(bound) as db:
        return list(db.execute(query).scalars())


def stored_bytes(bound: Engine, tenant: str) -> int:
    """What the tenant's datasets and models take in the artifact store (objects stored
    before sizes were kept count as nothing)."""
    total = 0
    with reading(bound) as db:
        for table in (datasets, models):
            query = select(func.coalesce(func.sum(table.c.bytes), 0)).where(
                table.c.tenant == tenant)
            total += int(db.execute(query).scalar() or 0)
    return total


def upgrade(url: str, home: Path | None = None, artifacts: Any = None) -> str:
    """Apply every pending migration; returns the revision the database is now at.

    `home` and `artifacts` (an ArtifactStore) let the data migration import a home
    written before the metadata store existed; without them it imports nothing.
    """
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes.update(home=home, artifacts=artifacts)
    with engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return MigrationContext.configure(connection).get_current_revision() or ""
