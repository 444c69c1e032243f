"""The `reasoning` command as a user runs it: `reasoning demo` on a Ray cluster that was
already running (`--address`), which is how the service joins a cluster."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.integration.service import RayHead, free_port


def test_demo_joins_a_running_cluster_and_tells_its_story(tmp_path):
    with RayHead() as head:
        done = subprocess.run(
            [sys.executable, "-m", "serve_app.cli", "demo", "--address", head.address,
             "--port", str(free_port()), "--home", str(tmp_path / "home")],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        )
        # The demo ended its own work but left the cluster it joined running.
        assert head.proc is not None and head.proc.poll() is None
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert re.search(r"registered dataset \S+: 2000 rows", out), out
    assert "completed" in out and "test metrics: " in out
    assert len(re.findall(r"predicted price [\d.]+ = base [\d.]+", out)) == 3, out
    assert out.rstrip().endswith("done.")
    # The fit ran on the cluster it was pointed at, which kept the home's state.
    assert list((tmp_path / "home" / "models").iterdir())
