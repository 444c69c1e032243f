"""The stores: migrations, a 0.1 home imported with its data, where things are written,
and the rules that keep a half-written dataset or model invisible."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import inspect, update

from reasoning.schemas import DatasetPatch, ModelCard
from reasoning.service.artifacts import ArtifactStore, forwarded_env, s3_options
from reasoning.service.database import METADATA, engine, writing
from reasoning.service.database import datasets as catalog
from reasoning.service.dataset_store import DatasetStore
from reasoning.service.registry import ModelRegistry
from reasoning.service.stores import Stores
from reasoning.synthetic import houses
from tests.unit.conftest import DATABASES, fresh_stores

HOME_V0_1 = Path(__file__).parents[1] / "data" / "home-v0.1"


def test_upgrade_makes_every_table_and_is_idempotent(stores: Stores) -> None:
    tables = set(inspect(engine(stores.database)).get_table_names())
    assert {t.name for t in METADATA.sorted_tables} <= tables
    assert stores.upgrade() == stores.upgrade() == "0005"


@pytest.mark.parametrize("kind", DATABASES)
def test_a_home_written_by_release_0_1_is_migrated_with_its_data(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    shutil.copytree(HOME_V0_1, home)
    stores = fresh_stores(kind, home, request, new_database=True)  # the import runs here
    datasets, models, jobs = stores.datasets(), stores.models(), stores.jobs()

    [info] = datasets.list("alpha")
    old_meta = json.loads(next((home / "datasets").glob("*/meta.json")).read_text())
    assert str(info.dataset_id) == old_meta["dataset_id"] and info.n_rows == 80
    # 0.1 kept no column statistics: the label checks read them from the file.
    assert datasets.column_summary(info.dataset_id, "price").n_present == 80
    pd.testing.assert_frame_equal(datasets.load(info.dataset_id), houses(80, seed=3))

    [card] = models.list("alpha")
    old_card = next((home / "models").glob("*/card.json")).read_text()
    assert card == ModelCard.model_validate_json(old_card)
    model = models.load(str(card.model_id))
    assert model.predict(houses(5, seed=9).drop(columns=["price"])).shape == (5,)

    by_status = {job.status: job for job in jobs.list(tenant="alpha")}
    assert set(by_status) == {"completed", "pending"}
    assert str(by_status["completed"].model_id) == str(card.model_id)
    # The 0.1 secret still opens the headers 0.1 sealed: the job can still run.
    pending = jobs.request(str(by_status["pending"].job_id))
    assert pending["teacher_predict_headers"] == {"x-api-key": "sealed-in-0.1"}
    # An idempotency key keeps naming its job.
    again = jobs.create("another-id", "reasoning_fit", str(info.dataset_id),
                        jobs.request(str(by_status["completed"].job_id)), "alpha", "key-1")
    assert again.job_id == by_status["completed"].job_id

    credentials = stores.credentials()
    key = (home / "key.txt").read_text().strip()
    assert credentials.verify(credentials.exchange(key).access_token).tenant == "alpha"
    assert [k["tenant"] for k in credentials.list_keys()] == ["alpha"]
    # Nothing of 0.1's was deleted, and importing again adds nothing.
    assert (home / "jobs.sqlite").is_file() and (home / "models").is_dir()
    stores.upgrade()
    assert len(jobs.list()) == 2 and len(datasets.list()) == 1


def test_a_write_is_visible_only_once_its_catalog_row_commits(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = stores.datasets()
    frame = houses(20)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died here")

    # The Parquet object is written, then the process dies before the catalog row: the
    # dataset does not exist for anyone.
    monkeypatch.setattr("reasoning.service.dataset_store.insert", crash)
    with pytest.raises(RuntimeError):
        datasets.add(frame, "half")
    assert datasets.list() == []
    monkeypatch.undo()
    info = datasets.add(frame, "whole")
    assert [d.dataset_id for d in datasets.list()] == [info.dataset_id]


def _failing_fsync(synced: list[int]) -> Callable[[int], None]:
    """An fsync that records how many bytes its file holds, then fails like a dying disk."""

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        raise OSError(errno.EIO, "Input/output error")

    return fsync


def _files(root: str) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


@pytest.mark.parametrize("kind", ["dataset", "model"])
def test_a_write_that_fails_midway_leaves_no_object(
    kind: str, stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Datasets and models are written by one helper, `ArtifactStore.put`: the bytes go to
    a temporary name and are fsynced before they are renamed into place, so a failure
    before the rename (here the fsync) leaves no file, not even a temporary one. A store
    that wrote in place, or renamed without syncing, would succeed here and fail this."""
    if kind == "dataset":
        store: DatasetStore | ModelRegistry = stores.datasets()
        write = partial(store.add, houses(20), "houses")
    else:
        store = stores.models()
        card = next(HOME_V0_1.glob("models/*/card.json")).read_text()
        write = partial(store.add, {"coef": [1.0, 2.0]}, ModelCard.model_validate_json(card))
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", _failing_fsync(synced))
    with pytest.raises(OSError, match="Input/output"):
        write()
    assert len(synced) == 1 and synced[0] > 0  # the whole object was written, then synced
    assert _files(stores.artifacts) == [] and store.list() == []
    monkeypatch.undo()
    write()
    assert len(_files(stores.artifacts)) == 1 and len(store.list()) == 1


