"""The `reasoning` command as a user runs it: `reasoning demo` on a Ray cluster that was
already running (`--address`), which is how the service joins a cluster. The demo runs in
the background from the session's start (`demo_run` in conftest.py); this reads its end.
The demo is a client of the service in auth mode `none` (reasoning.client.Client)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.service import DemoOnACluster

SCREEN = 30
"""Lines a terminal shows at once: the demo's whole story fits in them."""


def test_demo_joins_a_running_cluster_and_tells_its_story(demo_run: DemoOnACluster):
    done = demo_run.result()
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert demo_run.head_outlived_demo
    assert re.search(r"registered houses.csv as dataset \S+: 2,000 rows", out), out
    assert re.search(r"completed in [\d.]+ s: model \S+ \(gam regression of price\)", out)
    assert re.search(r"test: +rmse [\d.]+ +mae [\d.]+ +r2 ", out), out
    assert len(re.findall(r"why [\d.]+ for area_sqm=72.5|why [\d.]+ for rooms=2", out)) == 2
    # Quiet: Ray's and Serve's own logs went to files, and the story fits on one screen.
    assert done.stderr == "", done.stderr[-3000:]
    assert len(out.splitlines()) <= SCREEN and "INFO" not in out, out
    assert re.search(r"Ray's and Serve's logs are in \S+/logs\n", out), out
    assert "(raylet)" not in out and "(ServeReplica" not in out, out
    # It ends with the report it wrote for its model.
    last = out.rstrip().splitlines()[-1]
    report = Path(last.rsplit(": ", 1)[1])
    assert last.startswith("the model's report") and report.is_file()
    assert "<svg" in report.read_text()
    # The fit ran on the cluster it was pointed at, which kept the home's state.
    assert list((demo_run.home / "home" / "artifacts" / "models").iterdir())
