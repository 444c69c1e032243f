"""`/v1/reasoning/fit` and `/v1/models/fit`: a fit request checked, then recorded as a job.

A submit waits on the metadata store only, never on an actor (one starting or busy would
hold it): the job is committed `pending` and the JobManager woken without waiting.
"""

from typing import Any
from uuid import uuid4

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from reasoning.schemas import (
    DataWarning,
    FitAccepted,
    FitRequest,
    JobKind,
    ModelFitRequest,
    ReasoningFitRequest,
)
from reasoning.service.auth import Principal
from reasoning.service.jobs import IdempotencyConflict
from reasoning.validation import check_fit_request, fit_warnings
from serve_app import problems
from serve_app.problems import BODY, CALLER, Problem, responses
from serve_app.routes.dependencies import Caller, IdempotencyKey, Served
from serve_app.service import Service

QUEUE_RETRY_AFTER = 30
"""Seconds a submit refused for a full queue is told to wait."""

router = APIRouter()
SUBMITTED: dict[str, Any] = {"status_code": 202, "responses": responses(*CALLER, *BODY, 404)}
"""What both submit routes answer: 202 with the job, or the problems a submit can have."""


@router.post("/v1/reasoning/fit", tags=["reasoning"], **SUBMITTED)
async def reasoning_fit(service: Served, request: ReasoningFitRequest, principal: Caller,
                        idempotency_key: IdempotencyKey = None) -> FitAccepted:
    """Fit a ReasoningModel on the labels or by distilling a teacher."""
    return await _submit(service, "reasoning_fit", request, principal, idempotency_key)


@router.post("/v1/models/fit", tags=["models"], **SUBMITTED)
async def models_fit(service: Served, request: ModelFitRequest, principal: Caller,
                     idempotency_key: IdempotencyKey = None) -> FitAccepted:
    """Train a same-server model (a future teacher); the search picks among the families."""
    return await _submit(service, "model_fit", request, principal, idempotency_key)


async def _submit(
    service: Service,
    kind: JobKind,
    request: FitRequest,
    principal: Principal,
    idempotency_key: str | None,
) -> FitAccepted:
    """Validate, record the job, and wake the JobManager."""
    tenant = principal.tenant
    # The checks read the catalog (column statistics made at upload), off the event loop.
    warnings = await run_in_threadpool(_check_submit, service, request, tenant,
                                       idempotency_key)
    try:
        job = await run_in_threadpool(
            service.jobs.create, str(uuid4()), kind, str(request.dataset_id),
            request.model_dump(mode="json"), tenant, idempotency_key,
        )
    except IdempotencyConflict as err:
        raise problems.invalid(["header", "idempotency-key"], str(err)) from None
    service.manager.wake.remote()  # not awaited; the JobManager's watcher looks anyway
    families = "/".join(request.family_names())
    return FitAccepted(
        job_id=job.job_id,
        status=job.status,
        message=f"accepted: {families} fit with {request.n_hyperopt_steps} trials",
        dataset_id=job.dataset_id,
        warnings=warnings,
    )


def _check_submit(
    service: Service, request: FitRequest, tenant: str,
    key: str | None,
) -> list[DataWarning]:
    """The tenant's room (storage, then queue) and the request against its dataset;
    what the fit will assume that may be wrong."""
    service.check_quota(tenant, 0)
    warnings = _check_fit(service, request, tenant)
    _check_queue(service, tenant, key)
    return warnings


def _check_queue(service: Service, tenant: str, idempotency_key: str | None) -> None:
    """A 429 when the tenant already has its share of jobs waiting (a retried submit of
    a job already made is let through: it makes nothing new)."""
    cap = service.settings.max_pending_jobs_per_tenant
    waiting = service.jobs.pending_count(tenant)
    if waiting < cap or (idempotency_key and service.jobs.by_key(tenant, idempotency_key)):
        return
    raise Problem(429, f"{waiting:,} of your jobs are waiting for a runner; at most {cap:,} "
                  "may wait at once (REASONING_MAX_PENDING_JOBS_PER_TENANT)",
                  headers={"Retry-After": str(QUEUE_RETRY_AFTER)})


def _check_fit(
    service: Service, request: FitRequest, tenant: str
) -> list[DataWarning]:
    """404 for ids the tenant does not have, 422 for anything else wrong; the warnings
    of a fit that can run."""
    try:
        dataset = service.datasets.get(str(request.dataset_id), tenant)
    except KeyError:
        raise Problem(404, f"dataset {request.dataset_id} not found") from None
    teacher_id = request.teacher_model_id
    if teacher_id is not None and service.completed_model(str(teacher_id), tenant) is None:
        raise Problem(404, f"teacher model {teacher_id} not found")
    # Every column's statistics in one read of the catalog.
    summaries = service.datasets.column_summaries(dataset.dataset_id, list(dataset.dtypes()))
    errors = check_fit_request(
        request,
        dataset.dtypes(),
        lambda model_id: service.completed_model(model_id, tenant),
        service.settings.egress_policy(),
        summarize=summaries.__getitem__,
        design_limit=service.settings.max_design_cells,
    )
    if errors:
        raise problems.invalid_all(errors)
    return [] if request.has_teacher else fit_warnings(request, dataset.dtypes(),
                                                        summaries.__getitem__)
