"""SynthGen actors: one per shard, generating MUNGE rows and labelling them with the teacher.

Each actor makes its share of the synthetic rows (seeded by shard, so the shards
together are reproducible) and labels them, with its slice of the real rows, in
batches: through the TeacherModel actor's handle for a same-server teacher, or over
HTTP for an external one. `progress()` answers while labelling runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import ray
from ray.exceptions import RayActorError, RayTaskError

from actors import first_line, lower_priority
from actors.teacher import teacher_model
from reasoning.distill import TeacherTargets
from reasoning.egress import EgressPolicy
from reasoning.munge import munge_shard, neighbour_index, shard
from reasoning.stores import Stores
from reasoning.teachers import HttpTeacher, TeacherAnswer, TeacherError
from reasoning.training import JobFailure, PreparedData

BATCH_ROWS = 1024
IN_FLIGHT = 4
RESTARTS = 1
"""A SynthGen actor that dies is restarted and its shard run again (seeded: same rows)."""


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
        """For the model card: never the headers, which may hold credentials."""
        if self.model_id:
            return {"kind": "model", "model_id": self.model_id}
        return {"kind": "url", "url": self.url}


class SynthGen:
    """One shard of synth-gen: generate, then label in batches with a few in flight."""

    def __init__(self, teacher: TeacherSpec) -> None:
        lower_priority()
        self.teacher = teacher
        self.labelled = 0

    def run(
        self,
        source: pd.DataFrame,
        real: pd.DataFrame,
        real_slice: tuple[int, int],
        n_synthetic: int,
        shard_index: int,
        random_state: int,
        neighbours: np.ndarray,
    ) -> tuple[pd.DataFrame, TeacherAnswer, TeacherAnswer]:
        """(synthetic rows made around `source`, their teacher answer, the teacher's answer
        for this shard's slice of the real rows)."""
        synthetic = munge_shard(source, n_synthetic, shard_index, random_state=random_state,
                                neighbours=neighbours)
        real_part = real.iloc[real_slice[0] : real_slice[1]]
        return synthetic, self.label(synthetic), self.label(real_part)

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

    def _label_by_handle(self, frame: pd.DataFrame) -> TeacherAnswer:
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

    def progress(self) -> int:
        return self.labelled


def run_synth_gen(
    data: PreparedData,
    teacher: TeacherSpec,
    random_state: int,
    n_synthetic: int,
    n_shards: int,
    on_progress: Callable[[int, int], None],
    check_cancelled: Callable[[], None],
) -> TeacherTargets:
    """Generate and label synthetic rows on `n_shards` SynthGen actors, and label the real
    rows; progress is rows labelled out of all rows to label. `check_cancelled` raises to
    stop early (the actors are killed on the way out)."""
    real = data.X_all()
    n_shards = max(1, min(n_shards, len(data.X_train)))
    source = ray.put(data.X_train)
    every = ray.put(real)
    neighbours = ray.put(neighbour_index(data.X_train))
    synth_parts, real_parts = shard(n_synthetic, n_shards), shard(len(real), n_shards)
    actors = [
        ray.remote(SynthGen)
        .options(num_cpus=1, max_concurrency=2, max_restarts=RESTARTS,
                 max_task_retries=RESTARTS)
        .remote(teacher)
        for _ in range(n_shards)
    ]
    refs = [
        actor.run.remote(source, every, real_parts[i], stop - start, i, random_state,
                         neighbours)
        for i, (actor, (start, stop)) in enumerate(zip(actors, synth_parts, strict=True))
    ]
    total = n_synthetic + len(real)
    shard_rows = [stop - start + r_stop - r_start
                  for (start, stop), (r_start, r_stop) in zip(synth_parts, real_parts,
                                                              strict=True)]
    live = dict(enumerate(actors))
    try:
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            for i in [i for i in live if refs[i] not in pending]:
                # A finished shard gives its CPU back at once: two jobs each holding
                # one idle SynthGen while waiting for a second CPU would wait forever.
                ray.kill(live.pop(i))
            check_cancelled()
            finished = sum(shard_rows[i] for i in range(len(refs)) if i not in live)
            # Only actors already running answer; one still waiting for a CPU counts 0.
            asked = [a.progress.remote() for a in live.values()]
            answered = ray.wait(asked, num_returns=len(asked), timeout=0.2)[0] if asked else []
            on_progress(finished + sum(ray.get(answered)), total)
        results = ray.get(refs)
    except RayTaskError as err:  # first: Ray makes these instances of their cause too
        cause = err.cause if isinstance(err.cause, Exception) else err
        if isinstance(cause, TeacherError):
            raise JobFailure(str(cause)) from None
        if isinstance(cause, RayActorError):  # a TeacherModel killed for good
            raise JobFailure(f"the teacher model's actor was lost: {first_line(cause)}"
                             ) from None
        raise
    except RayActorError as err:
        raise JobFailure(f"a synth-gen actor was lost: {first_line(err)}") from None
    finally:
        for actor in live.values():
            ray.kill(actor)
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
        teacher=teacher.describe(),
    )
