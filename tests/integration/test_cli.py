"""The `reasoning` command as a user runs it: `reasoning demo` on a Ray cluster that was
already running (`--address`), which is how the service joins a cluster. The demo runs in
the background from the session's start (`demo_run` in conftest.py); this reads its end."""

from __future__ import annotations

import re

from tests.integration.service import DemoOnACluster


def test_demo_joins_a_running_cluster_and_tells_its_story(demo_run: DemoOnACluster):
    done = demo_run.result()
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert demo_run.head_outlived_demo
    assert re.search(r"registered dataset \S+: 2000 rows", out), out
    assert "completed" in out and "test metrics: " in out
    assert len(re.findall(r"predicted price [\d.]+ = base [\d.]+", out)) == 3, out
    assert out.rstrip().endswith("done.")
    # The fit ran on the cluster it was pointed at, which kept the home's state.
    assert list((demo_run.home / "home" / "artifacts" / "models").iterdir())
