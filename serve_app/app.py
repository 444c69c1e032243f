"""The Serve application: a FastAPI ingress composed with a model-predictor deployment.

Every operation is a plain method of `ReasoningIngress` that takes and returns the
pydantic models of reasoning.schemas; the FastAPI routes are those same methods, so
REST clients and Python callers holding `serve.get_app_handle("reasoning")` get the
same behaviour. The ingress is stateless, so it runs as many replicas as asked: it
reads datasets, models and jobs straight from the stores, hands submits and cancels to
the JobManager actor (the one writer of job state) and scoring to the ModelPredictor.
"""

import logging
import threading
from functools import lru_cache
from typing import Annotated, Any
from uuid import UUID, uuid4

import pandas as pd
import ray
from fastapi import Depends, Header, Request, Response
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline
from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle
from starlette.concurrency import run_in_threadpool

from actors.job_manager import job_manager
from reasoning.datasets import DatasetError, DatasetTooLarge, RetypeError
from reasoning.datasets import read_upload as read_dataset
from reasoning.families import FAMILIES
from reasoning.levels import model_levels, scoring_warnings
from reasoning.predict import (
    RowsError,
    grads_response,
    predict_response,
    rows_frame,
    teacher_predictions,
)
from reasoning.report import CSP as REPORT_CSP
from reasoning.report import render_report
from reasoning.schemas import (
    DatasetInfo,
    DatasetList,
    DatasetPatch,
    DataWarning,
    FitAccepted,
    GradsResponse,
    Health,
    InvocationsRequest,
    InvocationsResponse,
    Job,
    JobKind,
    JobList,
    JobStatus,
    ModelCard,
    ModelFitRequest,
    ModelList,
    PredictRequest,
    PredictResponse,
    ReasoningFitRequest,
    TokenRequest,
)
from reasoning.service.artifacts import forwarded_env
from reasoning.service.auth import Principal, TokenPair
from reasoning.service.database import stored_bytes
from reasoning.service.jobs import IdempotencyConflict
from reasoning.service.stores import keep_private
from reasoning.validation import check_fit_request, fit_warnings
from serve_app import problems, uploads
from serve_app.auth import NO_STORE, Authenticator, authenticated, client_address
from serve_app.gate import GatePolicy, RequestGate
from serve_app.limits import BodyLimit, BodyLimits
from serve_app.problems import BODY, CALLER, Problem, responses
from serve_app.readiness import Readiness
from serve_app.runtime import POOL_WAIT, check_bind, serve_listen_host
from serve_app.settings import Settings

log = logging.getLogger(__name__)

# /docs and /redoc load Swagger UI and ReDoc from the service itself (the files ship in the
# fastapi-offline package), so they work with no internet access.
api = FastAPIOffline(
    title="Reasoning service",
    version="1",
    description="Fits ReasoningModels: tabular models that explain every prediction. Upload"
    " a CSV (any common dialect) or Parquet file, fit, follow the job, then predict with"
    " reasons per row. Every error is an RFC 9457 problem document naming the problem.",
)
problems.install(api)


# Middleware and dependencies exist before the ingress (and its settings) does, and cannot
# reach `self`: the ingress puts what they need in this replica's app state, and they read
# it at request time.
api.add_middleware(BodyLimit, limits=lambda: api.state.body_limits)
# Added last, so it runs first: identity, origin and content type, before any body is read.
api.add_middleware(RequestGate, policy=lambda: api.state.gate_policy)
# Outermost: while the replica starts, everything gets the service's own 503.
api.add_middleware(Readiness, ready=lambda: getattr(api.state, "waiting", "starting up"))

Caller = Annotated[Principal, Depends(authenticated)]
"""Every route acts for a principal; Python handle callers pass theirs as `principal=`."""
IdempotencyKey = Annotated[
    str | None,
    Header(min_length=1, max_length=255,
           description="Retrying with the same key and body returns the same job"),
]


