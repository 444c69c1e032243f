"""Where fitted models live: one folder per model with the pickled estimator and its card.

A model appears only once both files are written (temporary folder, then rename), so a
reader never sees half a model and a crashed finalize leaves nothing registered.
"""

from __future__ import annotations

import pickle
import shutil
import uuid
from pathlib import Path
from typing import Any

from reasoning.schemas import ModelCard


class ModelRegistry:
    """Models under `root/<model_id>/{model.pkl, card.json}`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def add(self, model: Any, card: ModelCard) -> ModelCard:
        final = self.root / str(card.model_id)
        tmp = self.root / f".tmp-{card.model_id}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            with open(tmp / "model.pkl", "wb") as fh:
                pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
            (tmp / "card.json").write_text(card.model_dump_json(indent=2))
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return card

    def card(self, model_id: str, tenant: str | None = None) -> ModelCard:
        """The model's card, or KeyError (also when it is not `tenant`'s)."""
        path = self._dir(model_id) / "card.json"
        if not path.is_file():
            raise KeyError(model_id)
        card = ModelCard.model_validate_json(path.read_text())
        if tenant is not None and card.tenant != tenant:
            raise KeyError(model_id)
        return card

    def load(self, model_id: str) -> Any:
        """The fitted estimator, or KeyError."""
        path = self._dir(model_id) / "model.pkl"
        if not path.is_file():
            raise KeyError(model_id)
        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - written by this service only

    def list(self, tenant: str | None = None) -> list[ModelCard]:
        cards = [
            ModelCard.model_validate_json((d / "card.json").read_text())
            for d in self.root.iterdir()
            if not d.name.startswith(".") and (d / "card.json").is_file()
        ]
        cards = [c for c in cards if tenant is None or c.tenant == tenant]
        return sorted(cards, key=lambda c: c.created_at, reverse=True)

    def _dir(self, model_id: str) -> Path:
        try:
            return self.root / str(uuid.UUID(str(model_id)))
        except ValueError:
            raise KeyError(model_id) from None
