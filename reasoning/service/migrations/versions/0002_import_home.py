"""Import a home written before the metadata store: its jobs, keys, datasets and models.

Until this release, jobs lived in `<home>/jobs.sqlite`, keys and refresh tokens in
`<home>/auth.sqlite`, and each dataset and model in a folder with its metadata as JSON.
This copies every record into the new tables and every file into the artifact store;
the old files stay where they were (nothing is deleted), so going back stays possible.
A database upgraded without a home (a cluster's, say) has nothing to import.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import json
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    home: Path | None = context.config.attributes.get("home")
    artifacts = context.config.attributes.get("artifacts")
    if home is None or artifacts is None:
        return
    bind = op.get_bind()
    for table, source in (("jobs", "jobs.sqlite"), ("api_keys", "auth.sqlite"),
                          ("refresh_tokens", "auth.sqlite")):
        _copy_rows(bind, table, home / source)
    for folder in _folders(home / "datasets", "meta.json"):
        info = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        artifacts.put(f"datasets/{folder.name}/data.parquet",
                      (folder / "data.parquet").read_bytes())
        _insert(bind, "datasets", "dataset_id", {
            "dataset_id": folder.name, "tenant": info.get("tenant", "default"),
            "created_at": info["created_at"], "info": json.dumps(info)})
    for folder in _folders(home / "models", "card.json"):
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        artifacts.put(f"models/{folder.name}/model.pkl", (folder / "model.pkl").read_bytes())
        _insert(bind, "models", "model_id", {
            "model_id": folder.name, "tenant": card.get("tenant", "default"),
            "created_at": card["created_at"], "card": json.dumps(card)})


def _folders(root: Path, marker: str) -> list[Path]:
    """Complete folders only: one a crash left half-written (hidden, or without its
    metadata file) was never visible, and is not made visible now."""
    if not root.is_dir():
        return []
    return sorted(
        d for d in root.iterdir() if not d.name.startswith(".") and (d / marker).is_file()
    )


def _copy_rows(bind: sa.Connection, table: str, path: Path) -> None:
    if not path.is_file():
        return
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    source.row_factory = sqlite3.Row
    try:
        if not source.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
            return
        rows = [dict(r) for r in source.execute(f"SELECT * FROM {table}")]  # noqa: S608
    finally:
        source.close()
    target = sa.Table(table, sa.MetaData(), autoload_with=bind)
    key = next(iter(target.primary_key.columns)).name
    for row in rows:
        _insert(bind, table, key, {k: v for k, v in row.items() if k in target.columns})


def _insert(bind: sa.Connection, table: str, key: str, row: dict[str, Any]) -> None:
    """Insert unless a row with that key is there: an import run twice adds nothing."""
    target = sa.table(table, *(sa.column(c) for c in row))
    if bind.execute(sa.select(target.c[key]).where(target.c[key] == row[key])).first() is None:
        bind.execute(sa.insert(target).values(**row))
