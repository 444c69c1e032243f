"""The `reasoning` commands that talk to a running service, against the real one: each
command once, its `--json` parsed, its exit code checked, and the live progress display
and Ctrl-C seen as a person sees them, under a pseudo-terminal.

Most run in-process (`serve_app.cli.main`, the entry point itself, with this process's
output captured); the terminal ones run as a real `reasoning` process."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest

from reasoning.synthetic import houses
from serve_app.answers import DENIED, FAILED, INTERRUPTED, NOT_FOUND, OK, REFUSED, UNAVAILABLE
from serve_app.cli import main
from tests.integration.conftest import TENANT
from tests.integration.service import Service, wait_for


class Cli:
    """`reasoning ARGS` against the session's service, acting for TENANT."""

    def __init__(self, service: Service, capsys: pytest.CaptureFixture[str]) -> None:
        self.service, self.capsys = service, capsys

    def __call__(self, *args: str, url: str | None = None) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([*args, "--url", url or self.service.url])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *args: str) -> object:
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(service: Service, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("REASONING_API_KEY", service.keys[TENANT])
    return Cli(service, capsys)


@pytest.fixture(scope="module")
def table_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "houses.csv"
    houses(500, seed=21).to_csv(path, index=False)
    return path


def test_datasets_upload_list_show(cli: Cli, table_file: Path):
    info = cli.json("datasets", "upload", str(table_file), "--name", "from the cli")
    assert info["n_rows"] == 500 and info["name"] == "from the cli"
    listed = cli.json("datasets", "list")
    assert info["dataset_id"] in [d["dataset_id"] for d in listed]
    code, out, _ = cli("datasets", "show", info["dataset_id"])
    assert code == 0 and "500 rows" in out and "listed_at:timestamp" in out
    code, _, err = cli("datasets", "show", str(uuid.uuid4()))
    assert code == NOT_FOUND and "not found" in err


def test_fit_a_file_then_models_jobs_predict_report(cli: Cli, table_file: Path,
                                                    tmp_path: Path):
    code, out, err = cli("fit", str(table_file), "--label", "price", "--family", "linear",
                         "--trials", "2", "--seed", "7", "--filter", "rooms >= 2")
    assert code == OK, out + err
    # Not a terminal: plain lines, then how it ended and its metrics.
    assert "uploaded houses.csv as dataset" in out
    assert "task: regression (price is float" in out
    found = re.search(r"completed in [\d.]+ s: model (\S+) \(linear regression of price\)", out)
    assert found, out
    model_id = found.group(1)
    assert re.search(r"test: +rmse [\d.]+ +mae [\d.]+ +r2 ", out), out
    assert f"reasoning report {model_id}" in out

    card = cli.json("models", model_id)
    assert card["family"] == "linear" and card["random_state"] == 7
    assert card["filter"] == {"kind": "cmp", "col": "rooms", "op": ">=", "value": 2}
    assert model_id in [m["model_id"] for m in cli.json("models")]
    code, out, _ = cli("models", model_id)
    assert code == 0 and "hyperparameters:" in out and "importance:" in out
    job = cli.json("jobs", card["job_id"])
    assert job["status"] == "completed" and job["model_id"] == model_id
    assert card["job_id"] in [j["job_id"] for j in cli.json("jobs")]

    rows = tmp_path / "rows.csv"
    houses(20, seed=22).to_csv(rows, index=False)
    scored_file = tmp_path / "scored.csv"
    code, out, _ = cli("predict", model_id, str(rows), "-o", str(scored_file), "--top-k", "2")
    assert code == 0 and "wrote 20 rows" in out
    scored = pd.read_csv(scored_file)
    features = [c["name"] for c in card["features"]]
    assert [f"reason: {name}" for name in features] == [
        c for c in scored.columns if c.startswith("reason: ")]
    assert (scored[[f"reason: {name}" for name in features]].notna().sum(axis=1) == 2).all()
    answers = cli.json("predict", model_id, str(rows))["responses"]
    assert len(answers[0]["predictions"]) == 20
    assert answers[0]["predictions"] == pytest.approx(list(scored["prediction"]))

    page = tmp_path / "report.html"
    saved = cli.json("report", model_id, "-o", str(page))
    assert saved["path"] == str(page.resolve()) and page.read_text().startswith("<!DOCTYPE")


def test_fit_a_dataset_id_with_the_task_from_the_label(cli: Cli, houses_dataset: dict):
    code, out, err = cli("fit", houses_dataset["dataset_id"], "--label", "segment",
                         "--family", "decision_tree", "--trials", "1")
    assert code == OK, out + err
    assert "task: classification (segment is categorical" in out
    assert "decision_tree classification of segment" in out and "accuracy" in out


def test_fit_distils_a_teacher_model(cli: Cli, houses_dataset: dict, fits: dict):
    teacher = fits["teacher"]["model_id"]
    job = cli.json("fit", houses_dataset["dataset_id"], "--label", "price", "--family",
                   "linear", "--trials", "1", "--teacher-model", teacher)
    assert job["status"] == "completed", job
    card = cli.json("models", job["model_id"])
    assert card["teacher"]["kind"] == "model" and card["teacher"]["model_id"] == teacher
    assert card["metrics"]["fidelity"] and card["metrics"]["label_only"]


def test_no_wait_then_cancel(cli: Cli, houses_dataset: dict):
    accepted = cli.json("fit", houses_dataset["dataset_id"], "--label", "price",
                        "--family", "xgboost", "--trials", "60", "--no-wait")
    code, out, _ = cli("cancel", accepted["job_id"])
    assert code == 0 and "failed" in out and "cancel" in out
    code, _, err = cli("cancel", accepted["job_id"])  # already over
    assert code == REFUSED and "already failed" in err


def test_exit_codes_say_what_happened(cli: Cli, houses_dataset: dict, service: Service,
                                      monkeypatch: pytest.MonkeyPatch):
    dataset = houses_dataset["dataset_id"]
    # The job failed: a filter that keeps too few rows to fit.
    code, out, _ = cli("fit", dataset, "--label", "price", "--family", "linear",
                       "--trials", "1", "--filter", "rooms > 8")
    assert code == FAILED and "failed" in out
    code, _, err = cli("fit", dataset, "--label", "price", "--filter", "rooms about 3")
    assert code == REFUSED and "cannot read the filter" in err
    code, _, err = cli("fit", dataset, "--label", "pricee", "--task", "regression")
    assert code == REFUSED and "price" in err  # the service's did-you-mean
    code, _, err = cli("models", str(uuid.uuid4()))
    assert code == NOT_FOUND
    code, _, err = cli("fit", "no-such-file.csv", "--label", "price")
    assert code == REFUSED and "neither a file nor a dataset id" in err
    code, _, err = cli("jobs", url="http://127.0.0.1:9")
    assert code == UNAVAILABLE and "could not reach" in err
    monkeypatch.setenv("REASONING_API_KEY", "rk_not-a-key")
    code, _, err = cli("jobs")
    assert code == DENIED


def test_watching_a_failed_job_exits_1(cli: Cli, fits: dict):
    code, out, _ = cli("jobs", fits["starved"]["job_id"], "--watch")
    assert code == FAILED and "failed" in out


# -- under a terminal ------------------------------------------------------------------


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A `reasoning` process on a pseudo-terminal of 120×40, as a person's shell runs it."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            os.execve(sys.executable, [sys.executable, "-m", "serve_app.cli", *args], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.screen = ""

    def _read(self, wait: float) -> bool:
        """Take what the process wrote within `wait` seconds; False once it closed the pty."""
        ready, _, _ = select.select([self.fd], [], [], wait)
        if ready:
            try:
                self.screen += os.read(self.fd, 65536).decode(errors="replace")
            except OSError:  # the process ended and closed the terminal
                return False
        return True

    @property
    def text(self) -> str:
        """What the terminal shows, without its colour and cursor codes."""
        return ANSI.sub("", self.screen)

    def read_until(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.text)) is None:
            if time.monotonic() > deadline or not self._read(0.5):
                raise AssertionError(f"never saw {pattern!r}:\n{self.text[-3000:]}")
        return found

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def exit_code(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            self._read(0.2)  # a full pty would hold the process
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"still running:\n{self.screen[-3000:]}")


