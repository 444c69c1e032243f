"""What the routes work with: one ingress replica's settings, stores and handles.

`ReasoningIngress` is a `Service`: it fills these in once its stores are open, and puts
itself in the app's state, where a route finds it (`routes.dependencies.Served`). A Python
caller holding the app's handle calls the same route functions as the ingress's methods,
with the ingress as their first argument.
"""

from ray.actor import ActorHandle
from ray.serve.handle import DeploymentHandle
from sqlalchemy import Engine

from reasoning.schemas import ModelCard
from reasoning.service.database import stored_bytes
from reasoning.service.dataset_store import DatasetStore
from reasoning.service.jobs import JobStore
from reasoning.service.registry import ModelRegistry
from serve_app.auth import Authenticator
from serve_app.problems import Problem
from serve_app.settings import Settings


class Service:
    """A replica's settings, stores and handles, and the look-ups several routes share."""

    settings: Settings
    datasets: DatasetStore
    models: ModelRegistry
    jobs: JobStore
    engine: Engine
    manager: ActorHandle
    """The JobManager: submits wake it, cancels go to it (the one writer of job state)."""
    predictor: DeploymentHandle
    """The ModelPredictor: routes call its methods, and take the answers through `scored`."""
    auth: Authenticator

    def check_quota(self, tenant: str, adding: int) -> None:
        """A 413 when what the tenant stores, with `adding` bytes more, passes its quota (a
        new dataset counts its upload's size; a fit, which makes a model, needs room left)."""
        quota = self.settings.max_stored_bytes_per_tenant
        used = stored_bytes(self.engine, tenant)
        if used + adding > quota or used >= quota:
            raise Problem(413, f"your datasets and models take {used:,} bytes; the quota is "
                          f"{quota:,} (REASONING_MAX_STORED_BYTES_PER_TENANT)")

    def completed_model(self, model_id: str, tenant: str) -> ModelCard | None:
        try:
            return self.models.card(model_id, tenant)
        except KeyError:
            return None
