"""Where fitted models live: the pickled estimator in the artifact store, its card in
the metadata store's catalog.

A model exists once its catalog row commits, and the row is written after the pickle,
so a reader never sees half a model and a crashed finalize leaves nothing registered.
"""

from __future__ import annotations

import pickle
from typing import Any

from sqlalchemy import Engine, insert

from reasoning.schemas import ModelCard
from reasoning.service.artifacts import ArtifactStore
from reasoning.service.database import catalog_entries, catalog_entry, catalog_id, writing
from reasoning.service.database import models as catalog


class ModelRegistry:
    """Models as `models/<model_id>/model.pkl` objects plus one catalog row each."""

    def __init__(self, engine: Engine, artifacts: ArtifactStore) -> None:
        self._engine, self.artifacts = engine, artifacts

    def add(self, model: Any, card: ModelCard) -> ModelCard:
        model_id = catalog_id(card.model_id)
        content = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        self.artifacts.put(_key(model_id), content)  # whole or not at all, as datasets are
        with writing(self._engine) as db:
            db.execute(insert(catalog).values(
                model_id=model_id, tenant=card.tenant,
                created_at=card.created_at.isoformat(), card=card.model_dump_json(),
                bytes=len(content),
            ))
        return card

    def card(self, model_id: str, tenant: str | None = None) -> ModelCard:
        """The model's card, or KeyError (also when it is not `tenant`'s)."""
        card = catalog_entry(self._engine, catalog.c.card, model_id, tenant)
        if card is None:
            raise KeyError(model_id)
        return ModelCard.model_validate_json(card)

    def load(self, model_id: str) -> Any:
        """The fitted estimator, or KeyError."""
        self.card(model_id)  # only a catalogued model: an object alone is not one
        return pickle.loads(self.artifacts.get(_key(catalog_id(model_id))))  # noqa: S301 - ours

    def list(self, tenant: str | None = None) -> list[ModelCard]:
        """Every model (of `tenant`), newest first."""
        return [ModelCard.model_validate_json(card)
                for card in catalog_entries(self._engine, catalog.c.card, tenant)]


def _key(model_id: str) -> str:
    return f"models/{model_id}/model.pkl"
