"""`reasoning demo` (`make demo`): one whole fit through the REST API, start to stop.

It starts the service on a local Ray, registers the bundled housing table, fits a
`gam` on the houses listed since 2020, follows the job, and prints the test metrics and
the reasons for three rows. Everything goes through HTTP, as a client would do it.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import httpx

from serve_app import runtime
from serve_app.settings import Settings

FIT_REQUEST: dict[str, Any] = {
    "filter": {"kind": "cmp", "col": "listed_at", "op": ">=", "value": "2020-01-01"},
    "task": {"task_kind": "regression", "label_column": "price"},
    "model_types": ["gam"],
    "n_hyperopt_steps": 4,
    "random_state": 42,
}


def _check(response: httpx.Response) -> Any:
    if response.is_error:
        raise SystemExit(f"{response.request.method} {response.request.url}: "
                         f"{response.status_code} {response.text}")
    return response.json()


def _follow(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """Print each change of stage or progress until the job ends."""
    last = None
    while True:
        job = _check(client.get(f"/v1/jobs/{job_id}"))
        line = (f"  {job['status']:<9} {job['stage']:<9} "
                f"{job['progress']['done']}/{job['progress']['total']}  {job['message']}")
        if line != last:
            print(line, flush=True)
            last = line
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.5)


def _show(client: httpx.Client, model_id: str, rows: list[dict[str, Any]]) -> None:
    card = _check(client.get(f"/v1/models/{model_id}"))
    print(f"\nmodel {model_id}: {card['family']} on {card['task']['label_column']}")
    print(f"  {card['summary']}")
    print(f"  hyperparameters: {card['hyperparameters']}")
    metrics = card["metrics"]["test"]
    print("  test metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    top = sorted(card["explanation"]["importance"].items(), key=lambda kv: -kv[1])
    print("  importance: " + ", ".join(f"{k} {v:.3g}" for k, v in top))
    answer = _check(client.post(f"/v1/models/{model_id}/predict",
                                json={"dataframe_records": rows, "top_k": 3}))
    for row, pred, expl in zip(rows, answer["predictions"], answer["explanations"], strict=True):
        print(f"\n  {row}")
        print(f"  predicted price {pred:.1f} = base {expl['base_value']:.1f}")
        for reason in expl["reasons"]:
            print(f"      {reason['contribution']:+8.1f}  {reason['column']} = {reason['value']}")
        rest = expl["output"] - expl["base_value"] - sum(r["contribution"] for r in
                                                         expl["reasons"])
        print(f"      {rest:+8.1f}  (the other columns)")


def run_demo(settings: Settings) -> int:
    print(f"starting Ray and the service on http://{settings.host}:{settings.port} ...",
          flush=True)
    info = runtime.start(settings)
    try:
        with httpx.Client(base_url=info["url"], timeout=60) as client:
            data = resources.files("reasoning").joinpath("data", "houses.csv").read_bytes()
            dataset = _check(client.post("/v1/datasets", files={"file": ("houses.csv", data)},
                                         data={"name": "houses (demo)"}))
            print(f"registered dataset {dataset['dataset_id']}: {dataset['n_rows']} rows, "
                  + ", ".join(f"{c['name']}:{c['dtype']}" for c in dataset["columns"]))
            accepted = _check(client.post("/v1/reasoning/fit",
                                          json={"dataset_id": dataset["dataset_id"],
                                                **FIT_REQUEST}))
            print(f"submitted job {accepted['job_id']}: {accepted['message']}")
            job = _follow(client, accepted["job_id"])
            if job["status"] != "completed":
                print(f"the job failed: {job['message']}")
                return 1
            rows = [
                {"area_sqm": 72.5, "rooms": 3, "neighborhood": "harbor", "has_garden": False,
                 "built_year": 1985, "listed_at": "2023-05-01"},
                {"area_sqm": 140.0, "rooms": 5, "neighborhood": "hills", "has_garden": True,
                 "built_year": 2015, "listed_at": "2024-02-11"},
                {"area_sqm": None, "rooms": 2, "neighborhood": "university",
                 "has_garden": False, "built_year": None, "listed_at": "2021-09-30"},
            ]
            _show(client, job["model_id"], rows)
    finally:
        print("\nstopping the service ...", flush=True)
        runtime.stop(settings)
    print("done.")
    return 0
