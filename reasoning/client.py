"""A Python client of the REST API, typed with the API's own pydantic models.

    from reasoning.client import Client

    with Client("http://127.0.0.1:8000", api_key=None) as service:
        dataset = service.upload("houses.csv")
        job = service.fit({"dataset_id": dataset.dataset_id,
                           "task": {"task_kind": "regression", "label_column": "price"}})
        job = service.wait(job.job_id, on_progress=print)
        scored = service.predict(job.model_id, frame)   # predictions and reasons, as frames

With an API key (auth mode `token`) it exchanges the key for tokens and refreshes them by
itself. Every submit carries an `Idempotency-Key`, kept across its retries, so a submit
retried after a lost answer never makes two jobs. Every error is one `ServiceError` with
the service's problem document.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pandas as pd
from pydantic import BaseModel

from reasoning.schemas import (
    TERMINAL_STATUSES,
    DatasetInfo,
    DatasetList,
    FitAccepted,
    Job,
    JobList,
    ModelCard,
    ModelFitRequest,
    ModelList,
    PredictResponse,
    ProblemDetail,
    ReasoningFitRequest,
    TokenPair,
)

SUBMIT_ATTEMPTS = 3
"""A submit whose answer was lost (connection dropped, gateway error) is sent again,
with the same Idempotency-Key, this many times in all."""
RETRY_STATUSES = (502, 503, 504)
PREDICT_BATCH = 10_000
"""Rows per predict request: the service's limit for one scoring request."""
EXPIRY_MARGIN = 30.0
"""Seconds before an access token's expiry at which the client already refreshes it."""

Model = TypeVar("Model", bound=BaseModel)


class ServiceError(Exception):
    """The service answered with an error (or could not be reached: status 0)."""

    def __init__(self, problem: ProblemDetail) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}")
        self.problem = problem

    @property
    def status(self) -> int:
        return self.problem.status

    @classmethod
    def of(cls, response: httpx.Response) -> ServiceError:
        """The response's problem document, or one made from whatever else it carried."""
        try:
            return cls(ProblemDetail.model_validate(response.json()))
        except ValueError:
            return cls(ProblemDetail(title=response.reason_phrase or "error",
                                     status=response.status_code,
                                     detail=response.text[:500] or response.reason_phrase))

    @classmethod
    def unreachable(cls, url: str, err: httpx.TransportError) -> ServiceError:
        return cls(ProblemDetail(title="unreachable", status=0,
                                 detail=f"could not reach the service at {url}: {err}"))


class TokenAuth(httpx.Auth):
    """The service's token dance as an httpx auth flow: exchange the API key once, send the
    access token, and when it has expired send the refresh token beside it (the service
    answers the request and returns a fresh pair in its headers). A refresh that fails
    (the refresh token expired or was revoked) falls back to exchanging the key again, so
    two threads racing to refresh one token (the service revokes a reused refresh token's
    family) end with a fresh pair too."""

    def __init__(self, api_key: str, token_url: str, clock: Callable[[], float] = time.time):
        self.api_key, self.token_url, self.clock = api_key, token_url, clock
        self.pair: TokenPair | None = None
        self.expires_at = 0.0

    def _take(self, pair: TokenPair) -> None:
        self.pair, self.expires_at = pair, self.clock() + pair.expires_in

    def _exchange(self) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield httpx.Request("POST", self.token_url, json={"api_key": self.api_key})
        response.read()
        if response.is_error:
            raise ServiceError.of(response)
        self._take(TokenPair.model_validate(response.json()))

    def _sign(self, request: httpx.Request, refresh: bool) -> None:
        assert self.pair is not None
        request.headers["authorization"] = f"Bearer {self.pair.access_token}"
        if refresh:
            request.headers["refresh-token"] = self.pair.refresh_token
        else:
            request.headers.pop("refresh-token", None)

    def _copy_fresh(self, response: httpx.Response) -> None:
        """A refreshed pair comes back in the response's headers."""
        fresh = response.headers.get("refresh-token")
        bearer = response.headers.get("authorization", "")
        if fresh and bearer.lower().startswith("bearer ") and self.pair is not None:
            # The access token's lifetime is not in the headers: the last exchange's.
            self._take(self.pair.model_copy(update={
                "access_token": bearer.split(" ", 1)[1], "refresh_token": fresh}))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.pair is None:
            yield from self._exchange()
        self._sign(request, refresh=self.clock() >= self.expires_at - EXPIRY_MARGIN)
        response = yield request
        self._copy_fresh(response)
        if response.status_code != 401:
            return
        # Expired sooner than this clock thought (or revoked): refresh, then re-key.
        if "refresh-token" not in request.headers:
            self._sign(request, refresh=True)
            response = yield request
            self._copy_fresh(response)
            if response.status_code != 401:
                return
        yield from self._exchange()
        self._sign(request, refresh=False)
        yield request


