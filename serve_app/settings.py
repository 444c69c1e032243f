"""Service settings: defaults for a laptop, overridable by REASONING_* variables or flags."""

from __future__ import annotations

import dataclasses

from pydantic_settings import BaseSettings, SettingsConfigDict

from reasoning.distill import DistillOptions
from reasoning.egress import EgressPolicy

APP_NAME = "reasoning"


class Settings(BaseSettings):
    """Everything the service can be told; all state lives under `home`."""

    model_config = SettingsConfigDict(env_prefix="REASONING_", extra="ignore")

    home: str = ".reasoning"
    host: str = "127.0.0.1"
    port: int = 8000
    address: str | None = None
    """Ray address to join (`auto` for a running cluster); None starts a local Ray."""
    max_upload_bytes: int = 100 * 1024 * 1024
    max_running_jobs: int = 2
    """Jobs whose pipelines run at once; more wait as `pending` (trials share the CPUs)."""
    model_cache_size: int = 16
    synthetic_factor: float = 5.0
    """Synth-gen makes about this many synthetic rows per real training row ..."""
    synthetic_cap: int = 100_000
    """... and at most this many in all."""
    synth_gen_shards: int = 2
    """SynthGen actors per distillation job (one CPU each)."""
    teacher_timeout: float = 30.0
    """Seconds to wait for one batch from an external teacher."""
    teacher_retries: int = 3
    """Retries (with backoff) after a connection error, a timeout or a 5xx."""
    teacher_allow: str = ""
    """Teacher URLs may only reach public addresses, except these: comma-separated CIDRs
    and host names, e.g. "10.1.0.0/16, teacher.internal" (tests allow 127.0.0.1)."""

    def distill_options(self) -> DistillOptions:
        """The distillation settings, which share DistillOptions' field names."""
        names = {f.name for f in dataclasses.fields(DistillOptions)}
        return DistillOptions(**self.model_dump(include=names))

    def egress_policy(self) -> EgressPolicy:
        return EgressPolicy.parse(self.teacher_allow)
