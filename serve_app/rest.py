"""The REST application: the FastAPI app, its middleware, and the routers it includes.

The ingress (serve_app.app) serves it through `asgi_app`, a builder Serve calls in each
replica: the app is then this module's own `api` in the replica's process, the very object
whose state the ingress fills in (`rest.api.state`). Given the app object instead, Serve
would serve a cloudpickled copy of it, and the ingress's writes would reach that copy only
as long as the ingress class happened to be pickled along with it.
"""

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from serve_app import problems
from serve_app.gate import RequestGate
from serve_app.limits import BodyLimit
from serve_app.readiness import Readiness
from serve_app.routes import datasets, fits, health, jobs, models, scoring, tokens

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
# In this order in the OpenAPI document.
for routes in (health, tokens, datasets, fits, jobs, models, scoring):
    api.include_router(routes.router)

# Middleware, dependencies and routes exist before the ingress (and its settings) does, and
# cannot reach its `self`: the ingress puts what they need in this replica's app state, and
# they read it at request time.
api.add_middleware(BodyLimit, limits=lambda: api.state.body_limits)
# Added last, so it runs first: identity, origin and content type, before any body is read.
api.add_middleware(RequestGate, policy=lambda: api.state.gate_policy)
# Outermost: while the replica starts, everything gets the service's own 503.
api.add_middleware(Readiness, ready=lambda: getattr(api.state, "waiting", "starting up"))


def asgi_app() -> FastAPI:
    """Serve's builder of the ingress's ASGI app, called in the replica (see above)."""
    return api
