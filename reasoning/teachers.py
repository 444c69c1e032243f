"""Teacher protocols (README.md, "Distilling a teacher"): what a teacher answers, and the
HTTP client.

The same-server teacher (a TeacherModel actor) and an external URL give the same
`TeacherAnswer`, so synth-gen and training do not care which one labelled a row. The
HTTP client batches rows, keeps a few batches in flight, retries connection errors and
5xx with backoff, and fails with the teacher's own words on a 4xx or a malformed answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import numpy as np
import pandas as pd
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from reasoning.jsonable import json_scalar
from reasoning.service.egress import EgressPolicy, GuardedTransport, refusal_of

QUOTE_LIMIT = 300
MASK = "***"


def shown_url(url: str) -> str:
    """A teacher's URL as a model card, a report or a job's message shows it. Headers are
    never shown (they are sealed), but a URL can carry credentials too, as a password or a
    query value (`?api_key=…`): those are masked, the endpoint stays readable."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{netloc.rpartition('@')[2]}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(key, MASK) for key, _ in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


class TeacherError(Exception):
    """The teacher could not label the rows; the message says why, quoting its answer."""


@dataclass
class TeacherAnswer:
    """A teacher's outputs for a batch: values (n,) or class probabilities (n, K)."""

    values: np.ndarray
    classes: list[Any] | None = None

    @staticmethod
    def concat(parts: list[TeacherAnswer]) -> TeacherAnswer:
        if not parts:
            raise ValueError("no answers to join")
        classes = parts[0].classes
        for part in parts[1:]:
            if part.classes != classes:
                raise TeacherError(
                    f"the teacher changed its classes between batches: {classes} vs "
                    f"{part.classes}"
                )
        return TeacherAnswer(np.concatenate([p.values for p in parts]), classes)


def frame_payload(frame: pd.DataFrame) -> dict[str, Any]:
    """Rows as MLflow's dataframe_split, with JSON-safe cells (None, ISO timestamps)."""
    data = [[json_scalar(v) for v in row] for row in frame.itertuples(index=False)]
    return {"dataframe_split": {"columns": [str(c) for c in frame.columns], "data": data}}


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "..."


def parse_predictions(body: Any, n_rows: int) -> TeacherAnswer:
    """`{"predictions": [...]}` or a bare list: numbers, or per row a list / {class: prob}."""
    rows = body.get("predictions") if isinstance(body, dict) else body
    if not isinstance(rows, list):
        raise TeacherError(f"expected a list of predictions, got: {_quote(json.dumps(body))}")
    if len(rows) != n_rows:
        raise TeacherError(f"the teacher returned {len(rows)} predictions for {n_rows} rows")
    if not rows:
        return TeacherAnswer(np.zeros(0))
    first = rows[0]
    try:
        if isinstance(first, dict):
            classes = list(first)
            values = np.array([[float(r[c]) for c in classes] for r in rows], dtype=float)
            return _checked(TeacherAnswer(values, classes))
        if isinstance(first, list):
            values = np.array(rows, dtype=float)
            if values.ndim != 2:
                raise ValueError("rows of different lengths")
            return _checked(TeacherAnswer(values, list(range(values.shape[1]))))
        return _checked(TeacherAnswer(np.array(rows, dtype=float)))
    except (TypeError, ValueError, KeyError) as err:
        raise TeacherError(
            f"malformed predictions ({err}): {_quote(json.dumps(rows[:3]))}"
        ) from None


def _checked(answer: TeacherAnswer) -> TeacherAnswer:
    if not np.isfinite(answer.values).all():
        raise TeacherError("the teacher returned NaN or infinite predictions")
    return answer


