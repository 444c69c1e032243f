"""Python callers: the app's handle takes and returns the REST API's pydantic models."""

from __future__ import annotations

import pytest

from reasoning.schemas import (
    DatasetInfo,
    FitAccepted,
    Job,
    ModelCard,
    PredictRequest,
    PredictResponse,
    ReasoningFitRequest,
)
from reasoning.synthetic import houses


@pytest.fixture(scope="module")
def handle(ray_driver):
    from ray import serve

    return serve.get_app_handle("reasoning")


def test_fit_and_predict_through_the_handle(handle):
    import time

    frame = houses(300, seed=5)
    dataset = handle.register_dataset.remote(
        frame.to_csv(index=False).encode(), "houses.csv", "from python").result()
    assert isinstance(dataset, DatasetInfo) and dataset.n_rows == 300
    request = ReasoningFitRequest(
        dataset_id=dataset.dataset_id,
        task={"task_kind": "regression", "label_column": "price"},
        model_types=["gam"],
        n_hyperopt_steps=2,
    )
    accepted = handle.reasoning_fit.remote(request).result()
    assert isinstance(accepted, FitAccepted) and accepted.status == "pending"
    for _ in range(600):
        job = handle.get_job.remote(accepted.job_id).result()
        assert isinstance(job, Job)
        if job.status in ("completed", "failed"):
            break
        time.sleep(0.5)
    assert job.status == "completed", job.message
    card = handle.get_model.remote(job.model_id).result()
    assert isinstance(card, ModelCard) and card.family == "gam"
    rows = frame.drop(columns=["price"]).head(4)
    rows["listed_at"] = rows["listed_at"].astype(str)
    answer = handle.predict.remote(
        job.model_id,
        PredictRequest(dataframe_records=rows.astype(object).where(rows.notna(), None)
                       .to_dict("records")),
    ).result()
    assert isinstance(answer, PredictResponse) and len(answer.predictions) == 4


def test_handle_errors_carry_the_problem(handle):
    import uuid

    from serve_app.problems import Problem

    with pytest.raises(Problem) as caught:
        handle.get_dataset.remote(uuid.uuid4()).result()
    assert caught.value.status == 404
