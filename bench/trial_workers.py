"""Trial workers: what starting one costs, and what Ray's worker prestart and
`preload_python_modules` save.

A trial runs in a fresh Ray actor process, which imports what `actors.trainer` imports
(pandas, scikit-learn, scipy, Ray Tune) before its first fit. This starts a local Ray
(2 CPUs) with and without `_system_config={"preload_python_modules": [...]}`, waits for
the workers Ray prestarts when the first driver connects, then creates one-CPU actors
that import `actors.trainer`, one round after another, and prints how long each took to
answer and in which process.

    .venv/bin/python bench/trial_workers.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRELOAD = "actors.trainer"


def one_mode(preload: bool, rounds: int) -> list[tuple[int, float, int]]:
    import ray

    config = {"preload_python_modules": [PRELOAD]} if preload else {}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
             _system_config=config)
    time.sleep(15)  # the prestarted workers finish starting (and preloading)

    @ray.remote(num_cpus=1)
    class TrialLike:
        def ready(self) -> int:
            import actors.trainer  # noqa: F401  what a trial imports
            return os.getpid()

    rows = []
    for i in range(rounds):
        start = time.perf_counter()
        actor = TrialLike.remote()
        pid = ray.get(actor.ready.remote())
        rows.append((i + 1, time.perf_counter() - start, pid))
        ray.kill(actor)
        time.sleep(3)
    ray.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--mode", choices=["none", "preload"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # one mode per process: Ray's system config is fixed at its start
        for row in one_mode(args.mode == "preload", args.rounds):
            print(*row)
        return
    print("mode     round  ready s  process")
    print("-------  -----  -------  -------")
    for mode in ("none", "preload"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--rounds",
                              str(args.rounds)], capture_output=True, text=True, check=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
        for line in out.splitlines():
            round_, seconds, pid = line.split()
            print(f"{mode:<7}  {round_:>5}  {float(seconds):7.2f}  {pid}")


if __name__ == "__main__":
    main()
