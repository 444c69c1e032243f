"""trainer.run_search: the hyperparameter search, its trials as Ray tasks on warm workers.

Ray Tune drives the search: its BasicVariantGenerator draws the seeded configurations from
the families' search spaces (`tune_configs/`). Ray runs the trials, one task per
configuration with one CPU each, on its pool of task workers. Those processes outlive the
task: the next trial, of this job or a later one run by the same runner, finds pandas,
scikit-learn and xgboost already imported. A Tune `Tuner` starts its trial actors afresh
for every `fit` and keeps an experiment folder per search; that cost seconds per job,
more than a small search's trials take together (docs/BENCHMARKS.md, "Issue 9").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayError
from ray.tune.search import BasicVariantGenerator

from actors import lower_priority
from reasoning.schemas import Trial
from reasoning.training import PreparedData, score_trial, scored_trial
from tune_configs import search_space

TRIAL_CPUS = 1
"""Each trial fits single-threaded (xgboost n_jobs=1), so one CPU per trial."""
TRIAL_RETRIES = 1
"""More runs of a trial whose worker died (killed, out of memory, node lost): a fit is
deterministic, so the retry gives what the lost run would have. An error raised by the
fit itself is the trial's result, not retried."""
POLL = 0.2
"""Seconds between looks at cancellation while trials run."""


@ray.remote(num_cpus=TRIAL_CPUS, max_retries=TRIAL_RETRIES)
def _trial(
    data: PreparedData, family: str, params: dict[str, Any], random_state: int
) -> tuple[float, str]:
    """One trial: its validation score, and the node it ran on (a cluster operator's
    question, shown on the model card)."""
    lower_priority()
    return score_trial(data, family, params, random_state), ray.util.get_node_ip_address()


def warm_up() -> None:
    """Import what a trial needs, so that the first job's trials find warm workers too."""
    lower_priority()
    import reasoning.training  # noqa: F401


def warm_trial_workers() -> list[ray.ObjectRef]:
    """Start (or find) one task worker per CPU of the cluster, spread over the nodes, and
    import the trial's libraries in it; returns the tasks (to wait on, or not)."""
    task = ray.remote(num_cpus=TRIAL_CPUS, scheduling_strategy="SPREAD")(warm_up)
    return [task.remote() for _ in range(_cluster_cpus())]


def sample_configs(families: list[str], n_trials: int, seed: int) -> list[dict[str, Any]]:
    """The trials' configurations: n_trials spread over the families, sampled from the seed.

    Each family's share is drawn by Tune's BasicVariantGenerator(random_state=seed) from
    its search space. Nothing depends on earlier results or on which trial finishes
    first, so the same request gives the same trials and the same winner, and a single
    family gets exactly what a Tune experiment over its search space would sample.
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
    on_progress: Callable[[int, int, float | None], None],
    check_cancelled: Callable[[], None],
) -> list[Trial]:
    """Run one trial per configuration and return them in the given order.

    The split goes to the object store once. At most one trial per CPU of the cluster is
    in flight: Ray hands a worker back once its owner has no more queued tasks, so a
    search keeping no backlog lets the job beside it take its turn. `check_cancelled`
    raises to stop the search; its queued and running trials are cancelled on the way out.
    """
    shared = ray.put(data)
    in_flight = max(1, _cluster_cpus() // TRIAL_CPUS)
    waiting = list(enumerate(configs))
    running: dict[ray.ObjectRef, int] = {}
    trials: list[Trial | None] = [None] * len(configs)
    try:
        while waiting or running:
            while waiting and len(running) < in_flight:
                index, chosen = waiting.pop(0)
                ref = _trial.remote(shared, chosen["family"], chosen["params"], random_state)
                running[ref] = index
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL)
            for ref in done:
                index = running.pop(ref)
                trials[index] = _settled(configs[index], ref)
                settled = [t for t in trials if t is not None]
                scores = [t.score for t in settled
                          if t.score is not None and math.isfinite(t.score)]
                on_progress(len(settled), len(configs), min(scores, default=None))
            check_cancelled()
    finally:
        for ref in running:
            # Not forced: the trial stops between boosting rounds or iterations, and its
            # warm worker stays for the next one.
            ray.cancel(ref, force=False)
    return [t for t in trials if t is not None]


def _settled(chosen: dict[str, Any], ref: ray.ObjectRef) -> Trial:
    """The finished trial: its score, or the error that ended it."""
    try:
        score, node = ray.get(ref)
    except RayError as err:  # the fit raised, the task was cancelled, or retries ran out
        return Trial(family=chosen["family"], params=chosen["params"], score=None,
                     error=_last_line(err))
    return scored_trial(chosen["family"], chosen["params"], score, node)


def _cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))


def _last_line(error: BaseException) -> str:
    """The exception's own message, without Ray's wrapping traceback."""
    cause = getattr(error, "cause", None) or error
    return f"{type(cause).__name__}: {cause}"[:500]


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python value. Not `json_scalar`: a tuple (mlp's
    hidden_layer_sizes) must stay a tuple for the family, not become text."""
    return value.item() if hasattr(value, "item") else value