def test_a_retype_that_fails_midway_leaves_the_old_dataset_whole(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retyped Parquet replaces the old one only once it is on disk whole."""
    datasets = stores.datasets()
    info = datasets.add(houses(20), "houses")
    [path] = _files(stores.artifacts)
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", _failing_fsync([]))
    with pytest.raises(OSError, match="Input/output"):
        datasets.retype(info.dataset_id, info.tenant, DatasetPatch(dtypes={"rooms": "float"}))
    assert _files(stores.artifacts) == [path] and path.read_bytes() == before
    assert datasets.get(info.dataset_id) == info


def test_a_local_write_syncs_the_file_then_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is on disk before `put` returns, so the catalog row committed after it
    never names a file a power cut took back."""
    synced: list[bool] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    ArtifactStore(str(tmp_path / "a")).put("x/y.bin", b"123")
    assert synced == [False, True]  # the file's bytes, then the folder holding the rename


def test_local_artifacts_appear_whole(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "a"))
    store.put("x/y.bin", b"123")
    assert store.get("x/y.bin") == b"123" and store.exists("x/y.bin")
    assert [p.name for p in (tmp_path / "a" / "x").iterdir()] == ["y.bin"]  # no temp left
    with pytest.raises(KeyError):
        store.get("x/missing.bin")


def test_the_default_stores_live_under_the_home(tmp_path: Path) -> None:
    stores = Stores.resolve(tmp_path / "h")
    assert stores.database == f"sqlite:///{tmp_path / 'h' / 'reasoning.db'}"
    assert stores.artifacts == str(tmp_path / "h" / "artifacts")
    assert stores.secret_key_file == str(tmp_path / "h" / "secret.key") and stores.uses_home


def test_relative_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stores = Stores.resolve("h", artifacts="art", secret_key_file="k/secret")
    assert stores.artifacts == str(tmp_path / "art")
    assert stores.secret_key_file == str(tmp_path / "k" / "secret")


def test_remote_stores_touch_no_home_and_need_a_secret_file(tmp_path: Path) -> None:
    url, bucket = "postgresql+psycopg://u:p@db.internal/reasoning", "s3://bucket/prefix"
    with pytest.raises(ValueError, match="REASONING_SECRET_KEY_FILE"):
        Stores.resolve(tmp_path / "h", url, bucket)
    stores = Stores.resolve(tmp_path / "h", url, bucket, "/run/secrets/reasoning")
    assert not stores.uses_home and not (tmp_path / "h").exists()
    # Either remote store alone still keeps the other under the home.
    assert Stores.resolve(tmp_path / "h", url).uses_home
    assert Stores.resolve(tmp_path / "h", artifacts=bucket).uses_home


