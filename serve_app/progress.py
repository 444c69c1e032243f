"""What a person sees while a job runs: a live line on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from reasoning.schemas import TERMINAL_STATUSES, Job

UNITS = {"train": "trials", "synth_gen": "rows"}


def describe(job: Job) -> str:
    """One line for logs and pipes: status, stage, progress, best score, message."""
    best = f"  best {job.progress.best:.4g}" if job.progress.best is not None else ""
    return (f"{job.status:<9} {job.stage:<9} {job.progress.done}/{job.progress.total}"
            f"{best}  {job.message}")


class JobDisplay:
    """Follows one job: on a terminal a live bar (stage, done of total, elapsed time, best
    score so far) redrawn in place; in a pipe or a log, one line per change."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.started = time.monotonic()
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.last = ""

    def __enter__(self) -> JobDisplay:
        if self.live:
            self.progress = Progress(
                TextColumn("{task.fields[stage]:<9}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[best]}"),
                console=self.console,
                transient=True,  # the final summary replaces it
            )
            self.progress.start()
            self.task = self.progress.add_task("job", total=None, stage="pending", unit="",
                                               best="")
        return self

    def __exit__(self, *_: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, job: Job) -> None:
        if self.progress is None or self.task is None:
            if job.status in TERMINAL_STATUSES:
                return  # the caller says how it ended
            line = describe(job)
            if line != self.last:
                self.console.print(f"  {line}", highlight=False)
                self.last = line
            return
        done, total = job.progress.done, job.progress.total
        best = job.progress.best
        self.progress.update(
            self.task,
            completed=done,
            total=total or None,
            stage=job.stage if job.status == "running" else job.status,
            unit=UNITS.get(job.stage, ""),
            best=f"best score {best:.4g}" if best is not None else "",
        )