QUEUE_RETRY_AFTER = 30
"""Seconds a submit refused for a full queue is told to wait."""
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
        if not FAMILIES[card.family].differentiable:
            raise problems.invalid(
                ["path", "model_id"],
                f"family {card.family!r} is not differentiable; /grads serves "
                + ", ".join(n for n, f in FAMILIES.items() if f.differentiable),
            )
        _, frame = self._rows(model_id, request.rows(), tenant)
        return grads_response(self._load(model_id), frame, request.columns())


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
@serve.ingress(api)
class ReasoningIngress:
    """REST routes and Python-callable methods of API v1."""

    def __init__(self, settings: dict[str, Any], predictor: DeploymentHandle) -> None:
        self.settings = Settings(**settings)
        # However the app was started (`reasoning serve`, `serve run`, `build_app`): auth
        # mode `none` answers on loopback only, unless told otherwise; refused before the
        # replica touches anything.
        listen = serve_listen_host(self.settings.host)
        check_bind(self.settings.model_copy(update={"host": listen}))
        keep_private()
        self.predictor = predictor
        # Serve routes requests here once this constructor returns: what takes time (the
        # store's migrations, the JobManager and its pool) happens in a thread, and until
        # it is done every request gets a 503 with Retry-After (serve_app.readiness).
        api.state.waiting = "the service is starting; try again in a moment"
        self._failed: BaseException | None = None
        threading.Thread(target=self._start, args=(listen,), name="ingress-start",
                         daemon=True).start()

    def _start(self, listen: str) -> None:
        """Open the stores, reach the JobManager and wait for its pool, then let requests in."""
        try:
            stores = self.settings.stores()
            # `reasoning serve` migrated already; an app deployed from a Serve config was not.
            stores.upgrade()
            self.datasets, self.models = stores.datasets(), stores.models()
            self.engine = stores.engine()
            self.jobs = stores.jobs()
            self.manager = job_manager(
                stores, self.settings.max_running_jobs, self.settings.distill_options(),
                self.settings.job_limits(),
            )
            self.auth = Authenticator(self.settings)
            api.state.authenticator = self.auth
            api.state.gate_policy = GatePolicy.of(self.auth, listen,
                                                  self.settings.allowed_hosts)
            api.state.body_limits = BodyLimits(
                self.settings.max_json_bytes, self.settings.max_upload_bytes,
                self.settings.max_json_depth,
            )
            api.state.waiting = "the service is starting its job runners; try again in a moment"
            if not ray.get(self.manager.ready.remote(POOL_WAIT)):
                log.warning("the job pool was not up after %.0f s; jobs will wait for it",
                            POOL_WAIT)
            api.state.waiting = None
        except BaseException as err:  # noqa: BLE001 - said in every answer, and to Serve
            log.exception("the ingress could not start")
            self._failed = err
            api.state.waiting = f"the service could not start: {err}"

    def check_health(self) -> None:
        """Serve's health check: a replica that could not start is replaced."""
        if self._failed is not None:
            raise RuntimeError(f"the ingress could not start: {self._failed}")

    @api.get("/healthz", tags=["service"], responses=responses())
    async def healthz(self) -> Health:
        return Health()

    @api.post("/v1/auth/token", tags=["auth"], responses=responses(400, 401, 429, *BODY))
    async def issue_token(
        self, request: TokenRequest, response: Response, http: Request
    ) -> TokenPair:
        """Exchange an API key (from `reasoning admin create-key`) for access and refresh
        tokens (auth mode `token`). Rate-limited per client address and per key id."""
        response.headers.update(NO_STORE)
        return await self.auth.exchange(request.api_key, client_address(http.scope))

    # -- datasets ----------------------------------------------------------------------

    async def register_dataset(
        self, content: bytes, filename: str, name: str | None = None,
        options: dict[str, str] | None = None, *, principal: Principal
    ) -> DatasetInfo:
        """Parse, infer the schema, and store a CSV or Parquet file as a dataset. `options`
        are the upload form's text fields (delimiter, decimal, date_format, encoding,
        dtypes, errors)."""
        if not isinstance(content, bytes | bytearray):
            raise problems.invalid(["body", "file"], "the file's content must be bytes")
        limit = self.settings.max_upload_bytes
        if len(content) > limit:
            raise Problem(413, f"file is {len(content):,} bytes; the limit is {limit:,}")
        read = uploads.read_options(uploads.Upload(bytes(content), filename, name,
                                                   dict(options or {})))
        await run_in_threadpool(self._check_quota, principal.tenant, len(content))
        try:
            result = await run_in_threadpool(
                read_dataset, filename, bytes(content), self.settings.table_limits(),
                read.csv, read.dtypes, read.errors)
        except DatasetTooLarge as err:
            raise Problem(413, str(err)) from None
        except RetypeError as err:
            raise problems.invalid(["body", "dtypes"], str(err)) from None
        except DatasetError as err:
            raise problems.invalid(["body", "file"], str(err)) from None
        return await run_in_threadpool(
            self.datasets.add, result.frame, name or filename, principal.tenant,
            result.dialect, result.warnings,
        )

    @api.post(
        "/v1/datasets", status_code=201, tags=["datasets"], openapi_extra=uploads.OPENAPI,
        responses=responses(*CALLER, *BODY),
    )
    async def upload_dataset(self, request: Request, principal: Caller) -> DatasetInfo:
        """Register a CSV (.csv, .tsv, .txt) or Parquet file: a multipart form with `file`,
        optional `name`, and optional fields saying how to read it (delimiter, decimal,
        date_format, encoding: detected when not given) and retyping columns (dtypes,
        errors). The answer says how the file was read (`dialect`) and what was assumed
        that may be wrong (`warnings`). Read from the stream, so the size limit holds
        whatever Content-Length says."""
        upload = await uploads.read_upload(request, self.settings.max_upload_bytes)
        return await self.register_dataset(
            upload.content, upload.filename, upload.name, upload.options, principal=principal
        )

    @api.patch("/v1/datasets/{dataset_id}", tags=["datasets"],
               responses=responses(*CALLER, *BODY, 404))
    async def patch_dataset(
        self, dataset_id: UUID, patch: DatasetPatch, principal: Caller
    ) -> DatasetInfo:
        """Retype columns of a stored dataset without uploading it again (e.g. a numeric
        column that a few stray values kept as text). A value that does not convert makes
        it a 422 and nothing changes, unless `errors` is 'coerce' (then it becomes null,
        and the answer's warnings say which). Fits submitted later see the new types."""
        try:
            return await run_in_threadpool(
                self.datasets.retype, str(dataset_id), principal.tenant, patch)
        except KeyError:
            raise Problem(404, f"dataset {dataset_id} not found") from None
        except DatasetError as err:
            raise problems.invalid(["body", "dtypes"], str(err)) from None

    @api.get("/v1/datasets", tags=["datasets"], responses=responses(*CALLER, 422))
    async def list_datasets(self, principal: Caller) -> DatasetList:
        return DatasetList(
            datasets=await run_in_threadpool(self.datasets.list, principal.tenant)
        )

    @api.get("/v1/datasets/{dataset_id}", tags=["datasets"],
             responses=responses(*CALLER, 404, 422))
    async def get_dataset(self, dataset_id: UUID, principal: Caller) -> DatasetInfo:
        try:
            return await run_in_threadpool(self.datasets.get, str(dataset_id), principal.tenant)
        except KeyError:
            raise Problem(404, f"dataset {dataset_id} not found") from None

    # -- fits and jobs -----------------------------------------------------------------

    @api.post("/v1/reasoning/fit", status_code=202, tags=["reasoning"],
              responses=responses(*CALLER, *BODY, 404))
    async def reasoning_fit(
        self,
        request: ReasoningFitRequest,
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> FitAccepted:
        """Fit a ReasoningModel on the labels or by distilling a teacher."""
        return await self._submit("reasoning_fit", request, principal, idempotency_key)

    @api.post("/v1/models/fit", status_code=202, tags=["models"],
              responses=responses(*CALLER, *BODY, 404))
    async def models_fit(
        self,
        request: ModelFitRequest,
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> FitAccepted:
        """Train a same-server model (a future teacher); the search picks among the families."""
        return await self._submit("model_fit", request, principal, idempotency_key)

    async def _submit(
        self,
        kind: JobKind,
        request: ReasoningFitRequest | ModelFitRequest,
        principal: Principal,
        idempotency_key: str | None,
    ) -> FitAccepted:
        """Validate, record the job, and wake the JobManager: the submit waits on the
        metadata store only, never on an actor (one starting or busy would hold it)."""
        tenant = principal.tenant
        # The checks read the catalog (column statistics made at upload), off the event loop.
        warnings = await run_in_threadpool(self._check_submit, request, tenant,
                                           idempotency_key)
        try:
            job = await run_in_threadpool(
                self.jobs.create, str(uuid4()), kind, str(request.dataset_id),
                request.model_dump(mode="json"), tenant, idempotency_key,
            )
        except IdempotencyConflict as err:
            raise problems.invalid(["header", "idempotency-key"], str(err)) from None
        self.manager.wake.remote()  # not awaited; the JobManager's watcher looks anyway
        families = "/".join(request.family_names())
        return FitAccepted(
            job_id=job.job_id,
            status=job.status,
            message=f"accepted: {families} fit with {request.n_hyperopt_steps} trials",
            dataset_id=job.dataset_id,
            warnings=warnings,
        )

    def _check_submit(
        self, request: ReasoningFitRequest | ModelFitRequest, tenant: str, key: str | None
    ) -> list[DataWarning]:
        """The tenant's room (storage, then queue) and the request against its dataset;
        what the fit will assume that may be wrong."""
        self._check_quota(tenant, 0)
        warnings = self._check_fit(request, tenant)
        self._check_queue(tenant, key)
        return warnings

    def _check_quota(self, tenant: str, adding: int) -> None:
        """A 413 when what the tenant stores, with `adding` bytes more, passes its quota (a
        new dataset counts its upload's size; a fit, which makes a model, needs room left)."""
        quota = self.settings.max_stored_bytes_per_tenant
        used = stored_bytes(self.engine, tenant)
        if used + adding > quota or used >= quota:
            raise Problem(413, f"your datasets and models take {used:,} bytes; the quota is "
                          f"{quota:,} (REASONING_MAX_STORED_BYTES_PER_TENANT)")

    def _check_queue(self, tenant: str, idempotency_key: str | None) -> None:
        """A 429 when the tenant already has its share of jobs waiting (a retried submit of
        a job already made is let through: it makes nothing new)."""
        cap = self.settings.max_pending_jobs_per_tenant
        waiting = self.jobs.pending_count(tenant)
        if waiting < cap or (idempotency_key and self.jobs.by_key(tenant, idempotency_key)):
            return
        raise Problem(429, f"{waiting:,} of your jobs are waiting for a runner; at most {cap:,} "
                      "may wait at once (REASONING_MAX_PENDING_JOBS_PER_TENANT)",
                      headers={"Retry-After": str(QUEUE_RETRY_AFTER)})

    def _check_fit(
        self, request: ReasoningFitRequest | ModelFitRequest, tenant: str
    ) -> list[DataWarning]:
        """404 for ids the tenant does not have, 422 for anything else wrong; the warnings
        of a fit that can run."""
        try:
            dataset = self.datasets.get(str(request.dataset_id), tenant)
        except KeyError:
            raise Problem(404, f"dataset {request.dataset_id} not found") from None
        teacher_id = request.teacher_model_id
        if teacher_id is not None and self._completed_model(str(teacher_id), tenant) is None:
            raise Problem(404, f"teacher model {teacher_id} not found")
        # Every column's statistics in one read of the catalog.
        summaries = self.datasets.column_summaries(dataset.dataset_id, list(dataset.dtypes()))
        errors = check_fit_request(
            request,
            dataset.dtypes(),
            lambda model_id: self._completed_model(model_id, tenant),
            self.settings.egress_policy(),
            summarize=summaries.__getitem__,
            design_limit=self.settings.max_design_cells,
        )
        if errors:
            raise problems.invalid_all(errors)
        has_teacher = request.has_teacher
        return [] if has_teacher else fit_warnings(request, dataset.dtypes(),
                                                    summaries.__getitem__)

    def _completed_model(self, model_id: str, tenant: str) -> ModelCard | None:
        try:
            return self.models.card(model_id, tenant)
        except KeyError:
            return None

    @api.get("/v1/jobs/{job_id}", tags=["jobs"], responses=responses(*CALLER, 404, 422))
    async def get_job(self, job_id: UUID, principal: Caller) -> Job:
        try:
            return await run_in_threadpool(self.jobs.get, str(job_id), principal.tenant)
        except KeyError:
            raise Problem(404, f"job {job_id} not found") from None

    @api.get("/v1/jobs", tags=["jobs"], responses=responses(*CALLER, 422))
    async def list_jobs(
        self, principal: Caller, limit: int = 100, status: JobStatus | None = None
    ) -> JobList:
        jobs = await run_in_threadpool(
            self.jobs.list, max(1, min(limit, 1000)), status, principal.tenant
        )
        return JobList(jobs=jobs)

    @api.post("/v1/jobs/{job_id}/cancel", tags=["jobs"],
              responses=responses(*CALLER, *BODY, 404, 409))
    async def cancel_job(self, job_id: UUID, principal: Caller) -> Job:
        job = await self.get_job(job_id, principal)
        if job.status in ("completed", "failed"):
            raise Problem(409, f"job {job_id} is already {job.status}")
        return await self.manager.cancel.remote(str(job_id))

    # -- models ------------------------------------------------------------------------

    @api.get("/v1/models", tags=["models"], responses=responses(*CALLER, 422))
    async def list_models(self, principal: Caller) -> ModelList:
        return ModelList(models=await run_in_threadpool(self.models.list, principal.tenant))

    # `:uuid`, so that /v1/models/fit (POST only) is not taken for a model id on GET.
    @api.get("/v1/models/{model_id:uuid}", tags=["models"],
             responses=responses(*CALLER, 404, 422))
    async def get_model(self, model_id: UUID, principal: Caller) -> ModelCard:
        card = await run_in_threadpool(self._completed_model, str(model_id), principal.tenant)
        if card is None:
            raise Problem(404, f"model {model_id} not found")
        return card

    @api.get("/v1/models/{model_id:uuid}/report", tags=["models"],
             response_class=HTMLResponse,
             responses={200: {"content": {"text/html": {}},
                              "description": "one self-contained HTML page"},
                        **responses(*CALLER, 404, 422)})
    async def model_report(self, model_id: UUID, principal: Caller) -> HTMLResponse:
        """The model's report for people: its card in words, metrics, trials, importance,
        shapes, and why it predicted what it did for a few test rows. The page loads
        nothing from any other host (charts are inline SVG)."""
        card = await self.get_model(model_id, principal)
        examples = None
        if card.examples:
            examples = await self._score(
                "predict", model_id,
                PredictRequest(dataframe_records=card.examples, top_k=None), principal,
            )
        # Drawing the charts takes a CPU for a moment: off the event loop.
        page = await run_in_threadpool(render_report, card, examples)
        return HTMLResponse(page, headers={"Cache-Control": "private, max-age=3600",
                                           "Content-Security-Policy": REPORT_CSP})

    @api.post("/v1/models/{model_id}/predict", tags=["models"],
              responses=responses(*CALLER, *BODY, 404))
    async def predict(
        self, model_id: UUID, request: PredictRequest, principal: Caller
    ) -> PredictResponse:
        """Predictions with the top-k reasons per row."""
        return await self._score("predict", model_id, request, principal)

    @api.post("/v1/models/{model_id}/invocations", tags=["models"],
              responses=responses(*CALLER, *BODY, 404))
    async def invocations(
        self, model_id: UUID, request: InvocationsRequest, principal: Caller
    ) -> InvocationsResponse:
        """MLflow's scoring protocol: any server (this one too) can use the model as a teacher."""
        return await self._score("invocations", model_id, request, principal)

    @api.post("/v1/models/{model_id}/grads", tags=["models"],
              responses=responses(*CALLER, *BODY, 404))
    async def grads(
        self, model_id: UUID, request: InvocationsRequest, principal: Caller
    ) -> GradsResponse:
        """Per-row Jacobians of a differentiable model: it can be a DiffModel teacher."""
        return await self._score("grads", model_id, request, principal)

    async def _score(self, method: str, model_id: UUID, request: Any, principal: Principal) -> Any:
        try:
            return await getattr(self.predictor, method).remote(
                str(model_id), request, principal.tenant
            )
        except RayTaskError as err:
            # Re-raise the predictor's own Problem so it keeps its status and fields.
            if isinstance(err.cause, Problem):
                raise err.cause from None
            raise


def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """Serve's application builder (`serve run serve_app.app:build_app home=...`).

    Both deployments touch the artifact store, so they get the AWS variables set here
    (a replica on another host has not got this process's environment).
    """
    config = Settings(**(args or {}))
    settings = config.model_dump(mode="json")
    options: dict[str, Any] = {"num_cpus": 0}
    if env := forwarded_env():
        options["runtime_env"] = {"env_vars": env}
    predictor = ModelPredictor.options(ray_actor_options=options).bind(settings)
    # A replica count only when asked for: a Serve config's autoscaling_config (see
    # deploy/) and a fixed num_replicas in code do not mix.
    replicas = {"num_replicas": config.replicas} if config.replicas > 1 else {}
    return ReasoningIngress.options(ray_actor_options=options, **replicas).bind(
        settings, predictor
    )

