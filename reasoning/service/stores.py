"""Where the service keeps its state: a metadata store, an artifact store and a secret.

Named the way MLflow names its backend and artifact stores: a SQLAlchemy URL and a URI.
With neither given, both live under the home folder (`<home>/reasoning.db`,
`<home>/artifacts/`), so a laptop needs nothing set up. A cluster gives a PostgreSQL URL,
an `s3://` URI and a mounted secret file, and then no process touches the home at all.

`Stores` is a small frozen value: the service passes it to every actor, and each
process opens what it needs from it (one engine per database per process).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from reasoning.service import database
from reasoning.service.artifacts import ArtifactStore
from reasoning.service.auth import CredentialStore, TokenPolicy
from reasoning.service.dataset_store import DatasetStore
from reasoning.service.jobs import JobStore
from reasoning.service.keyring import Keyring
from reasoning.service.registry import ModelRegistry

PRIVATE_UMASK = 0o077


def keep_private() -> None:
    """Files and folders this process makes from now on are its user's alone: the home
    holds the service secret, key hashes and every tenant's data. Each process of the
    service that writes state calls it (the CLI before Ray starts, so a local Ray's
    workers inherit it; actors and replicas again, for a Ray someone else started)."""
    os.umask(PRIVATE_UMASK)


@dataclass(frozen=True)
class Stores:
    """The three places of the service's state, as strings every host can resolve."""

    home: str
    database: str
    """SQLAlchemy URL of the metadata store."""
    artifacts: str
    """A local folder or `s3://bucket/prefix`."""
    secret_key_file: str
    """The service secret (32 bytes): made on first use if it is the home's default."""

    @classmethod
    def resolve(
        cls,
        home: str | Path,
        database: str | None = None,
        artifacts: str | None = None,
        secret_key_file: str | None = None,
    ) -> Stores:
        """The stores for these settings, defaults under `home` (not created here)."""
        root = Path(home).expanduser().resolve()
        stores = cls(
            home=str(root),
            database=database or f"sqlite:///{root / 'reasoning.db'}",
            artifacts=_absolute(artifacts) if artifacts else str(root / "artifacts"),
            secret_key_file=_absolute(secret_key_file or root / "secret.key"),
        )
        if not stores.uses_home and Path(stores.secret_key_file).is_relative_to(root):
            raise ValueError(
                "with a database URL and an s3:// artifact store, the service keeps nothing"
                " under its home: name the service secret with REASONING_SECRET_KEY_FILE (a"
                " file holding 32 random bytes, the same on every host, e.g. a mounted"
                " Kubernetes secret)"
            )
        return stores

    @property
    def uses_home(self) -> bool:
        """False when the metadata and artifacts are remote: no home then, on any host."""
        return database.is_sqlite(self.database) or not self.artifacts.startswith("s3://")

    def engine(self) -> Engine:
        return database.engine(self.database)

    def artifact_store(self) -> ArtifactStore:
        return _artifact_store(self.artifacts)

    def keyring(self) -> Keyring:
        """Keys from the secret. A named secret file is never made here: a host that made
        its own would sign and seal with a secret no other host has."""
        path = Path(self.secret_key_file)
        if path != Path(self.home) / "secret.key" and not path.is_file():
            raise FileNotFoundError(
                f"the service secret {path} (REASONING_SECRET_KEY_FILE) does not exist here;"
                " make one with `head -c 32 /dev/urandom` and give every host the same file"
            )
        return Keyring.at(path)

    def upgrade(self) -> str:
        """Migrate the metadata store to this release (importing an older home's state)."""
        home = Path(self.home) if self.uses_home and Path(self.home).is_dir() else None
        return database.upgrade(self.database, home, self.artifact_store())

    def jobs(self) -> JobStore:
        return JobStore(self.engine(), self.keyring())

    def datasets(self) -> DatasetStore:
        return DatasetStore(self.engine(), self.artifact_store())

    def models(self) -> ModelRegistry:
        return ModelRegistry(self.engine(), self.artifact_store())

    def credentials(self, policy: TokenPolicy | None = None) -> CredentialStore:
        return CredentialStore(self.engine(), self.keyring(), policy)


def _absolute(place: str | Path) -> str:
    """A local path made absolute here, since actors resolve it in their own folders."""
    if str(place).startswith("s3://"):
        return str(place)
    return str(Path(str(place).removeprefix("file://")).expanduser().absolute())


@functools.lru_cache(maxsize=8)
def _artifact_store(uri: str) -> ArtifactStore:
    """One filesystem object per process and URI (S3 clients are costly to make)."""
    return ArtifactStore(uri)
