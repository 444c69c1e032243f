"""`/v1/jobs`: a job's status and progress, the tenant's jobs, and cancelling one."""

from uuid import UUID

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from reasoning.schemas import TERMINAL_STATUSES, Job, JobList, JobStatus
from serve_app.problems import BODY, CALLER, Problem, responses
from serve_app.routes.dependencies import Caller, Served, found

router = APIRouter(tags=["jobs"])


@router.get("/v1/jobs/{job_id}", responses=responses(*CALLER, 404, 422))
async def get_job(service: Served, job_id: UUID, principal: Caller) -> Job:
    return await found("job", service.jobs.get, job_id, principal.tenant)


@router.get("/v1/jobs", responses=responses(*CALLER, 422))
async def list_jobs(
    service: Served, principal: Caller, limit: int = 100, status: JobStatus | None = None
) -> JobList:
    jobs = await run_in_threadpool(
        service.jobs.list, max(1, min(limit, 1000)), status, principal.tenant
    )
    return JobList(jobs=jobs)


@router.post("/v1/jobs/{job_id}/cancel", responses=responses(*CALLER, *BODY, 404, 409))
async def cancel_job(service: Served, job_id: UUID, principal: Caller) -> Job:
    job = await get_job(service, job_id, principal)
    if job.status in TERMINAL_STATUSES:
        raise Problem(409, f"job {job_id} is already {job.status}")
    # The JobManager, the one writer of job state, fails it as cancelled (a job that ended
    # meanwhile keeps its end: the store changes open jobs only).
    return await service.manager.cancel.remote(str(job_id))
