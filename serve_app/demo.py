"""`reasoning demo` (`make demo`): one whole fit through the REST API, start to stop.

It starts the service on a local Ray, registers the bundled housing table, fits a
`gam` on the houses listed since 2020, follows the job, prints the test metrics and the
reasons for two rows, and saves the model's report. Everything goes through HTTP with
`reasoning.client.Client`, as a user's script would; Ray's own logs go to files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from reasoning.client import Client
from serve_app import runtime
from serve_app.answers import console
from serve_app.fit_command import print_outcome
from serve_app.progress import JobDisplay
from serve_app.settings import Settings

FIT_REQUEST: dict[str, Any] = {
    "filter": {"kind": "cmp", "col": "listed_at", "op": ">=", "value": "2020-01-01"},
    "task": {"task_kind": "regression", "label_column": "price"},
    "model_types": ["gam"],
    "n_hyperopt_steps": 4,
    "random_state": 42,
}
ROWS = pd.DataFrame([
    {"area_sqm": 72.5, "rooms": 3, "neighborhood": "harbor", "has_garden": False,
     "built_year": 1985, "listed_at": "2023-05-01"},
    {"area_sqm": None, "rooms": 2, "neighborhood": "university", "has_garden": False,
     "built_year": None, "listed_at": "2021-09-30"},
], dtype=object)  # as written: no column of whole numbers turned into floats


def _story(client: Client, out: Console, reports: Path) -> Path | None:
    """Upload, fit, follow, explain two rows, save the report; its path, or None."""
    data = resources.files("reasoning").joinpath("data", "houses.csv")
    with resources.as_file(data) as path:
        dataset = client.upload(path, "houses (demo)")
    out.print(f"registered houses.csv as dataset {dataset.dataset_id}: {dataset.n_rows:,} rows,"
              f" {len(dataset.columns)} columns")
    accepted = client.fit({"dataset_id": dataset.dataset_id, **FIT_REQUEST})
    out.print(f"fitting price on the houses listed since 2020: job {accepted.job_id}")
    with JobDisplay(out) as display:
        job = client.wait(accepted.job_id, on_progress=display.update)
    card = print_outcome(client, job, out)
    if card is None:
        return None
    top = list(card.explanation.importance.items())[:4]
    out.print("  most important: " + ", ".join(f"{k} ({v:.3g})" for k, v in top))
    scored = client.predict(card.model_id, ROWS, top_k=3)
    for (_, row), answer in zip(ROWS.iterrows(), scored.responses[0].explanations,
                                strict=True):
        given = ", ".join(f"{k}={v}" for k, v in row.items() if pd.notna(v))
        out.print(f"why {answer.output:.1f} for {given}:")
        reasons = "  ".join(f"{r.contribution:+.1f} {r.column}" for r in answer.reasons)
        rest = answer.output - answer.base_value - sum(r.contribution for r in answer.reasons)
        out.print(f"  base {answer.base_value:.1f}  {reasons}  {rest:+.1f} the rest")
    reports.mkdir(parents=True, exist_ok=True)
    report = reports / f"report-{card.model_id}.html"
    report.write_text(client.report(card.model_id), encoding="utf-8")
    return report


def run_demo(settings: Settings, verbose: bool = False) -> int:
    out = console()
    out.print(f"starting Ray and the service on http://{settings.host}:{settings.port} ...")
    info = runtime.start(settings, verbose)
    out.print(f"  up; Ray's and Serve's logs are in {info['ray_logs']}")
    stores = settings.stores()
    reports = Path(stores.home if stores.uses_home else ".") / "reports"
    try:
        with Client(info["url"]) as client:
            report = _story(client, out, reports)
    finally:
        out.print("stopping the service ...")
        runtime.stop(settings)
    if report is None:
        return 1
    out.print(f"the model's report (open it in a browser): {report.resolve()}")
    return 0
