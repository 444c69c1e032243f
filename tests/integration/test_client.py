"""`reasoning.client.Client` against the real service (auth mode `token`; the demo, in
test_cli.py, runs the same path in mode `none`): upload → fit → wait → predict → report,
tokens refreshed on the way, and a submit retried after a lost answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from reasoning.client import Client, ServiceError
from reasoning.schemas import Job
from reasoning.service.auth import TokenPolicy
from reasoning.synthetic import houses
from tests.integration.conftest import TENANT
from tests.integration.service import Service


@pytest.fixture
def service_client(service: Service) -> Iterator[Client]:
    with Client(service.url, api_key=service.keys[TENANT]) as client:
        yield client


def _requests_to(client: Client, path: str) -> list[httpx.Request]:
    """Every request the client sends to `path` from now on (auth flow requests too)."""
    seen: list[httpx.Request] = []
    client.http.event_hooks["request"].append(
        lambda request: seen.append(request) if request.url.path == path else None)
    return seen


def test_upload_fit_wait_predict_report(service_client: Client):
    frame = houses(400, seed=11)
    dataset = service_client.upload(frame, "from a DataFrame")
    assert dataset.n_rows == 400 and dataset.name == "from a DataFrame"
    # Sent as Parquet, the frame's dtypes arrive as they were.
    assert {c.name: c.dtype for c in dataset.columns}["listed_at"] == "timestamp"
    assert service_client.dataset(dataset.dataset_id) == dataset

    accepted = service_client.fit({
        "dataset_id": dataset.dataset_id, "model_types": ["linear"], "n_hyperopt_steps": 3,
        "task": {"task_kind": "regression", "label_column": "price"}})
    seen: list[Job] = []
    job = service_client.wait(accepted.job_id, on_progress=seen.append, poll=0.1)
    assert job.status == "completed", job
    assert seen[-1] == job and len(seen) >= 2, seen
    trained = [j for j in seen if j.stage == "train" or j.status == "completed"]
    assert trained and trained[-1].progress.best is not None, seen
    assert any(j.job_id == job.job_id for j in service_client.jobs())

    card = service_client.model(job.model_id)
    assert card.model_id in {c.model_id for c in service_client.models()}
    rows = houses(25, seed=12)  # with the label and a column the model does not use
    scored = service_client.predict(card.model_id, rows, top_k=None)
    assert list(scored.predictions.index) == list(rows.index)
    assert len(scored.predictions) == 25
    features = [c.name for c in card.features]
    total = scored.reasons[features].sum(axis=1) + scored.reasons["base_value"]
    np.testing.assert_allclose(total, scored.reasons["output"], atol=1e-6)
    np.testing.assert_allclose(scored.predictions["prediction"], scored.reasons["output"])

    page = service_client.report(card.model_id)
    assert page.lstrip().lower().startswith("<!doctype html") and str(card.model_id) in page


def test_pair_terms_come_back_as_reason_columns(service_client: Client, fits):
    card = service_client.model(fits["defaults"]["model_id"])
    names = [" & ".join(p.columns) for p in card.explanation.pairs]
    assert names, "the default gam chose no pair terms"
    scored = service_client.predict(card.model_id, houses(10, seed=14), top_k=None, pairs=True)
    terms = [*(c.name for c in card.features), *names]
    assert list(scored.reasons.columns) == [*terms, "base_value", "output"]
    total = scored.reasons[terms].sum(axis=1) + scored.reasons["base_value"]
    np.testing.assert_allclose(total, scored.reasons["output"], atol=1e-6)


def test_classification_predictions_carry_class_probabilities(service_client: Client, fits):
    card = service_client.model(fits["multiclass"]["model_id"])
    scored = service_client.predict(card.model_id, houses(30, seed=13), top_k=2)
    columns = [f"p({name})" for name in card.classes]
    assert list(scored.predictions.columns) == ["prediction", *columns]
    np.testing.assert_allclose(scored.predictions[columns].sum(axis=1), 1.0, atol=1e-9)
    # top_k=2: two reasons per row, the other columns' cells empty.
    features = [c.name for c in card.features]
    assert (scored.reasons[features].notna().sum(axis=1) == 2).all()


def test_an_expired_access_token_is_refreshed_on_the_way(service: Service,
                                                         service_client: Client):
    service_client.datasets()  # the key exchanged for a first pair
    exchanges = _requests_to(service_client, "/v1/auth/token")
    auth = service_client.auth
    assert auth is not None and auth.pair is not None
    first_refresh = auth.pair.refresh_token
    # The service's own secret forges what an hour's wait would give: an expired token,
    # which the client still believes valid (its clock says so).
    now = int(time.time())
    policy = TokenPolicy()
    expired = service.stores.credentials(policy).sign({
        "iss": policy.issuer, "aud": policy.audience, "sub": TENANT,
        "iat": now - 7200, "exp": now - 60})
    auth.pair = auth.pair.model_copy(update={"access_token": expired})
    statuses: list[int] = []
    service_client.http.event_hooks["response"].append(
        lambda response: statuses.append(response.status_code))

    assert isinstance(service_client.datasets(), list)
    assert statuses == [401, 200]  # refused, then served with the refresh token
    assert auth.pair.access_token != expired and auth.pair.refresh_token != first_refresh
    statuses.clear()
    service_client.datasets()  # the fresh pair works as it is
    assert statuses == [200]
    assert exchanges == []  # never needed the API key again

    # Known to be expired by the client's clock: the refresh token goes with the request.
    auth.pair = auth.pair.model_copy(update={"access_token": expired})
    auth.expires_at = 0.0
    statuses.clear()
    service_client.datasets()
    assert statuses == [200] and auth.pair.access_token != expired


def test_a_revoked_refresh_token_falls_back_to_the_api_key(service: Service,
                                                          service_client: Client):
    service_client.datasets()
    auth = service_client.auth
    assert auth is not None and auth.pair is not None
    exchanges = _requests_to(service_client, "/v1/auth/token")
    now, policy = int(time.time()), TokenPolicy()
    expired = service.stores.credentials(policy).sign({
        "iss": policy.issuer, "aud": policy.audience, "sub": TENANT,
        "iat": now - 7200, "exp": now - 60})
    auth.pair = auth.pair.model_copy(update={"access_token": expired,
                                             "refresh_token": "not-a-refresh-token"})
    assert isinstance(service_client.datasets(), list)
    assert len(exchanges) == 1


class LosesFirstAnswer(httpx.HTTPTransport):
    """A network that delivers the first submit to the service and loses its answer, as a
    dropped connection or a proxy timeout does."""

    def __init__(self) -> None:
        super().__init__()
        self.submits: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path == "/v1/reasoning/fit":
            self.submits.append(request.headers.get("idempotency-key"))
            if len(self.submits) == 1:
                response.read()
                raise httpx.ReadError("connection reset before the answer", request=request)
        return response


def test_a_submit_retried_after_a_lost_answer_makes_one_job(service: Service, houses_dataset):
    network = LosesFirstAnswer()
    with Client(service.url, api_key=service.keys[TENANT], transport=network) as client:
        before = {j.job_id for j in client.jobs(limit=1000)}
        accepted = client.fit({
            "dataset_id": houses_dataset["dataset_id"], "model_types": ["linear"],
            "n_hyperopt_steps": 1, "task": {"task_kind": "regression", "label_column": "price"}})
        assert len(network.submits) == 2
        assert network.submits[0] == network.submits[1] and network.submits[0]
        made = [j for j in client.jobs(limit=1000) if j.job_id not in before]
        assert [j.job_id for j in made] == [accepted.job_id]
        # Without a key of the caller's: each submit call is its own job.
        again = client.fit({
            "dataset_id": houses_dataset["dataset_id"], "model_types": ["linear"],
            "n_hyperopt_steps": 1, "task": {"task_kind": "regression", "label_column": "price"}})
        assert again.job_id != accepted.job_id
        assert client.wait(accepted.job_id).status == "completed"


def test_errors_are_one_exception_with_the_problem_document(service_client: Client,
                                                            houses_dataset):
    with pytest.raises(ServiceError) as missing:
        service_client.model(uuid.uuid4())
    assert missing.value.status == 404 and "not found" in missing.value.problem.detail
    with pytest.raises(ServiceError) as invalid:
        service_client.fit({"dataset_id": houses_dataset["dataset_id"],
                            "task": {"task_kind": "regression", "label_column": "pricee"}})
    assert invalid.value.status == 422 and invalid.value.problem.errors
    assert "price" in invalid.value.problem.detail  # the did-you-mean
    with Client(service_client.url, api_key="rk_wrong") as stranger, \
            pytest.raises(ServiceError) as denied:
        stranger.datasets()
    assert denied.value.status == 401
    with Client("http://127.0.0.1:9", timeout=2) as nowhere, \
            pytest.raises(ServiceError) as unreachable:
        nowhere.datasets()
    assert unreachable.value.status == 0 and "could not reach" in str(unreachable.value)