def parse_jacobians(body: Any, n_rows: int, n_columns: int) -> np.ndarray:
    """`{"jacobians": [...]}`: per row one derivative per column, or per class such a list.

    Returns (n, K, d) with K = 1 for regression; null entries become NaN (ignored later).
    """
    rows = body.get("jacobians") if isinstance(body, dict) else None
    if not isinstance(rows, list) or len(rows) != n_rows:
        got = len(rows) if isinstance(rows, list) else _quote(json.dumps(body))
        raise TeacherError(f"expected {n_rows} jacobians, got: {got}")
    try:
        array = np.array(
            [[np.nan if v is None else float(v) for v in _flat(r)] for r in rows], dtype=float
        )
    except (TypeError, ValueError) as err:
        raise TeacherError(f"malformed jacobians ({err}): {_quote(json.dumps(rows[:2]))}") from None
    per_row = array.shape[1] if array.ndim == 2 else 0
    if per_row == 0 or per_row % n_columns:
        raise TeacherError(f"each jacobian needs {n_columns} entries per class; got {per_row}")
    return array.reshape(n_rows, per_row // n_columns, n_columns)


def _flat(row: Any) -> list[Any]:
    if isinstance(row, list) and row and isinstance(row[0], list):
        return [v for part in row for v in part]
    if not isinstance(row, list):
        raise TypeError("a jacobian row must be a list")
    return row


class _Transient(Exception):
    """A failure worth another try: a timeout, a lost connection, a 5xx."""


@dataclass
class HttpTeacher:
    """An external teacher behind a URL, called in batches with a few in flight."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    batch_size: int = 1024
    max_in_flight: int = 4
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    on_batch: Callable[[int], None] | None = None
    """Called with each labelled batch's row count, for progress reports."""
    policy: EgressPolicy = field(default_factory=EgressPolicy)
    """Where it may connect: public addresses, plus what the allow-list names."""
    max_response_bytes: int = 64 * 1024 * 1024

    def predict(self, frame: pd.DataFrame) -> TeacherAnswer:
        answers = self._run(frame, self.url, lambda body, n: parse_predictions(body, n))
        return TeacherAnswer.concat(answers)

    def jacobians(self, frame: pd.DataFrame, url: str) -> np.ndarray:
        d = frame.shape[1]
        parts = self._run(frame, url, lambda body, n: parse_jacobians(body, n, d))
        return np.concatenate(parts)

    def _run(self, frame: pd.DataFrame, url: str, parse: Any) -> list[Any]:
        batches = [frame.iloc[i : i + self.batch_size] for i in range(0, len(frame),
                                                                     self.batch_size)]
        return asyncio.run(self._all(batches, url, parse))

    async def _all(self, batches: list[pd.DataFrame], url: str, parse: Any) -> list[Any]:
        gate = asyncio.Semaphore(self.max_in_flight)
        # trust_env=False: proxy variables of the service's environment never apply here.
        async with httpx.AsyncClient(timeout=self.timeout, trust_env=False,
                                     follow_redirects=False,
                                     transport=GuardedTransport(self.policy)) as client:

            async def one(batch: pd.DataFrame) -> Any:
                async with gate:
                    body = await self._post(client, url, frame_payload(batch))
                parsed = parse(body, len(batch))
                if self.on_batch is not None:
                    self.on_batch(len(batch))
                return parsed

            return await asyncio.gather(*(one(b) for b in batches))

    async def _post(self, client: httpx.AsyncClient, url: str, payload: dict) -> Any:
        """One batch's answer; a timeout, a lost connection or a 5xx is tried again."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff),  # backoff, 2×, 4×, ...
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._post_once(client, url, payload)
        except _Transient as last:
            raise TeacherError(
                f"the teacher at {shown_url(url)} failed {self.retries + 1} times; last: {last}"
            ) from None

    async def _post_once(self, client: httpx.AsyncClient, url: str, payload: dict) -> Any:
        try:
            status, text = await self._send(client, url, payload)
        except httpx.TimeoutException:
            raise _Transient(f"no answer within {self.timeout:g} s") from None
        except httpx.TransportError as err:
            refused = refusal_of(err)
            if refused:
                raise TeacherError(f"refused to call {shown_url(url)}: {refused}") from None
            raise _Transient(f"could not connect ({type(err).__name__}: {err})") from None
        if status >= 500:
            raise _Transient(f"HTTP {status}: {_quote(text)}")
        if status >= 300:
            raise TeacherError(
                f"the teacher at {shown_url(url)} answered HTTP {status}: {_quote(text)}"
            )
        try:
            return json.loads(text)
        except ValueError:
            raise TeacherError(
                f"the teacher at {shown_url(url)} answered with invalid JSON: {_quote(text)}"
            ) from None

    async def _send(self, client: httpx.AsyncClient, url: str, payload: dict) -> tuple[int, str]:
        """POST and read the answer, refusing more than max_response_bytes."""
        async with client.stream("POST", url, json=payload, headers=self.headers) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_response_bytes:
                    raise TeacherError(
                        f"the teacher at {shown_url(url)} answered with more than "
                        f"{self.max_response_bytes:,} bytes"
                    )
            return response.status_code, body.decode(response.encoding or "utf-8", "replace")