def test_s3_settings_come_from_the_aws_variables_as_the_sdk_reads_them() -> None:
    env = {"AWS_ENDPOINT_URL": "http://general:1", "AWS_ENDPOINT_URL_S3": "http://10.0.0.5:9000",
           "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "HOME": "/root"}
    assert s3_options(env) == {"endpoint_override": "10.0.0.5:9000", "scheme": "http",
                               "region": "eu-west-1"}
    assert s3_options({"AWS_ENDPOINT_URL": "https://s3.local", "AWS_REGION": "us-east-2",
                       "AWS_DEFAULT_REGION": "x"}) == {
        "endpoint_override": "s3.local", "scheme": "https", "region": "us-east-2"}
    assert forwarded_env(env) == {k: v for k, v in env.items() if k != "HOME"}


@pytest.mark.parametrize("uri", ["gs://bucket/x", "s3://", "hdfs://nn/x"])
def test_unsupported_artifact_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="artifact store"):
        ArtifactStore(uri)


def test_column_statistics_come_from_the_catalog_and_match_the_file(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made once at upload: a submit's label checks read no file (on S3, no request). A
    dataset stored without them (release 0.1's) has them read from its file once."""
    datasets = stores.datasets()
    frame = houses(60, seed=4)
    frame.loc[::7, "area_sqm"] = None
    info = datasets.add(frame, "houses")
    at_upload = datasets.column_summaries(info.dataset_id, list(frame.columns))
    with writing(stores.engine()) as db:
        db.execute(update(catalog).values(stats=None))
    # With no statistics in the catalog, the file answers (and they are stored again).
    from_file = {column: datasets.column_summary(info.dataset_id, column)
                 for column in frame.columns}
    assert from_file == at_upload

    def no_reads(key: str) -> None:
        raise AssertionError(f"read {key} from the artifact store")

    monkeypatch.setattr(datasets.artifacts, "reader", no_reads)
    for column in frame.columns:
        assert datasets.column_summary(info.dataset_id, column) == from_file[column], column
    assert from_file["area_sqm"].n_present == 60 - len(frame.loc[::7])
    assert isinstance(from_file["listed_at"].minimum, str)  # times as ISO text, both ways


def test_a_named_secret_file_must_exist_and_is_never_made(tmp_path: Path) -> None:
    named = tmp_path / "mounted" / "secret.key"
    stores = Stores.resolve(tmp_path / "h", secret_key_file=str(named))
    with pytest.raises(FileNotFoundError, match="REASONING_SECRET_KEY_FILE"):
        stores.keyring()
    assert not named.exists()
    named.parent.mkdir()
    named.write_bytes(bytes(range(32)))
    assert stores.keyring().derive("x") == stores.keyring().derive("x")
    # The home's default secret is made on first use, as before.
    assert Stores.resolve(tmp_path / "h").keyring() and (tmp_path / "h" / "secret.key").is_file()


def test_stored_bytes_are_counted_per_tenant(stores: Stores) -> None:
    from reasoning.service.database import stored_bytes

    datasets = stores.datasets()
    datasets.add(houses(50, seed=1), "a", "alpha")
    datasets.add(houses(80, seed=2), "b", "alpha")
    datasets.add(houses(50, seed=3), "c", "beta")
    alpha = stored_bytes(stores.engine(), "alpha")
    files = sum(p.stat().st_size for p in Path(stores.artifacts).rglob("*.parquet"))
    beta = stored_bytes(stores.engine(), "beta")
    assert alpha > beta > 0 and alpha + beta == files
    assert stored_bytes(stores.engine(), "nobody") == 0
