"""Synth-gen: one Ray task per shard, generating MUNGE rows and labelling them with the teacher.

Each shard makes its share of the synthetic rows (seeded by shard, so the shards
together are reproducible) and labels them, with its slice of the real rows, in
batches: through the TeacherModel actor's handle for a same-server teacher, or over
HTTP for an external one. The shards are tasks, so they run on the runner's warm
workers like its trials (no process start per job). Each sends its count of rows
labelled to the runner that started it (`ShardReport`), which adds them up for the
job's progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import ray
from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

from actors import first_line, lower_priority
from actors.teacher import teacher_model
from reasoning.distill import TeacherTargets
from reasoning.munge import munge_shard, neighbour_index, shard
from reasoning.service.egress import EgressPolicy
from reasoning.service.stores import Stores
from reasoning.teachers import HttpTeacher, TeacherAnswer, TeacherError, shown_url
from reasoning.training import JobFailure, PreparedData

BATCH_ROWS = 1024
IN_FLIGHT = 4
RETRIES = 1
"""A shard whose worker dies is run once more on another (seeded: the same rows)."""
POLL = 0.5
"""Seconds between looks at progress and cancellation while the shards run."""


@dataclass(frozen=True)
class TeacherSpec:
    """Which teacher labels the rows: a same-server model, or a URL with its headers."""

    model_id: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    stores: Stores | None = None
    timeout: float = 30.0
    retries: int = 3
    allow: str = ""

    def http(self, **kwargs: Any) -> HttpTeacher:
        """The HTTP client of a URL teacher, behind the egress guard."""
        return HttpTeacher(self.url or "", dict(self.headers), timeout=self.timeout,
                           retries=self.retries, policy=EgressPolicy.parse(self.allow),
                           **kwargs)

    def describe(self) -> dict[str, Any]:
        """For the model card: never the headers, nor credentials in the URL."""
        if self.model_id:
            return {"kind": "model", "model_id": self.model_id}
        return {"kind": "url", "url": shown_url(self.url or "")}


@dataclass(frozen=True)
class ShardReport:
    """Where a shard sends its count of rows labelled: the runner holding the attempt
    (`PipelineRunner.count_rows`), fire and forget. Plain data, so tasks can carry it."""

    runner: Any  # the runner's actor handle
    job_id: str
    attempt: int

    def __call__(self, shard: int, rows: int) -> None:
        self.runner.count_rows.remote(self.job_id, self.attempt, shard, rows)


class Labeller:
    """Labels a shard's rows with the teacher in batches, a few in flight, counting them."""

    def __init__(self, teacher: TeacherSpec, on_rows: Callable[[int], None]) -> None:
        self.teacher = teacher
        self.on_rows = on_rows
        self.labelled = 0

    def label(self, frame: pd.DataFrame) -> TeacherAnswer:
        if len(frame) == 0:
            return TeacherAnswer(np.zeros(0))
        if self.teacher.model_id:
            return self._label_by_handle(frame)
        client = self.teacher.http(batch_size=BATCH_ROWS, max_in_flight=IN_FLIGHT,
                                   on_batch=self._count)
        return client.predict(frame)

    def _count(self, rows: int) -> None:
        self.labelled += rows
        self.on_rows(self.labelled)

    def _label_by_handle(self, frame: pd.DataFrame) -> TeacherAnswer:
        assert self.teacher.stores is not None, "a teacher model comes with its stores"
        teacher = teacher_model(self.teacher.model_id or "", self.teacher.stores)
        answers: list[TeacherAnswer] = []
        pending: list[tuple[ray.ObjectRef, int]] = []

        def take(item: tuple[ray.ObjectRef, int]) -> None:
            answers.append(ray.get(item[0]))
            self._count(item[1])

        for start in range(0, len(frame), BATCH_ROWS):
            if len(pending) >= IN_FLIGHT:
                take(pending.pop(0))
            batch = frame.iloc[start : start + BATCH_ROWS]
            pending.append((teacher.predict.remote(batch), len(batch)))
        for item in pending:
            take(item)
        return TeacherAnswer.concat(answers)


