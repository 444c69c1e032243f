"""trainer.run: the hyperparameter search, as n Ray Tune trials running in parallel."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.search import BasicVariantGenerator

from reasoning.schemas import Trial
from reasoning.training import PreparedData, score_trial
from tune_configs import search_space

TRIAL_CPUS = 1
"""Each trial fits single-threaded (xgboost n_jobs=1), so one CPU per trial."""

_STOP_REQUESTED: set[str] = set()
"""Searches asked to stop, by name; module state because Tune pickles its stopper."""


def request_stop(name: str) -> None:
    """Ask the search called `name` (running in this process) to stop its trials."""
    _STOP_REQUESTED.add(name)


class _StopOnRequest(tune.Stopper):
    """Ends the whole experiment once `request_stop(name)` was called.

    Stopping through Tune (rather than killing its driver) lets Tune remove the
    placement groups of its trials; killed from outside, they would hold CPUs forever.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.name in _STOP_REQUESTED


def _trial(config: dict[str, Any], data: PreparedData, family: str, random_state: int) -> None:
    tune.report({"score": score_trial(data, family, config, random_state)})


class _Progress(tune.Callback):
    """Counts finished trials (completed or errored) and passes the count on."""

    def __init__(self, total: int, on_progress: Callable[[int, int], None]) -> None:
        self.total, self.done, self.on_progress = total, 0, on_progress

    def _bump(self) -> None:
        self.done += 1
        self.on_progress(self.done, self.total)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._bump()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._bump()


def run_search(
    data: PreparedData,
    family: str,
    n_trials: int,
    random_state: int,
    storage: Path,
    name: str,
    on_progress: Callable[[int, int], None],
) -> list[Trial]:
    """Run the trials and return them in generation order with their validation loss.

    BasicVariantGenerator samples every configuration from the seed alone, never from
    earlier results, so the set of trials does not depend on which finishes first: the
    same request gives the same trials and the same winner.
    """
    trainable = tune.with_resources(
        tune.with_parameters(_trial, data=data, family=family, random_state=random_state),
        {"cpu": TRIAL_CPUS},
    )
    tuner = tune.Tuner(
        trainable,
        param_space=search_space(family),
        tune_config=tune.TuneConfig(
            num_samples=n_trials,
            metric="score",
            mode="min",
            search_alg=BasicVariantGenerator(random_state=random_state),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            storage_path=str(storage),
            name=name,
            verbose=0,
            callbacks=[_Progress(n_trials, on_progress)],
            stop=_StopOnRequest(name),
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    # Trial directories carry the generation index, which orders the table reproducibly.
    results = sorted(tuner.fit(), key=lambda r: r.path)
    trials = []
    for result in results:
        score = (result.metrics or {}).get("score")
        ok = result.error is None and score is not None and math.isfinite(score)
        trials.append(
            Trial(
                params={k: _plain(v) for k, v in result.config.items()},
                score=float(score) if ok else None,
                error=None if result.error is None else _last_line(result.error),
            )
        )
    return trials


def _last_line(error: BaseException) -> str:
    """The exception's own message, without Ray's wrapping traceback."""
    cause = getattr(error, "cause", None) or error
    return f"{type(cause).__name__}: {cause}"[:500]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
