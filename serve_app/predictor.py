"""Scoring: the ModelPredictor deployment, and `scored`, its answers as the ingress takes them.

The predictor is a deployment of its own so that loaded models are kept (and their memory
spent) in one place per replica of it, whichever ingress replica a request reached.
"""

from functools import lru_cache
from typing import Any

import pandas as pd
from ray import serve
from ray.exceptions import RayTaskError

from reasoning.families import differentiable_families, is_differentiable
from reasoning.levels import model_levels, scoring_warnings
from reasoning.predict import (
    RowsError,
    grads_response,
    predict_response,
    rows_frame,
    teacher_predictions,
)
from reasoning.schemas import (
    GradsResponse,
    InvocationsRequest,
    InvocationsResponse,
    ModelCard,
    PredictRequest,
    PredictResponse,
)
from reasoning.service.stores import keep_private
from serve_app import problems
from serve_app.problems import Problem
from serve_app.settings import Settings

CARD_CACHE = 1024
"""Model cards a predictor keeps parsed (a few hundred kilobytes each at most)."""


@serve.deployment(ray_actor_options={"num_cpus": 0})
class ModelPredictor:
    """Scores rows with stored models, keeping the most recently used ones loaded (at most
    `model_cache_size`: models are loaded from the artifact store, which may be remote)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        keep_private()
        config = Settings(**settings)
        self.registry = config.stores().models()
        self._load = lru_cache(maxsize=config.model_cache_size)(self.registry.load)
        # A card never changes once written, and parsing one (it carries the model's whole
        # explanation) cost more than scoring a few rows: each is read once.
        self._cards = lru_cache(maxsize=CARD_CACHE)(self.registry.card)

    def _card(self, model_id: str, tenant: str) -> ModelCard:
        try:
            card = self._cards(model_id)
        except KeyError:
            card = None
        if card is None or card.tenant != tenant:
            raise Problem(404, f"model {model_id} not found")
        return card

    def _rows(
        self, model_id: str, request: PredictRequest, tenant: str
    ) -> tuple[ModelCard, pd.DataFrame]:
        card = self._card(model_id, tenant)
        try:
            return card, rows_frame(request, card.features)
        except RowsError as err:
            raise problems.invalid(["body"], str(err)) from None

    def predict(self, model_id: str, request: PredictRequest, tenant: str) -> PredictResponse:
        _, frame = self._rows(model_id, request, tenant)
        model = self._load(model_id)
        response = predict_response(model, model_id, frame, request.top_k, request.pairs)
        response.warnings = scoring_warnings(frame, model_levels(model))
        return response

    def invocations(
        self, model_id: str, request: InvocationsRequest, tenant: str
    ) -> InvocationsResponse:
        _, frame = self._rows(model_id, request.rows(), tenant)
        return InvocationsResponse(predictions=teacher_predictions(self._load(model_id), frame))

    def grads(self, model_id: str, request: InvocationsRequest, tenant: str) -> GradsResponse:
        card = self._card(model_id, tenant)
        if not is_differentiable(card.family):
            raise problems.invalid(
                ["path", "model_id"],
                f"family {card.family!r} is not differentiable; /grads serves "
                + ", ".join(differentiable_families()),
            )
        _, frame = self._rows(model_id, request.rows(), tenant)
        return grads_response(self._load(model_id), frame, request.columns())


async def scored(call: Any) -> Any:
    """The predictor's answer to a call (the `DeploymentResponse` of
    `handle.predict.remote(...)`, which Ray's stubs type loosely), or the Problem
    it raised re-raised as itself, so that a 404 or 422 keeps its status and fields."""
    try:
        return await call
    except RayTaskError as err:
        if isinstance(err.cause, Problem):
            raise err.cause from None
        raise