@dataclass(frozen=True)
class Scored:
    """A predict call's answer as frames, row for row with the input.

    `predictions` has a `prediction` column (and, for classification, one `p(<class>)`
    column per class); `reasons` has one column per input column (its contribution; NaN
    where the reason was beyond top_k) plus `base_value` and `output`, which the
    contributions sum to."""

    predictions: pd.DataFrame
    reasons: pd.DataFrame
    responses: list[PredictResponse]


class Client:
    """One service, one identity. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.auth = TokenAuth(api_key, f"{self.url}/v1/auth/token") if api_key else None
        self.http = httpx.Client(base_url=self.url, timeout=timeout, auth=self.auth,
                                 transport=transport, headers={"accept": "application/json"})
        self._cards: dict[str, ModelCard] = {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- plumbing --------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise ServiceError.unreachable(self.url, err) from err
        if response.is_error:
            raise ServiceError.of(response)
        return response

    def _get(self, path: str, model: type[Model], **params: Any) -> Model:
        return model.model_validate(self._send("GET", path, params=params or None).json())

    # -- datasets --------------------------------------------------------------------

    def upload(self, source: str | Path | pd.DataFrame, name: str | None = None) -> DatasetInfo:
        """Register a CSV or Parquet file, or a DataFrame (sent as Parquet, dtypes kept)."""
        if isinstance(source, pd.DataFrame):
            buffer = io.BytesIO()
            source.to_parquet(buffer, index=False)
            filename, content = f"{name or 'dataframe'}.parquet", buffer.getvalue()
        else:
            path = Path(source)
            filename, content = path.name, path.read_bytes()
        form = {"name": name} if name else None
        response = self._send("POST", "/v1/datasets", files={"file": (filename, content)},
                              data=form)
        return DatasetInfo.model_validate(response.json())

    def datasets(self) -> list[DatasetInfo]:
        return self._get("/v1/datasets", DatasetList).datasets

    def dataset(self, dataset_id: str | uuid.UUID) -> DatasetInfo:
        return self._get(f"/v1/datasets/{dataset_id}", DatasetInfo)

    # -- fits and jobs ---------------------------------------------------------------

    def fit(
        self, request: ReasoningFitRequest | dict[str, Any], idempotency_key: str | None = None
    ) -> FitAccepted:
        """Submit a ReasoningModel fit (labels or a teacher); the request as the API takes it."""
        body = ReasoningFitRequest.model_validate(request)
        return self._submit("/v1/reasoning/fit", body, idempotency_key)

    def fit_model(
        self, request: ModelFitRequest | dict[str, Any], idempotency_key: str | None = None
    ) -> FitAccepted:
        """Submit a same-server model fit (a future teacher)."""
        body = ModelFitRequest.model_validate(request)
        return self._submit("/v1/models/fit", body, idempotency_key)

    def _submit(self, path: str, body: BaseModel, key: str | None) -> FitAccepted:
        """Sent again on a lost answer with the same key: the service returns the same job."""
        headers = {"idempotency-key": key or str(uuid.uuid4())}
        payload = body.model_dump(mode="json", exclude_unset=True)
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                response = self.http.post(path, json=payload, headers=headers)
            except httpx.TransportError as err:
                if attempt == SUBMIT_ATTEMPTS:
                    raise ServiceError.unreachable(self.url, err) from err
                time.sleep(0.5 * attempt)
                continue
            if response.status_code in RETRY_STATUSES and attempt < SUBMIT_ATTEMPTS:
                time.sleep(0.5 * attempt)
                continue
            if response.is_error:
                raise ServiceError.of(response)
            return FitAccepted.model_validate(response.json())
        raise AssertionError("unreachable")

    def job(self, job_id: str | uuid.UUID) -> Job:
        return self._get(f"/v1/jobs/{job_id}", Job)

    def jobs(self, limit: int = 100, status: str | None = None) -> list[Job]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return self._get("/v1/jobs", JobList, **params).jobs

    def cancel(self, job_id: str | uuid.UUID) -> Job:
        return Job.model_validate(self._send("POST", f"/v1/jobs/{job_id}/cancel").json())

    def watch(self, job_id: str | uuid.UUID, poll: float = 0.5) -> Iterator[Job]:
        """The job each time it changes, until it ends (the last one yielded is terminal)."""
        last = None
        while True:
            job = self.job(job_id)
            seen = job.model_dump(exclude={"started_at", "finished_at"})
            if seen != last:
                last = seen
                yield job
            if job.status in TERMINAL_STATUSES:
                return
            time.sleep(poll)

    def wait(
        self,
        job_id: str | uuid.UUID,
        on_progress: Callable[[Job], None] | None = None,
        poll: float = 0.5,
        timeout: float | None = None,
    ) -> Job:
        """Follow the job until it ends, calling `on_progress` with each change; the final
        job is returned whether it completed or failed (look at its `status`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.watch(job_id, poll):
            if on_progress is not None:
                on_progress(job)
            if job.status in TERMINAL_STATUSES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout} s")
        raise AssertionError("unreachable")

    # -- models ----------------------------------------------------------------------

    def models(self) -> list[ModelCard]:
        return self._get("/v1/models", ModelList).models

    def model(self, model_id: str | uuid.UUID) -> ModelCard:
        key = str(model_id)
        if key not in self._cards:  # a card never changes once written
            self._cards[key] = self._get(f"/v1/models/{model_id}", ModelCard)
        return self._cards[key]

    def report(self, model_id: str | uuid.UUID) -> str:
        """The model's report: one self-contained HTML page."""
        return self._send("GET", f"/v1/models/{model_id}/report",
                          headers={"accept": "text/html"}).text

    def predict(
        self, model_id: str | uuid.UUID, frame: pd.DataFrame, top_k: int | None = 5,
        pairs: bool = False,
    ) -> Scored:
        """Score a frame's rows (columns the model does not use are left out), in batches of
        the service's per-request limit. With `pairs`, a gam's pair terms are reasons of
        their own (a column "a & b" in `reasons`) instead of halves in their columns'."""
        card = self.model(model_id)
        features = [c.name for c in card.features]
        missing = [name for name in features if name not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks the model's input columns {missing}")
        rows = frame[features]
        responses = [
            PredictResponse.model_validate(self._send(
                "POST", f"/v1/models/{model_id}/predict",
                json={"dataframe_split": _split(rows.iloc[start:start + PREDICT_BATCH]),
                      "top_k": top_k, "pairs": pairs},
            ).json())
            for start in range(0, max(len(rows), 1), PREDICT_BATCH)
        ] if len(rows) else []
        terms = features + ([" & ".join(t.columns) for t in card.explanation.pairs]
                            if pairs else [])
        return _scored(responses, terms, frame.index)


def _split(frame: pd.DataFrame) -> dict[str, Any]:
    """A frame as MLflow's dataframe_split: pandas writes missing values as null and
    timestamps in ISO 8601, which the service reads back in the model's dtypes."""
    split = json.loads(frame.to_json(orient="split", date_format="iso", index=False))
    return {"columns": split["columns"], "data": split["data"]}


def _scored(responses: list[PredictResponse], terms: list[str], index: pd.Index) -> Scored:
    """`terms`: the model's input columns, then its pair terms when they were asked for."""
    predictions: list[Any] = []
    probabilities: list[list[float]] = []
    reasons: list[dict[str, float]] = []
    classes = responses[0].classes if responses else None
    for answer in responses:
        predictions += answer.predictions
        probabilities += answer.probabilities or []
        for row in answer.explanations:
            cells = dict.fromkeys(terms, float("nan"))
            cells.update({r.column: r.contribution for r in row.reasons})
            reasons.append({**cells, "base_value": row.base_value, "output": row.output})
    table = pd.DataFrame({"prediction": predictions}, index=index)
    if classes is not None and probabilities:
        for k, name in enumerate(classes):
            table[f"p({name})"] = [p[k] for p in probabilities]
    columns = [*terms, "base_value", "output"]
    return Scored(table, pd.DataFrame(reasons, index=index, columns=columns), responses)
