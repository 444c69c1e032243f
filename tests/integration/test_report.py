"""GET /v1/models/{id}/report, saved as `reasoning report` saves it and opened in a real
headless Chromium: no console errors, no request leaves the page, every chart drew. The
screenshots stay in test-artifacts/ for a person to look at."""

from __future__ import annotations

import httpx
import pytest

from tests.browser import Chromium
from tests.integration.report_page import report_in_browser
from tests.integration.service import submit, wait_job


@pytest.mark.parametrize("case", ["regression", "multiclass"])
def test_report_of_a_fit_opens_clean_in_a_browser(client: httpx.Client, fits: dict, case: str,
                                                  chromium: Chromium):
    card = client.get(f"/v1/models/{fits[case]['model_id']}").json()
    page, check = report_in_browser(client, chromium, card["model_id"], f"report-{case}")
    assert check.clean, check
    # A shape per input column, the importance and trial charts, a waterfall per example.
    assert check.charts == len(card["features"]) + 2 + len(card["examples"]), check
    assert len(card["examples"]) == 3
    assert card["family"] in page and f"{card['rows']['test']:,}" in page
    if case == "multiclass":
        assert all(str(name) in page for name in card["classes"])


def test_report_of_a_distilled_student_shows_fidelity(client: httpx.Client, fits: dict,
                                                      houses_dataset: dict,
                                                      chromium: Chromium):
    job = wait_job(client, submit(client, "/v1/reasoning/fit", {
        "dataset_id": houses_dataset["dataset_id"], "model_types": ["gam"],
        "n_hyperopt_steps": 1, "teacher_model_id": fits["teacher"]["model_id"],
        "task": {"task_kind": "regression", "label_column": "price"}}))
    assert job["status"] == "completed", job
    page, check = report_in_browser(client, chromium, job["model_id"], "report-distilled")
    assert check.clean, check
    lowered = page.lower()
    assert "fidelity" in lowered and "label-only" in lowered
    assert fits["teacher"]["model_id"] in page


def test_report_needs_the_models_tenant(client: httpx.Client, other_client: httpx.Client,
                                        fits: dict):
    model_id = fits["regression"]["model_id"]
    assert other_client.get(f"/v1/models/{model_id}/report").status_code == 404
    response = client.get(f"/v1/models/{model_id}/report")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
