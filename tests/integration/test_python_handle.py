"""Python callers: the app's handle takes and returns the REST API's pydantic models, and
acts for the principal the caller passes, with the same tenant rules as REST."""

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
from reasoning.service.auth import Principal
from reasoning.synthetic import houses
from serve_app.problems import Problem
from tests.integration.conftest import OTHER, TENANT

ME = Principal(tenant=TENANT)


@pytest.fixture
def handle(ray_driver):
    from ray import serve

    return serve.get_app_handle("reasoning")


def test_fit_and_predict_through_the_handle(handle, client):
    import time

    frame = houses(300, seed=5)
    dataset = handle.register_dataset.remote(
        frame.to_csv(index=False).encode(), "houses.csv", "from python", principal=ME
    ).result()
    assert isinstance(dataset, DatasetInfo) and dataset.n_rows == 300
    request = ReasoningFitRequest(
        dataset_id=dataset.dataset_id,
        task={"task_kind": "regression", "label_column": "price"},
        model_types=["gam"],
        n_hyperopt_steps=2,
    )
    accepted = handle.reasoning_fit.remote(request, principal=ME).result()
    assert isinstance(accepted, FitAccepted) and accepted.status == "pending"
    for _ in range(600):
        job = handle.get_job.remote(accepted.job_id, principal=ME).result()
        assert isinstance(job, Job)
        if job.status in ("completed", "failed"):
            break
        time.sleep(0.5)
    assert job.status == "completed", job.message
    card = handle.get_model.remote(job.model_id, principal=ME).result()
    assert isinstance(card, ModelCard) and card.family == "gam"
    rows = frame.drop(columns=["price"]).head(4)
    rows["listed_at"] = rows["listed_at"].astype(str)
    answer = handle.predict.remote(
        job.model_id,
        PredictRequest(dataframe_records=rows.astype(object).where(rows.notna(), None)
                       .to_dict("records")),
        principal=ME,
    ).result()
    assert isinstance(answer, PredictResponse) and len(answer.predictions) == 4
    # The same tenant over REST sees what its Python caller made; another tenant does not.
    assert client.get(f"/v1/models/{job.model_id}").status_code == 200
    stranger = Principal(tenant=OTHER)
    for call in (handle.get_dataset.remote(dataset.dataset_id, principal=stranger),
                 handle.get_job.remote(accepted.job_id, principal=stranger),
                 handle.get_model.remote(job.model_id, principal=stranger)):
        with pytest.raises(Problem) as caught:
            call.result()
        assert caught.value.status == 404


def test_handle_errors_carry_the_problem(handle):
    import uuid

    with pytest.raises(Problem) as caught:
        handle.get_dataset.remote(uuid.uuid4(), principal=ME).result()
    assert caught.value.status == 404
