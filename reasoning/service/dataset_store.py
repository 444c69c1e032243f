"""Where datasets live: the Parquet file in the artifact store, its `DatasetInfo` and each
column's statistics in the metadata store's catalog.

Stored datasets are immutable but for their column types (`DatasetStore.retype`, a PATCH):
`datasets/<id>/data.parquet` in the artifact store, written whole, and the catalog row
written after it, so nobody ever reads half a dataset.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, insert, update

from reasoning.column_stats import ColumnSummary
from reasoning.encoding import infer_dtype
from reasoning.readers import retype_frame
from reasoning.schemas import (
    DEFAULT_TENANT,
    Column,
    DatasetInfo,
    DatasetPatch,
    DataWarning,
    Dialect,
)
from reasoning.service.artifacts import ArtifactStore
from reasoning.service.database import catalog_entries, catalog_entry, catalog_id, writing
from reasoning.service.database import datasets as catalog


class DatasetStore:
    """Immutable datasets: the Parquet file in the artifact store, the `DatasetInfo` in
    the metadata store's catalog. A dataset exists once its catalog row commits, and the
    row is written after the file, so nobody ever reads half a dataset."""

    def __init__(self, engine: Engine, artifacts: ArtifactStore) -> None:
        self._engine, self.artifacts = engine, artifacts

    @staticmethod
    def key(dataset_id: str | uuid.UUID) -> str:
        """The dataset's Parquet object."""
        return f"datasets/{catalog_id(dataset_id)}/data.parquet"

    def add(
        self,
        df: pd.DataFrame,
        name: str,
        tenant: str = DEFAULT_TENANT,
        dialect: Dialect | None = None,
        warnings: list[DataWarning] | None = None,
    ) -> DatasetInfo:
        """Store `df` and return its description (with how its file was read, and what
        the reading assumed)."""
        dataset_id = uuid.uuid4()
        info = DatasetInfo(
            dataset_id=dataset_id,
            name=name,
            n_rows=len(df),
            columns=_columns(df),
            created_at=datetime.now(UTC),
            tenant=tenant,
            dialect=dialect,
            warnings=warnings or [],
        )
        data, stats = _encoded(df)
        self.artifacts.put(self.key(dataset_id), data)
        with writing(self._engine) as db:
            db.execute(insert(catalog).values(
                dataset_id=str(dataset_id), tenant=tenant,
                created_at=info.created_at.isoformat(), info=info.model_dump_json(),
                stats=json.dumps(stats), bytes=len(data),
            ))
        return info

    def retype(
        self, dataset_id: str | uuid.UUID, tenant: str, patch: DatasetPatch
    ) -> DatasetInfo:
        """Change the types of some columns in place (KeyError: no such dataset; a
        `DatasetError` when a value does not convert and `patch.errors` is "raise", and
        then nothing changes). The new Parquet replaces the old one whole (the artifact
        store writes atomically), then the catalog row changes in one UPDATE."""
        info = self.get(dataset_id, tenant)
        df = self.load(dataset_id)
        df, warnings = retype_frame(df, dict(patch.dtypes), patch.errors, info.dialect,
                                    patch.date_format, info.warnings)
        info = info.model_copy(update={"columns": _columns(df), "warnings": warnings})
        if info.dialect is not None and patch.date_format is not None:
            formats = {**info.dialect.date_formats, **{
                c: patch.date_format for c, t in patch.dtypes.items() if t == "timestamp"}}
            info.dialect = info.dialect.model_copy(update={"date_formats": formats})
        data, stats = _encoded(df)
        self.artifacts.put(self.key(dataset_id), data)
        with writing(self._engine) as db:
            db.execute(update(catalog).where(catalog.c.dataset_id == catalog_id(dataset_id))
                       .values(info=info.model_dump_json(), stats=json.dumps(stats),
                               bytes=len(data)))
        return info

    def get(self, dataset_id: str | uuid.UUID, tenant: str | None = None) -> DatasetInfo:
        """The dataset's description; KeyError when there is no such dataset (for `tenant`)."""
        info = catalog_entry(self._engine, catalog.c.info, dataset_id, tenant)
        if info is None:
            raise KeyError(f"unknown dataset {dataset_id}")
        return DatasetInfo.model_validate_json(info)

    def list(self, tenant: str | None = None) -> list[DatasetInfo]:
        """Every dataset (of `tenant`), newest first."""
        return [DatasetInfo.model_validate_json(info)
                for info in catalog_entries(self._engine, catalog.c.info, tenant)]

    def column_summary(self, dataset_id: str | uuid.UUID, column: str) -> ColumnSummary:
        """Counts and range of one column (see `column_summaries`)."""
        return self.column_summaries(dataset_id, [column])[column]

    def column_summaries(
        self, dataset_id: str | uuid.UUID, columns: Sequence[str]
    ) -> dict[str, ColumnSummary]:
        """Counts, range and distinct values of these columns: from the catalog, where the
        upload put them. Columns it has none for (a dataset imported from release 0.1, or
        stored before distinct counts were kept) are read from the file once, and their
        statistics stored, so the next submit reads the catalog only."""
        stats = catalog_entry(self._engine, catalog.c.stats, dataset_id, None)
        known = json.loads(stats) if stats is not None else {}
        missing = [c for c in columns
                   if "n_distinct" not in known.get(c, {}) or "levels" not in known[c]]
        if missing:
            with self.artifacts.reader(self.key(dataset_id)) as source:
                table = pq.read_table(source, columns=missing)
            known |= {c: asdict(ColumnSummary.of(table.column(c))) for c in missing}
            with writing(self._engine) as db:
                db.execute(update(catalog).where(catalog.c.dataset_id == catalog_id(dataset_id))
                           .values(stats=json.dumps(known)))
        return {c: ColumnSummary(**known[c]) for c in columns}

    def load(self, dataset_id: str | uuid.UUID) -> pd.DataFrame:
        """The stored table with the dtypes it had when added (Int64, boolean, str, tz)."""
        self.get(dataset_id)  # only a catalogued dataset: an object alone is not one
        with self.artifacts.reader(self.key(dataset_id)) as source:
            return pq.read_table(source).to_pandas()


def _columns(df: pd.DataFrame) -> list[Column]:
    return [Column(name=str(c), dtype=infer_dtype(df[c])) for c in df.columns]


def _encoded(df: pd.DataFrame) -> tuple[bytes, dict[str, Any]]:
    """The table as Parquet bytes, and each column's statistics (computed once here, so a
    submit's checks read the catalog, not the file)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    stats = {name: asdict(ColumnSummary.of(table.column(name))) for name in table.column_names}
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue(), stats

