"""The job store, on SQLite and PostgreSQL: durable, reloadable, and terminal states never
change."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, select

from reasoning.service.database import jobs
from reasoning.service.jobs import IdempotencyConflict, JobStore
from reasoning.service.stores import Stores

REQUEST = {"dataset_id": str(uuid.uuid4()), "n_hyperopt_steps": 3}


@pytest.fixture
def store(stores: Stores) -> JobStore:
    return JobStore(stores.engine())  # without the keyring


def _new(store: JobStore) -> str:
    return str(store.create(str(uuid.uuid4()), "reasoning_fit", REQUEST["dataset_id"],
                            REQUEST).job_id)


def test_a_new_job_is_pending_and_queued(store: JobStore) -> None:
    job = store.get(_new(store))
    assert (job.status, job.stage, job.progress.done, job.attempts) == ("pending", "queued", 0, 0)
    assert job.started_at is None and job.model_id is None


def test_create_is_idempotent_on_the_job_id(store: JobStore) -> None:
    job_id = _new(store)
    again = store.create(job_id, "reasoning_fit", REQUEST["dataset_id"], {"other": 1})
    assert str(again.job_id) == job_id
    assert store.request(job_id) == REQUEST and len(store.list()) == 1


def test_lifecycle_to_completed(store: JobStore) -> None:
    job_id = _new(store)
    assert store.start_attempt(job_id, "starting") == 1
    store.report(job_id, stage="train", done=1, total=3, message="1 of 3")
    job = store.get(job_id)
    assert (job.status, job.stage, job.progress.done, job.progress.total) == (
        "running", "train", 1, 3)
    model_id = str(uuid.uuid4())
    assert store.complete(job_id, model_id, "done")
    job = store.get(job_id)
    assert job.status == "completed" and str(job.model_id) == model_id
    assert job.progress.done == 3 and job.finished_at is not None


@pytest.mark.parametrize("end", ["complete", "fail"])
def test_terminal_states_never_change(store: JobStore, end: str) -> None:
    job_id = _new(store)
    store.start_attempt(job_id, "starting")
    if end == "complete":
        store.complete(job_id, str(uuid.uuid4()), "done")
    else:
        store.fail(job_id, "failed: bad", "trace")
    before = store.get(job_id)
    assert not store.fail(job_id, "again")
    assert not store.complete(job_id, str(uuid.uuid4()), "again")
    assert store.start_attempt(job_id, "again") == 0
    store.report(job_id, stage="train", done=9, message="late report")
    assert store.get(job_id) == before


TRACEBACK = """Traceback (most recent call last):
  File "/srv/reasoning/actors/pipeline.py", line 190, in _outcome_of
    return _Pipeline(self, attempt).fit()
