"""`/v1/datasets`: upload (read in its dialect, stored as Parquet), retype, list, show."""

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from reasoning.readers import read_upload as read_dataset
from reasoning.schemas import DatasetInfo, DatasetList, DatasetPatch
from reasoning.service.auth import Principal
from reasoning.upload_checks import DatasetError, DatasetTooLarge, RetypeError
from serve_app import problems, uploads
from serve_app.problems import BODY, CALLER, Problem, responses
from serve_app.routes.dependencies import Caller, Served, found
from serve_app.service import Service

router = APIRouter(tags=["datasets"])


async def register_dataset(
    service: Service, content: bytes, filename: str, name: str | None = None,
    options: dict[str, str] | None = None, *, principal: Principal
) -> DatasetInfo:
    """Parse, infer the schema, and store a CSV or Parquet file as a dataset. `options`
    are the upload form's text fields (delimiter, decimal, date_format, encoding,
    dtypes, errors)."""
    if not isinstance(content, bytes | bytearray):
        raise problems.invalid(["body", "file"], "the file's content must be bytes")
    limit = service.settings.max_upload_bytes
    if len(content) > limit:
        raise Problem(413, f"file is {len(content):,} bytes; the limit is {limit:,}")
    read = uploads.read_options(uploads.Upload(bytes(content), filename, name,
                                               dict(options or {})))
    await run_in_threadpool(service.check_quota, principal.tenant, len(content))
    try:
        result = await run_in_threadpool(
            read_dataset, filename, bytes(content), service.settings.table_limits(),
            read.csv, read.dtypes, read.errors)
    except DatasetTooLarge as err:
        raise Problem(413, str(err)) from None
    except RetypeError as err:
        raise problems.invalid(["body", "dtypes"], str(err)) from None
    except DatasetError as err:
        raise problems.invalid(["body", "file"], str(err)) from None
    return await run_in_threadpool(
        service.datasets.add, result.frame, name or filename, principal.tenant,
        result.dialect, result.warnings,
    )


@router.post(
    "/v1/datasets", status_code=201, openapi_extra=uploads.OPENAPI,
    responses=responses(*CALLER, *BODY),
)
async def upload_dataset(service: Served, request: Request, principal: Caller) -> DatasetInfo:
    """Register a CSV (.csv, .tsv, .txt) or Parquet file: a multipart form with `file`,
    optional `name`, and optional fields saying how to read it (delimiter, decimal,
    date_format, encoding: detected when not given) and retyping columns (dtypes,
    errors). The answer says how the file was read (`dialect`) and what was assumed
    that may be wrong (`warnings`). Read from the stream, so the size limit holds
    whatever Content-Length says."""
    upload = await uploads.read_upload(request, service.settings.max_upload_bytes)
    return await register_dataset(
        service, upload.content, upload.filename, upload.name, upload.options,
        principal=principal,
    )


@router.patch("/v1/datasets/{dataset_id}", responses=responses(*CALLER, *BODY, 404, 409))
async def patch_dataset(
    service: Served, dataset_id: UUID, patch: DatasetPatch, principal: Caller
) -> DatasetInfo:
    """Retype columns of a stored dataset without uploading it again (e.g. a numeric
    column that a few stray values kept as text). A value that does not convert makes
    it a 422 and nothing changes, unless `errors` is 'coerce' (then it becomes null,
    and the answer's warnings say which). Fits submitted later see the new types; while a
    fit on it is pending or running, it is a 409 (that fit would read the new types)."""
    busy = await run_in_threadpool(service.jobs.open_on_dataset, str(dataset_id),
                                   principal.tenant)
    if busy:
        raise Problem(409, f"dataset {dataset_id} is used by {len(busy)} pending or running "
                      f"job(s) ({', '.join(busy[:3])}); retype it once they end, or cancel "
                      "them first")
    try:
        return await found("dataset", service.datasets.retype, dataset_id, principal.tenant,
                           patch)
    except DatasetError as err:
        raise problems.invalid(["body", "dtypes"], str(err)) from None


@router.get("/v1/datasets", responses=responses(*CALLER, 422))
async def list_datasets(service: Served, principal: Caller) -> DatasetList:
    return DatasetList(
        datasets=await run_in_threadpool(service.datasets.list, principal.tenant)
    )


@router.get("/v1/datasets/{dataset_id}", responses=responses(*CALLER, 404, 422))
async def get_dataset(service: Served, dataset_id: UUID, principal: Caller) -> DatasetInfo:
    return await found("dataset", service.datasets.get, dataset_id, principal.tenant)
