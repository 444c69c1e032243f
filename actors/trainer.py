"""trainer.run: the hyperparameter search, as n Ray Tune trials running in parallel."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pyarrow.fs
import ray
from ray import tune
from ray.tune.registry import TRAINABLE_CLASS, _global_registry
from ray.tune.search import BasicVariantGenerator

from reasoning.schemas import Trial
from reasoning.training import PreparedData, score_trial, trial_workers
from tune_configs import search_space

TRIAL_CPUS = 1
"""Each trial fits single-threaded (xgboost n_jobs=1), so one CPU per trial."""
TRIAL_RETRIES = 1
"""More runs of a trial that failed, for a worker that died; an error raised by the fit
itself is run again too, which costs a trial's time but is rare."""

_STOP_REQUESTED: set[str] = set()
"""Searches asked to stop, by name; module state because Tune pickles its stopper."""


def request_stop(name: str) -> None:
    """Ask the search called `name` (running in this process) to stop its trials."""
    _STOP_REQUESTED.add(name)


class _StopOnRequest(tune.Stopper):
    """Ends the whole experiment once `request_stop(name)` was called.

    Stopping through Tune (rather than killing its driver, the runner) ends the trials
    and removes their placement groups at once, and the runner lives to report the end.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.name in _STOP_REQUESTED


def _trial(
    config: dict[str, Any], data: PreparedData, configs: list[dict[str, Any]], random_state: int
) -> None:
    chosen = configs[config["trial_index"]]
    score = score_trial(data, chosen["family"], chosen["params"], random_state)
    # Reported so the card says where each trial ran (a cluster operator's question).
    tune.report({"score": score, "node": ray.util.get_node_ip_address()})


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


def sample_configs(families: list[str], n_trials: int, seed: int) -> list[dict[str, Any]]:
    """The trials' configurations: n_trials spread over the families, sampled from the seed.

    Each family's share is drawn by Tune's BasicVariantGenerator(random_state=seed) from
    its search space, driven here without running Tune. Nothing depends on earlier
    results or on which trial finishes first, so the same request gives the same trials
    and the same winner, and a single family gets exactly what Tune itself would sample.
    """

    def never_run(config: dict[str, Any]) -> None:  # the experiment spec needs a trainable
        return None

    configs = []
    for i, family in enumerate(families):
        share = n_trials // len(families) + (i < n_trials % len(families))
        if share == 0:
            continue
        generator = BasicVariantGenerator(random_state=seed)
        generator.add_configurations(
            {family: {"run": never_run, "config": search_space(family), "num_samples": share}}
        )
        while (trial := generator.next_trial()) is not None:
            params = {k: _plain(v) for k, v in trial.config.items()}
            configs.append({"family": family, "params": params})
    return configs


def run_search(
    data: PreparedData,
    configs: list[dict[str, Any]],
    random_state: int,
    storage: tuple[str, pyarrow.fs.FileSystem | None],
    name: str,
    on_progress: Callable[[int, int], None],
) -> list[Trial]:
    """Run one trial per configuration, in parallel when the search is big enough to gain
    from it (`trial_workers`), and return them in the given order.

    The configurations go to the trials by index (a grid over 0..n-1), so Tune only
    schedules them; the split goes to the object store once via with_parameters. A trial
    whose worker dies (killed, out of memory) is run once more on a fresh one: a fit is
    deterministic, so the retry gives what the lost run would have.
    """
    trainable = tune.with_resources(
        tune.with_parameters(_trial, data=data, configs=configs, random_state=random_state),
        {"cpu": TRIAL_CPUS},
    )
    # Tune registers a trainable cluster-wide under its name, one namespace per Ray job,
    # and the trials of every search the service runs share one Ray job: under one name,
    # a search running beside another would start its trials with the other's data.
    trainable._name = f"trial-{name}"
    tuner = tune.Tuner(
        trainable,
        param_space={"trial_index": tune.grid_search(list(range(len(configs))))},
        tune_config=tune.TuneConfig(
            metric="score", mode="min", reuse_actors=True,
            max_concurrent_trials=trial_workers(
                data, len(configs), int(ray.cluster_resources().get("CPU", 1)) // TRIAL_CPUS),
        ),
        run_config=tune.RunConfig(
            storage_path=storage[0],
            storage_filesystem=storage[1],
            name=name,
            verbose=0,
            callbacks=[_Progress(len(configs), on_progress)],
            stop=_StopOnRequest(name),
            failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES),
        ),
    )
    try:
        results = tuner.fit()
    finally:
        # The registration pickles the split's object references; dropped with it. The
        # runner lives on, so the search's stop request goes too.
        _global_registry.unregister(TRAINABLE_CLASS, trainable._name)
        _STOP_REQUESTED.discard(name)
    trials = []
    # The grid's trials in the order Tune made them, i.e. by index. Not by
    # result.config: a trial that died before it reported has none.
    for chosen, result in zip(configs, results, strict=True):
        metrics = result.metrics or {}
        score = metrics.get("score")
        ok = result.error is None and score is not None and math.isfinite(score)
        trials.append(
            Trial(
                family=chosen["family"],
                params=chosen["params"],
                score=float(score) if ok else None,
                error=None if result.error is None else _last_line(result.error),
                node=metrics.get("node"),
            )
        )
    return trials


def _last_line(error: BaseException) -> str:
    """The exception's own message, without Ray's wrapping traceback."""
    cause = getattr(error, "cause", None) or error
    return f"{type(cause).__name__}: {cause}"[:500]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