def test_live_progress_and_ctrl_c_under_a_terminal(service: Service, houses_dataset: dict):
    env = {**service.env, "REASONING_API_KEY": service.keys[TENANT],
           "REASONING_URL": service.url, "TERM": "xterm-256color", "COLUMNS": "120"}
    term = Terminal(["fit", houses_dataset["dataset_id"], "--label", "price", "--family",
                     "xgboost", "--trials", "80"], env)
    job_id = term.read_until(r"job (\S+) accepted").group(1)
    # The live bar: stage, done of total, the unit, elapsed time, the best score so far.
    term.read_until(r"train\s+\S*\s+[1-9]\d*/80 trials\s+\d:\d\d:\d\d\s+best score [\d.]+")
    term.type("\x03")  # Ctrl-C, as the terminal sends it
    term.read_until(r"cancel job \S+\? \(no: leave it running\)")
    term.type("y\r")
    term.read_until(r"failed: cancelled")
    assert term.exit_code() == INTERRUPTED
    with httpx.Client(base_url=service.url, timeout=30) as http:
        token = http.post("/v1/auth/token", json={"api_key": service.keys[TENANT]}).json()
        http.headers["authorization"] = f"Bearer {token['access_token']}"
        job = wait_for(http, job_id, lambda j: j["status"] == "failed")
    assert "cancel" in job["message"] and job["progress"]["done"] < 80
