"""How long the `reasoning` command takes before it does anything: Python's start and
the imports of each kind of command.

A command that talks to a running service (`jobs`, `models`, `fit`, ...) needs httpx,
pandas and the API's pydantic models; the commands that run the service (`serve`,
`admin`, `db`) need the stores and, for `serve`, Ray. This times each kind as a person
runs it, in a fresh process, `--repeat` times:

    .venv/bin/python bench/cli_start.py [--repeat 5]

`jobs --url http://127.0.0.1:9` asks a port where nothing listens, so it times the
whole client path to a refused connection (its own exit code), with no service needed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tables import table  # noqa: E402

REASONING = Path(sys.executable).parent / "reasoning"
COMMANDS = {
    "reasoning jobs --help": ["jobs", "--help"],
    "reasoning jobs (no service there)": ["jobs", "--url", "http://127.0.0.1:9"],
    "reasoning fit --help": ["fit", "--help"],
    "reasoning admin list-keys": ["admin", "list-keys"],
    "reasoning serve --help": ["serve", "--help"],
}


def timed(argv: list[str], cwd: str) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run([str(REASONING), *argv], cwd=cwd, capture_output=True)
    return time.perf_counter() - start, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as home:  # `admin` makes its store here
        for name, argv in COMMANDS.items():
            runs = [timed(argv, home) for _ in range(args.repeat)]
            seconds = [s for s, _ in runs]
            rows.append([name, f"{statistics.median(seconds):.2f}", f"{min(seconds):.2f}",
                         str(runs[-1][1])])
    print(table(["command", "median s", "min s", "exit code"], rows))


if __name__ == "__main__":
    main()
