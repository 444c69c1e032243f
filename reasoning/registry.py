"""Where fitted models live: the pickled estimator in the artifact store, its card in
the metadata store's catalog.

A model exists once its catalog row commits, and the row is written after the pickle,
so a reader never sees half a model and a crashed finalize leaves nothing registered.
"""

from __future__ import annotations

import pickle
import uuid
from typing import Any

from sqlalchemy import Engine, insert, select

from reasoning.artifacts import ArtifactStore
from reasoning.database import models as catalog
from reasoning.database import reading, writing
from reasoning.schemas import ModelCard


class ModelRegistry:
    """Models as `models/<model_id>/model.pkl` objects plus one catalog row each."""

    def __init__(self, engine: Engine, artifacts: ArtifactStore) -> None:
        self._engine, self.artifacts = engine, artifacts

    def add(self, model: Any, card: ModelCard) -> ModelCard:
        model_id = _canonical(card.model_id)
        self.artifacts.put(_key(model_id), pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        with writing(self._engine) as db:
            db.execute(insert(catalog).values(
                model_id=model_id, tenant=card.tenant,
                created_at=card.created_at.isoformat(), card=card.model_dump_json(),
            ))
        return card

    def card(self, model_id: str, tenant: str | None = None) -> ModelCard:
        """The model's card, or KeyError (also when it is not `tenant`'s)."""
        with reading(self._engine) as db:
            row = db.execute(
                select(catalog.c.tenant, catalog.c.card)
                .where(catalog.c.model_id == _canonical(model_id))
            ).first()
        if row is None or (tenant is not None and row.tenant != tenant):
            raise KeyError(model_id)
        return ModelCard.model_validate_json(row.card)

    def load(self, model_id: str) -> Any:
        """The fitted estimator, or KeyError."""
        self.card(model_id)  # only a catalogued model: an object alone is not one
        return pickle.loads(self.artifacts.get(_key(_canonical(model_id))))  # noqa: S301 - ours

    def list(self, tenant: str | None = None) -> list[ModelCard]:
        """Every model (of `tenant`), newest first."""
        query = select(catalog.c.card).order_by(catalog.c.created_at.desc())
        if tenant is not None:
            query = query.where(catalog.c.tenant == tenant)
        with reading(self._engine) as db:
            return [ModelCard.model_validate_json(card) for card in db.execute(query).scalars()]


def _canonical(model_id: Any) -> str:
    try:
        return str(uuid.UUID(str(model_id)))
    except ValueError:
        raise KeyError(model_id) from None


def _key(model_id: str) -> str:
    return f"models/{model_id}/model.pkl"