ValueError: column 'x' is constant
"""


def test_fail_keeps_the_detail_for_operators_and_shows_callers_its_last_line(
    store: JobStore,
) -> None:
    job_id = _new(store)
    store.fail(job_id, "failed: column 'x' is constant", TRACEBACK)
    job = store.get(job_id)
    assert job.message == "failed: column 'x' is constant"
    assert job.error == "ValueError: column 'x' is constant"
    assert "pipeline.py" not in job.model_dump_json()
    assert store.error_detail(job_id) == TRACEBACK


def test_state_survives_reopening(stores: Stores) -> None:
    store = stores.jobs()
    running, pending, done = _new(store), _new(store), _new(store)
    store.start_attempt(running, "starting")
    store.complete(done, str(uuid.uuid4()), "ok")
    reopened = JobStore(create_engine(stores.database))  # another process's pool
    assert {str(j.job_id) for j in reopened.unfinished()} == {running, pending}
    assert reopened.start_attempt(running, "re-run") == 2


def test_list_filters_by_status_newest_first(store: JobStore) -> None:
    ids = [_new(store) for _ in range(3)]
    store.fail(ids[0], "failed")
    assert [str(j.job_id) for j in store.list()] == ids[::-1]
    assert [str(j.job_id) for j in store.list(status="failed")] == [ids[0]]
    assert len(store.list(limit=2)) == 2


def test_unknown_job_is_a_key_error(store: JobStore) -> None:
    with pytest.raises(KeyError):
        store.get(str(uuid.uuid4()))


# -- tenants, idempotency keys and sealed teacher headers ---------------------------------


@pytest.fixture
def sealed_store(stores: Stores) -> JobStore:
    return stores.jobs()


def _create(store: JobStore, request: dict, tenant: str = "a", key: str | None = None):
    return store.create(str(uuid.uuid4()), "reasoning_fit", request["dataset_id"], request,
                        tenant, key)


def test_a_job_is_seen_only_by_its_tenant(store: JobStore) -> None:
    job = _create(store, REQUEST, tenant="a")
    assert store.get(str(job.job_id), "a").tenant == "a"
    with pytest.raises(KeyError):
        store.get(str(job.job_id), "b")
    _create(store, REQUEST, tenant="b")
    assert [j.job_id for j in store.list(tenant="a")] == [job.job_id]
    assert len(store.list()) == 2


def test_an_idempotency_key_gives_back_the_same_job(sealed_store: JobStore) -> None:
    first = _create(sealed_store, REQUEST, key="k1")
    again = _create(sealed_store, dict(REQUEST), key="k1")
    assert again.job_id == first.job_id and len(sealed_store.list()) == 1
    # Keys belong to a tenant: another tenant's k1 is another job.
    assert _create(sealed_store, REQUEST, tenant="b", key="k1").job_id != first.job_id


def test_an_idempotency_key_with_another_request_is_a_conflict(sealed_store: JobStore) -> None:
    first = _create(sealed_store, REQUEST, key="k1")
    with pytest.raises(IdempotencyConflict, match=str(first.job_id)):
        _create(sealed_store, {**REQUEST, "n_hyperopt_steps": 4}, key="k1")
    assert len(sealed_store.list()) == 1


def test_teacher_headers_are_sealed_in_the_store_and_open_for_the_runner(
    sealed_store: JobStore, stores: Stores
) -> None:
    request = {**REQUEST, "teacher_predict_headers": {"x-api-key": "secret-123"}}
    job = _create(sealed_store, request)
    assert sealed_store.request(str(job.job_id)) == request
    with stores.engine().connect() as db:
        raw = repr(db.execute(select(jobs)).all())
    assert "secret-123" not in raw and "x-api-key" in raw


def test_headers_need_the_keyring(store: JobStore) -> None:
    with pytest.raises(RuntimeError, match="keyring"):
        _create(store, {**REQUEST, "teacher_predict_headers": {"x": "y"}})


def test_racing_submits_with_one_idempotency_key_make_one_job(sealed_store: JobStore) -> None:
    """Two replicas retrying one submit at once: the unique index decides, both get it."""
    with ThreadPoolExecutor(6) as pool:
        made = list(pool.map(lambda _: _create(sealed_store, REQUEST, key="k").job_id, range(6)))
    assert len(set(made)) == 1 and len(sealed_store.list()) == 1


def _of(store: JobStore, tenant: str) -> str:
    return str(store.create(str(uuid.uuid4()), "reasoning_fit", REQUEST["dataset_id"],
                            REQUEST, tenant).job_id)


def test_the_queue_takes_turns_across_tenants(store: JobStore) -> None:
    """A tenant's five queued jobs do not hold up the one job each of two others: the
    queue gives each tenant its oldest job before anyone's second. A job marked running
    (an attempt to start again) comes first, and counts as its tenant's turn."""
    busy = [_of(store, "busy") for _ in range(5)]
    quiet, late = _of(store, "quiet"), _of(store, "late")
    store.start_attempt(busy[0], "starting")
    order = [str(j.job_id) for j in store.in_turn(limit=10)]
    # busy's running job used its first turn: its next pending one is its second.
    assert order == [busy[0], quiet, late, busy[1], busy[2], busy[3], busy[4]]
    assert [str(j.job_id) for j in store.in_turn(limit=2)] == order[:2]
    assert store.pending_count("busy") == 4 and store.pending_count("quiet") == 1
    store.fail(quiet, "cancelled by request")
    assert store.pending_count("quiet") == 0 and quiet not in {
        str(j.job_id) for j in store.in_turn(limit=10)}


def test_a_job_is_found_by_its_idempotency_key(sealed_store: JobStore) -> None:
    made = sealed_store.create(str(uuid.uuid4()), "reasoning_fit", REQUEST["dataset_id"],
                               REQUEST, "alpha", "key-1")
    found = sealed_store.by_key("alpha", "key-1")
    assert found is not None and found.job_id == made.job_id
    assert sealed_store.by_key("beta", "key-1") is None
    assert sealed_store.by_key("alpha", "key-2") is None


def test_open_jobs_on_a_dataset_are_the_tenants_pending_and_running_ones(
        store: JobStore) -> None:
    dataset = REQUEST["dataset_id"]
    other = {**REQUEST, "dataset_id": str(uuid.uuid4())}
    pending, running, done = (_create(store, REQUEST) for _ in range(3))
    store.start_attempt(str(running.job_id), "started")
    store.complete(str(done.job_id), str(uuid.uuid4()), "ok")
    _create(store, other)  # another dataset
    _create(store, REQUEST, tenant="b")  # another tenant's
    assert store.open_on_dataset(dataset, "a") == (str(pending.job_id), str(running.job_id))
    store.fail(str(pending.job_id), "cancelled")
    assert store.open_on_dataset(dataset, "a") == (str(running.job_id),)
    assert store.open_on_dataset(other["dataset_id"], "b") == ()
