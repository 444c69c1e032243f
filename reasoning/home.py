"""The service's home folder: the one place where all of its state lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    """Paths under the home; on a cluster the home must be storage every node shares."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> Home:
        path = Path(root).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def jobs_db(self) -> Path:
        return self.root / "jobs.sqlite"

    @property
    def auth_db(self) -> Path:
        """Tenants' API keys and refresh tokens, stored as hashes only."""
        return self.root / "auth.sqlite"

    @property
    def secret_key(self) -> Path:
        """The service secret that signs tokens and seals teacher headers (mode 0600)."""
        return self.root / "secret.key"

    @property
    def tune(self) -> Path:
        return self.root / "tune"

    @property
    def service_file(self) -> Path:
        """Written by `reasoning serve`: its URL and Ray address, for tools and tests."""
        return self.root / "service.json"
