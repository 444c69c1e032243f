"""A model at work: predictions with reasons, MLflow's `/invocations`, `/grads`, the report.

Scoring happens in the ModelPredictor deployment (`service.predictor`); the report's page is
drawn here, in the thread pool.
"""

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from reasoning.report import CSP as REPORT_CSP
from reasoning.report import render_report
from reasoning.schemas import (
    GradsResponse,
    InvocationsRequest,
    InvocationsResponse,
    PredictRequest,
    PredictResponse,
)
from serve_app.predictor import scored
from serve_app.problems import BODY, CALLER, responses
from serve_app.routes.dependencies import Caller, Served
from serve_app.routes.models import get_model

router = APIRouter(tags=["models"])


@router.get("/v1/models/{model_id:uuid}/report", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}},
                             "description": "one self-contained HTML page"},
                       **responses(*CALLER, 404, 422)})
async def model_report(service: Served, model_id: UUID, principal: Caller) -> HTMLResponse:
    """The model's report for people: its card in words, metrics, trials, importance,
    shapes, and why it predicted what it did for a few test rows. The page loads
    nothing from any other host (charts are inline SVG)."""
    card = await get_model(service, model_id, principal)
    examples = None
    if card.examples:
        rows = PredictRequest(dataframe_records=card.examples, top_k=None)
        examples = await scored(
            service.predictor.predict.remote(str(model_id), rows, principal.tenant))
    # Drawing the charts takes a CPU for a moment: off the event loop.
    page = await run_in_threadpool(render_report, card, examples)
    return HTMLResponse(page, headers={"Cache-Control": "private, max-age=3600",
                                       "Content-Security-Policy": REPORT_CSP})


@router.post("/v1/models/{model_id}/predict", responses=responses(*CALLER, *BODY, 404))
async def predict(
    service: Served, model_id: UUID, request: PredictRequest, principal: Caller
) -> PredictResponse:
    """Predictions with the top-k reasons per row."""
    return await scored(
        service.predictor.predict.remote(str(model_id), request, principal.tenant))


@router.post("/v1/models/{model_id}/invocations", responses=responses(*CALLER, *BODY, 404))
async def invocations(
    service: Served, model_id: UUID, request: InvocationsRequest, principal: Caller
) -> InvocationsResponse:
    """MLflow's scoring protocol: any server (this one too) can use the model as a teacher."""
    return await scored(
        service.predictor.invocations.remote(str(model_id), request, principal.tenant))


@router.post("/v1/models/{model_id}/grads", responses=responses(*CALLER, *BODY, 404))
async def grads(
    service: Served, model_id: UUID, request: InvocationsRequest, principal: Caller
) -> GradsResponse:
    """Per-row Jacobians of a differentiable model: it can be a DiffModel teacher."""
    return await scored(
        service.predictor.grads.remote(str(model_id), request, principal.tenant))
