"""Jobs: a fit as it is queued, runs and ends."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args
from uuid import UUID

from pydantic import BaseModel, Field

from reasoning.schemas.auth import DEFAULT_TENANT

JobStatus = Literal["pending", "running", "completed", "failed"]
JobStage = Literal["queued", "synth_gen", "train", "finalize", "done"]
JobKind = Literal["reasoning_fit", "model_fit"]
TERMINAL_STATUSES = frozenset({"completed", "failed"})
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in get_args(JobStatus) if s not in TERMINAL_STATUSES)
"""A job in one of these may still change (pending or running)."""


class Progress(BaseModel):
    """How far the job's current stage is."""

    done: int = Field(default=0, description="Units done: trials, or synthetic rows labelled")
    total: int = Field(default=0, description="Units the stage has in all (0: not known yet)")
    best: float | None = Field(
        default=None,
        description="While trials run: the best validation score so far (the model card's"
        " score_name; lower is better)",
    )


class Job(BaseModel):
    """A job as clients see it: the seed's four fields plus tracking detail."""

    job_id: UUID = Field(description="The job's id")
    status: JobStatus = Field(description="pending (queued), running, completed or failed")
    message: str = Field(description="What the job is doing or did, in words")
    dataset_id: UUID = Field(description="The dataset it fits on")
    kind: JobKind = Field(description="reasoning_fit (/v1/reasoning/fit) or model_fit "
                          "(/v1/models/fit)")
    stage: JobStage = Field(description="The pipeline stage: queued, synth_gen, train, "
                            "finalize, done")
    progress: Progress = Field(description="Progress of the current stage")
    model_id: UUID | None = Field(default=None, description="The model made, once completed")
    created_at: datetime = Field(description="When it was submitted (UTC)")
    started_at: datetime | None = Field(default=None, description="When a runner took it")
    finished_at: datetime | None = Field(default=None,
                                         description="When it completed or failed")
    error: str | None = Field(
        default=None,
        description="A failed job's error, its last line (operators see all of it, traceback"
        " included, with `reasoning admin show-job`)",
    )
    attempts: int = Field(default=0, description="Attempts started (a lost runner's attempt"
                          " is run again, up to a cap)")
    tenant: str = Field(default=DEFAULT_TENANT, description="The tenant that owns it")


class JobList(BaseModel):
    jobs: list[Job] = Field(description="Jobs, newest first")
