"""The Serve application: a FastAPI ingress composed with a model-predictor deployment.

The routes live in serve_app.routes, one APIRouter per noun; each is a function taking the
`Service` first, and `ReasoningIngress` (a Service) has them as methods too, so REST
clients and Python callers holding `serve.get_app_handle("reasoning")` get the same
behaviour. The ingress is stateless, so it runs as many replicas as asked: it reads
datasets, models and jobs straight from the stores, hands submits and cancels to the
JobManager actor (the one writer of job state) and scoring to the ModelPredictor.
"""

import logging
import threading
from collections.abc import Callable
from typing import Any

import ray
from ray import serve
from ray.exceptions import RayError
from ray.serve.handle import DeploymentHandle

from actors.job_manager import job_manager
from reasoning.service.artifacts import forwarded_env
from reasoning.service.stores import keep_private
from serve_app import rest
from serve_app.auth import Authenticator
from serve_app.gate import GatePolicy
from serve_app.limits import BodyLimits
from serve_app.predictor import ModelPredictor
from serve_app.routes import datasets, fits, health, jobs, models, scoring
from serve_app.runtime import POOL_WAIT, check_bind, serve_listen_host
from serve_app.service import Service
from serve_app.settings import Settings

log = logging.getLogger(__name__)
PROMPT = 3.0
"""Seconds the constructor gives the JobManager's pool before it lets requests in with
503s and waits for the pool in a thread (a pool already up answers in milliseconds)."""


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
@serve.ingress(rest.asgi_app)
class ReasoningIngress(Service):
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
        # Serve routes requests here once this constructor returns, so it opens the stores
        # and reaches the JobManager first (a second or so): a replica Serve adds to a
        # running service (a restart, autoscaling) then answers at once. Only the JobManager's
        # pool, which takes up to POOL_WAIT on a first start, is waited for in a thread;
        # until then every request gets a 503 with Retry-After (serve_app.readiness). The
        # routes find this Service in the app's state (serve_app.routes.dependencies).
        state = rest.api.state
        state.waiting = "the service is starting; try again in a moment"
        state.service = self
        self._failed: BaseException | None = None
        if not self._attempt(self._open, listen):
            return
        try:
            # (The JobManager may itself be starting, or restarting: the outer bound.)
            up = bool(ray.get(self.manager.ready.remote(PROMPT), timeout=2 * PROMPT))
        except RayError:
            up = False
        if up:
            state.waiting = None
            return
        state.waiting = "the service is starting its job runners; try again in a moment"
        threading.Thread(target=self._attempt, args=(self._await_pool,), name="ingress-start",
                         daemon=True).start()

    def _open(self, listen: str) -> None:
        """Open the stores (migrating them if need be) and reach the JobManager."""
        state = rest.api.state
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
        state.authenticator = self.auth
        state.gate_policy = GatePolicy.of(self.auth, listen, self.settings.allowed_hosts)
        state.body_limits = BodyLimits(
            self.settings.max_json_bytes, self.settings.max_upload_bytes,
            self.settings.max_json_depth,
        )

    def _await_pool(self) -> None:
        """Let requests in once the JobManager's runners are up (or POOL_WAIT has passed)."""
        if not ray.get(self.manager.ready.remote(POOL_WAIT)):
            log.warning("the job pool was not up after %.0f s; jobs will wait for it",
                        POOL_WAIT)
        rest.api.state.waiting = None

    def _attempt(self, step: Callable[..., None], *args: Any) -> bool:
        """Run a start-up step; a failure is said in every answer and to Serve's health
        check (which replaces the replica), not raised into Serve's constructor call."""
        try:
            step(*args)
            return True
        except BaseException as err:  # noqa: BLE001 - said in every answer, and to Serve
            log.exception("the ingress could not start")
            self._failed = err
            rest.api.state.waiting = f"the service could not start: {err}"
            return False

    def check_health(self) -> None:
        """Serve's health check: a replica that could not start is replaced."""
        if self._failed is not None:
            raise RuntimeError(f"the ingress could not start: {self._failed}")

    # Python callers holding the app's handle call the routes as methods: each route
    # function takes the Service first, and a method call passes the ingress as `self`.
    # (`issue_token` and `upload_dataset` take the HTTP request itself, so REST only.) A
    # route that does not take the Service first must be a staticmethod here, as healthz is.
    healthz = staticmethod(health.healthz)
    register_dataset = datasets.register_dataset
    patch_dataset = datasets.patch_dataset
    list_datasets = datasets.list_datasets
    get_dataset = datasets.get_dataset
    reasoning_fit = fits.reasoning_fit
    models_fit = fits.models_fit
    get_job = jobs.get_job
    list_jobs = jobs.list_jobs
    cancel_job = jobs.cancel_job
    list_models = models.list_models
    get_model = models.get_model
    model_report = scoring.model_report
    predict = scoring.predict
    invocations = scoring.invocations
    grads = scoring.grads


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
    # mypy does not apply class decorators (python/mypy#3135): these are Serve Deployments.
    predictor = ModelPredictor.options(  # type: ignore[attr-defined]
        ray_actor_options=options).bind(settings)
    # A replica count only when asked for: a Serve config's autoscaling_config (see
    # deploy/) and a fixed num_replicas in code do not mix.
    replicas = {"num_replicas": config.replicas} if config.replicas > 1 else {}
    return ReasoningIngress.options(  # type: ignore[attr-defined]
        ray_actor_options=options, **replicas).bind(
        settings, predictor
    )