@ray.remote(num_cpus=1, max_retries=RETRIES)
def _synth_gen_shard(
    teacher: TeacherSpec,
    report: ShardReport,
    source: pd.DataFrame,
    real: pd.DataFrame,
    real_slice: tuple[int, int],
    n_synthetic: int,
    shard_index: int,
    random_state: int,
    neighbours: np.ndarray,
) -> tuple[pd.DataFrame, TeacherAnswer, TeacherAnswer, str]:
    """One shard, on a warm worker: the synthetic rows made around `source`, their
    teacher answer, the teacher's answer for this shard's slice of the real rows, and the
    node it ran on."""
    lower_priority()
    labeller = Labeller(teacher, partial(report, shard_index))
    synthetic = munge_shard(source, n_synthetic, shard_index, random_state=random_state,
                            neighbours=neighbours)
    real_part = real.iloc[real_slice[0] : real_slice[1]]
    return (synthetic, labeller.label(synthetic), labeller.label(real_part),
            ray.util.get_node_ip_address())


def run_synth_gen(
    data: PreparedData,
    teacher: TeacherSpec,
    random_state: int,
    n_synthetic: int,
    n_shards: int,
    report: ShardReport,
    labelled: Callable[[], dict[int, int]],
    on_progress: Callable[[int, int], None],
    check_cancelled: Callable[[], None],
) -> TeacherTargets:
    """Generate and label synthetic rows in `n_shards` tasks, and label the real rows;
    progress is rows labelled out of all rows to label, from the counts the shards send
    to `report` (read back by `labelled`: rows by shard). `check_cancelled` raises to stop
    early (the shards are cancelled on the way out)."""
    real = data.X_all()
    n_shards = max(1, min(n_shards, len(data.X_train)))
    source = ray.put(data.X_train)
    every = ray.put(real)
    neighbours = ray.put(neighbour_index(data.X_train))
    synth_parts, real_parts = shard(n_synthetic, n_shards), shard(len(real), n_shards)
    refs = [
        _synth_gen_shard.remote(teacher, report, source, every, real_parts[i], stop - start, i,
                      random_state, neighbours)
        for i, (start, stop) in enumerate(synth_parts)
    ]
    total = n_synthetic + len(real)
    shard_rows = [stop - start + r_stop - r_start
                  for (start, stop), (r_start, r_stop) in zip(synth_parts, real_parts,
                                                              strict=True)]
    try:
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL)
            check_cancelled()
            counts = labelled()
            on_progress(sum(shard_rows[i] if refs[i] not in pending
                            else min(counts.get(i, 0), shard_rows[i])
                            for i in range(len(refs))), total)
        results = ray.get(refs)
    except RayTaskError as err:  # first: Ray makes these instances of their cause too
        cause = err.cause if isinstance(err.cause, Exception) else err
        if isinstance(cause, TeacherError):
            raise JobFailure(str(cause)) from None
        if isinstance(cause, RayActorError):  # a TeacherModel killed for good
            raise JobFailure(f"the teacher model's actor was lost: {first_line(cause)}"
                             ) from None
        raise
    except WorkerCrashedError as err:
        raise JobFailure(f"a synth-gen worker was lost: {first_line(err)}") from None
    finally:
        for ref in refs:
            ray.cancel(ref, force=False)  # a finished one is left as it is
    synthetic = pd.concat([r[0] for r in results], ignore_index=True)
    synth_answer = TeacherAnswer.concat([r[1] for r in results if len(r[1].values)])
    real_answer = TeacherAnswer.concat([r[2] for r in results if len(r[2].values)])
    n_train, n_val = len(data.X_train), len(data.X_val)
    values = real_answer.values
    return TeacherTargets(
        X_fit=pd.concat([data.X_train, synthetic], ignore_index=True),
        t_fit=np.concatenate([values[:n_train], synth_answer.values]),
        t_val=values[n_train : n_train + n_val],
        t_test=values[n_train + n_val :],
        classes=real_answer.classes,
        n_synthetic=len(synthetic),
        # Where the shards ran: a cluster operator's question, as for the trials.
        teacher={**teacher.describe(), "synth_gen_nodes": sorted({r[3] for r in results})},
    )
