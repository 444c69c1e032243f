"""Service settings: defaults for a laptop, overridable by REASONING_* variables or flags."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from reasoning.distill import DistillOptions
from reasoning.service.auth import TokenPolicy
from reasoning.service.egress import EgressPolicy
from reasoning.service.jobs import JobLimits
from reasoning.service.stores import Stores
from reasoning.upload_checks import TableLimits
from serve_app.throttle import ThrottleLimits

APP_NAME = "reasoning"


class Settings(BaseSettings):
    """Everything the service can be told; state lives in `stores()`."""

    model_config = SettingsConfigDict(env_prefix="REASONING_", extra="ignore")

    home: str = ".reasoning"
    """Folder of the default stores (and of service.json); unused with remote stores."""
    store: str | None = None
    """Metadata store, a SQLAlchemy URL (default: SQLite at <home>/reasoning.db)."""
    artifacts: str | None = None
    """Artifact store, a folder or s3://bucket/prefix (default: <home>/artifacts)."""
    secret_key_file: str | None = None
    """The service secret's file (default: <home>/secret.key, made on first use)."""
    replicas: int = Field(1, ge=1)
    """Ingress replicas: they are stateless and read jobs from the metadata store."""
    host: str = "127.0.0.1"
    port: int = 8000
    address: str | None = None
    """Ray address to join (`auto` for a running cluster); None starts a local Ray."""
    max_upload_bytes: int = 100 * 1024 * 1024
    """Bytes of an uploaded file, counted as it streams in (413 beyond)."""
    max_upload_decoded_bytes: int = TableLimits.decoded_bytes
    """Bytes an upload's values may unpack into (decompressed, dictionaries expanded): 413."""
    max_upload_columns: int = TableLimits.columns
    """Columns of an uploaded table (422 beyond)."""
    max_upload_cell_chars: int = TableLimits.cell_chars
    """Characters of one text cell of an upload (422 beyond)."""
    max_design_cells: int = 200_000_000
    """Cells (rows × design columns) of the design matrix one trial may build: a 422 at
    submit beyond (a categorical column of many levels makes one column per level)."""
    max_json_bytes: int = 32 * 1024 * 1024
    """Bytes of any other request body (JSON), counted as it streams in (413 beyond)."""
    max_json_depth: int = 64
    """Nesting of arrays and objects in a JSON body (422 beyond)."""
    max_running_jobs: int = 2
    """Jobs whose pipelines run at once; more wait as `pending` (trials share the CPUs)."""
    max_running_jobs_per_tenant: int | None = JobLimits.running_per_tenant
    """Jobs of one tenant running at once (default: no cap beyond max_running_jobs); the
    queue takes turns across tenants in any case."""
    max_pending_jobs_per_tenant: int = JobLimits.pending_per_tenant
    """Jobs of one tenant waiting for a runner; a submit beyond is a 429."""
    max_stored_bytes_per_tenant: int = 10 * 2**30
    """Bytes one tenant's datasets and models may take in the artifact store: an upload or
    a fit beyond is a 413."""
    job_time_limit: float = JobLimits.time_limit
    """Seconds one attempt of a job may run before the job fails saying so."""
    model_cache_size: int = 16
    # Distillation and token defaults are their own classes' (one source for each).
    synthetic_factor: float = DistillOptions.synthetic_factor
    """Synth-gen makes about this many synthetic rows per real training row ..."""
    synthetic_cap: int = DistillOptions.synthetic_cap
    """... and at most this many in all."""
    synth_gen_shards: int = DistillOptions.synth_gen_shards
    """Synth-gen shards per distillation job (Ray tasks, one CPU each)."""
    teacher_timeout: float = DistillOptions.teacher_timeout
    """Seconds to wait for one batch from an external teacher."""
    teacher_retries: int = DistillOptions.teacher_retries
    """Retries (with backoff) after a connection error, a timeout or a 5xx."""
    teacher_allow: str = DistillOptions.teacher_allow
    """Teacher URLs may only reach public addresses, except these: comma-separated CIDRs
    and host names, e.g. "10.1.0.0/16, teacher.internal" (tests allow 127.0.0.1)."""

    auth_mode: Literal["none", "token"] = "none"
    """`none`: one implicit tenant, no credentials (a laptop); `token`: API keys, JWTs."""
    allow_open_bind: bool = False
    """In auth mode `none` the service refuses a non-loopback host unless this is set."""
    allowed_hosts: str = ""
    """In auth mode `none`, the Host names requests may use besides the listen address
    (and, on loopback, localhost): comma-separated, e.g. "reasoning.lab.internal"."""
    access_token_ttl: int = TokenPolicy.access_ttl
    """Seconds an access token is valid; then its refresh token buys a new pair."""
    refresh_token_ttl: int = TokenPolicy.refresh_ttl
    refresh_reuse_grace: float = TokenPolicy.reuse_grace
    """Seconds in which a just-used refresh token still buys a pair (concurrent requests of
    one client); after that, presenting it again revokes its family."""
    token_exchanges_per_minute: int = ThrottleLimits.exchanges_per_address
    """POST /v1/auth/token calls per minute from one client address (429 beyond)."""
    auth_failures_per_minute: int = ThrottleLimits.failures_per_address
    """Failed authentications per minute from one client address before it must wait."""
    key_failures_per_minute: int = ThrottleLimits.failures_per_key
    """Failed exchanges per minute naming one API key id before that id must wait."""
    token_issuer: str = TokenPolicy.issuer
    token_audience: str = TokenPolicy.audience

    def stores(self) -> Stores:
        return Stores.resolve(self.home, self.store, self.artifacts, self.secret_key_file)

    def distill_options(self) -> DistillOptions:
        """The distillation settings, which share DistillOptions' field names."""
        names = {f.name for f in dataclasses.fields(DistillOptions)}
        return DistillOptions(**self.model_dump(include=names))

    def table_limits(self) -> TableLimits:
        return TableLimits(self.max_upload_decoded_bytes, self.max_upload_columns,
                           self.max_upload_cell_chars)

    def job_limits(self) -> JobLimits:
        return JobLimits(self.max_running_jobs_per_tenant, self.max_pending_jobs_per_tenant,
                         self.job_time_limit)

    def throttle_limits(self) -> ThrottleLimits:
        return ThrottleLimits(self.token_exchanges_per_minute, self.auth_failures_per_minute,
                              self.key_failures_per_minute)

    def egress_policy(self) -> EgressPolicy:
        return EgressPolicy.parse(self.teacher_allow)

    def token_policy(self) -> TokenPolicy:
        return TokenPolicy(
            issuer=self.token_issuer, audience=self.token_audience,
            access_ttl=self.access_token_ttl, refresh_ttl=self.refresh_token_ttl,
            reuse_grace=self.refresh_reuse_grace,
        )
