"""Service settings: defaults for a laptop, overridable by REASONING_* variables or flags."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

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
