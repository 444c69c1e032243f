"""The stores every store-touching unit test runs against: SQLite in a temporary home,
and a real PostgreSQL server on loopback (one per session, tables emptied per test), so
each rule of the metadata store is proven on both databases the service supports."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from reasoning.service.database import METADATA, engine
from reasoning.service.stores import Stores
from tests.postgres import PostgresServer, postgres_binaries

DATABASES = ("sqlite", "postgresql")


_DATABASE_NUMBERS = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if postgres_binaries() is None:
        pytest.fail("PostgreSQL's server is not installed: run tests/install_postgres.sh")
    with PostgresServer() as server:
        yield server


def fresh_stores(
    kind: str, home: Path, request: pytest.FixtureRequest, new_database: bool = False
) -> Stores:
    """Stores on an empty, migrated database of this kind, artifacts under `home`.

    PostgreSQL tests share one migrated database, emptied per test (cheaper than one
    each); `new_database` gives a never-migrated one, for tests of the migrations.
    """
    if kind == "sqlite":
        stores = Stores.resolve(home)
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = (server.create_database(f"test_{next(_DATABASE_NUMBERS)}") if new_database
               else server.url)
        stores = Stores.resolve(home, database=url)
    stores.upgrade()
    if kind == "postgresql" and not new_database:
        names = ", ".join(t.name for t in METADATA.sorted_tables)
        with engine(stores.database).begin() as db:
            db.execute(text(f"TRUNCATE {names}"))
    return stores


@pytest.fixture(params=DATABASES)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    return fresh_stores(request.param, tmp_path / "home", request)
