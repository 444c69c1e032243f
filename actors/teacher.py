"""TeacherModel actors: a stored model served in-cluster, one actor per model in use.

Synth-gen shards call `predict` through the actor handle, so labelling by a same-server
teacher opens no socket. The actor is named by model id and detached: created on first
use, reused by every later job, and restarted by Ray if it dies.
"""

from __future__ import annotations

from typing import cast

import pandas as pd
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors import NAMESPACE, lower_priority
from reasoning.jsonable import json_scalar
from reasoning.service.stores import Stores
from reasoning.teachers import TeacherAnswer


class TeacherModel:
    """Loads one model once and answers `predict(batch)` with values or probabilities."""

    def __init__(self, model_id: str, stores: Stores) -> None:
        lower_priority()  # it labels rows for fits
        registry = stores.models()
        self.model = registry.load(model_id)
        self.card = registry.card(model_id)

    def predict(self, frame: pd.DataFrame) -> TeacherAnswer:
        frame = frame[[f.name for f in self.card.features]]
        if self.model.task_kind == "classification":
            classes = [json_scalar(c) for c in self.model.classes_]
            return TeacherAnswer(self.model.predict_proba(frame), classes)
        return TeacherAnswer(self.model.predict(frame).astype(float))


def teacher_model(model_id: str, stores: Stores) -> ray.actor.ActorHandle:
    """The TeacherModel actor of this model, created if none is alive.

    A new one is placed on the caller's node (a synth-gen shard's, which calls it by
    handle): the batches then stay in that node's object store. The affinity is soft, so
    a restart after that node is lost goes anywhere. It takes no CPU: the shards that
    call it hold theirs while they wait for it. It asks for one byte of memory: Ray
    hands the creation of an actor that asks for nothing to a random node, where the soft
    affinity was honoured about half the time (a two-node cluster, 20 tries); one that
    asks for any resource is scheduled from its caller's node, where it is.
    """
    here = ray.get_runtime_context().get_node_id()
    # Ray's stubs type .remote() as a handle or the class itself (for method typing).
    return cast(ray.actor.ActorHandle, (
        ray.remote(TeacherModel)
        .options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True),
            name=f"teacher:{model_id}",
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            memory=1,
            max_restarts=-1,
            max_task_retries=3,
            max_concurrency=4,
        )
        .remote(model_id, stores)
    ))
