"""`/v1/models`: the tenant's models and a model's card."""

from uuid import UUID

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from reasoning.schemas import ModelCard, ModelList
from serve_app.problems import CALLER, Problem, responses
from serve_app.routes.dependencies import Caller, Served

router = APIRouter(tags=["models"])


@router.get("/v1/models", responses=responses(*CALLER, 422))
async def list_models(service: Served, principal: Caller) -> ModelList:
    return ModelList(models=await run_in_threadpool(service.models.list, principal.tenant))


# `:uuid`, so that /v1/models/fit (POST only) is not taken for a model id on GET.
@router.get("/v1/models/{model_id:uuid}", responses=responses(*CALLER, 404, 422))
async def get_model(service: Served, model_id: UUID, principal: Caller) -> ModelCard:
    card = await run_in_threadpool(service.completed_model, str(model_id), principal.tenant)
    if card is None:
        raise Problem(404, f"model {model_id} not found")
    return card
