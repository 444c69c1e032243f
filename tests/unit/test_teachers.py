"""The teacher protocols without Ray: answers parsed, and the HTTP client's behaviour
against a real loopback server (batches, headers, retries, faults)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from reasoning.service.egress import EgressPolicy
from reasoning.teachers import (
    HttpTeacher,
    TeacherError,
    frame_payload,
    parse_jacobians,
    parse_predictions,
    shown_url,
)
from tests.teacher_server import TeacherServer, house_price

LOOPBACK = EgressPolicy.parse("127.0.0.1/32")
"""The test teacher runs on 127.0.0.1, which the egress guard refuses unless allowed."""


@pytest.fixture(scope="module")
def server() -> Iterator[TeacherServer]:
    teacher = TeacherServer()
    yield teacher
    teacher.close()


FRAME = pd.DataFrame({
    "area_sqm": [50.0, None, 120.0, 80.0, 66.0],
    "neighborhood": ["harbor", "hills", None, "harbor", "old_town"],
    "has_garden": [True, False, True, False, True],
    "listed_at": pd.to_datetime(["2021-01-01", "2022-02-02", None, "2020-05-05", "2023-03-03"]),
})


def test_payload_is_json_safe_dataframe_split() -> None:
    payload = frame_payload(FRAME)
    assert payload["dataframe_split"]["columns"] == list(FRAME.columns)
    row = payload["dataframe_split"]["data"][1]
    assert row[0] is None and row[3].startswith("2022-02-02")
    assert payload["dataframe_split"]["data"][2][1] is None


@pytest.mark.parametrize(
    ("body", "values", "classes"),
    [
        ({"predictions": [1, 2.5]}, [1.0, 2.5], None),
        ([3, 4], [3.0, 4.0], None),
        ({"predictions": [[0.2, 0.8], [0.6, 0.4]]}, [[0.2, 0.8], [0.6, 0.4]], [0, 1]),
        ([{"no": 0.9, "yes": 0.1}, {"no": 0.3, "yes": 0.7}], [[0.9, 0.1], [0.3, 0.7]],
         ["no", "yes"]),
    ],
)
def test_prediction_shapes(body, values, classes) -> None:
    answer = parse_predictions(body, 2)
    np.testing.assert_allclose(answer.values, values)
    assert answer.classes == classes


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"predictions": [1]}, "1 predictions for 2 rows"),
        ({"result": [1, 2]}, "expected a list"),
        ({"predictions": ["a", "b"]}, "malformed"),
        ({"predictions": [1, None]}, "NaN"),
        ({"predictions": [1, float("nan")]}, "NaN"),
        ({"predictions": [[0.1, 0.9], [1.0]]}, "malformed"),
    ],
)
def test_malformed_predictions(body, words) -> None:
    with pytest.raises(TeacherError, match=words):
        parse_predictions(body, 2)


def test_jacobian_shapes() -> None:
    flat = parse_jacobians({"jacobians": [[1, None, 3], [4, 5, 6]]}, 2, 3)
    assert flat.shape == (2, 1, 3) and np.isnan(flat[0, 0, 1])
    per_class = parse_jacobians({"jacobians": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}, 2, 2)
    assert per_class.shape == (2, 2, 2) and per_class[1, 1, 0] == 7
    with pytest.raises(TeacherError, match="expected 2 jacobians"):
        parse_jacobians({"jacobians": [[1, 2]]}, 2, 2)
    with pytest.raises(TeacherError, match="entries per class"):
        parse_jacobians({"jacobians": [[1, 2, 3], [1, 2, 3]]}, 2, 2)


def test_batches_headers_and_order(server: TeacherServer) -> None:
    before = server.count("/price")
    seen: list[int] = []
    teacher = HttpTeacher(f"{server.url}/price/predict", {"x-key": "k1"}, batch_size=2,
                          max_in_flight=2, on_batch=seen.append, policy=LOOPBACK)
    answer = teacher.predict(FRAME)
    np.testing.assert_allclose(answer.values, house_price(FRAME))
    assert server.count("/price") - before == 3 and sorted(seen) == [1, 2, 2]
    assert all(r["headers"].get("x-key") == "k1" for r in server.requests[before:])


def test_a_5xx_is_retried(server: TeacherServer) -> None:
    server.flaky_failures = 0
    answer = HttpTeacher(f"{server.url}/flaky/predict", backoff=0.01,
                         policy=LOOPBACK).predict(FRAME)
    assert len(answer.values) == len(FRAME) and server.flaky_failures == 2


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("reject", "HTTP 400: {\"error\": \"api key invalid for tenant acme\"}"),
        ("malformed", "invalid JSON"),
        ("short", "4 predictions for 5 rows"),
        ("slow", "no answer within 0.2 s"),
        ("nowhere", "HTTP 404"),
    ],
)
def test_faults_fail_with_the_teachers_words(server: TeacherServer, path, words) -> None:
    teacher = HttpTeacher(f"{server.url}/{path}/predict", timeout=0.2, retries=1, backoff=0.01,
                          policy=LOOPBACK)
    with pytest.raises(TeacherError) as caught:
        teacher.predict(FRAME)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://t.example/v1/predict", "https://t.example/v1/predict"),
        ("https://bob:s3cret@t.example:8443/p?api_key=abc&v=2#top",
         "https://bob:***@t.example:8443/p?api_key=***&v=***#top"),
        ("http://t.example/p?token", "http://t.example/p?token=***"),
        ("http://bob@t.example/p", "http://bob@t.example/p"),
    ],
)
def test_a_url_is_shown_without_what_may_be_credentials(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_a_teachers_error_names_its_url_without_the_credentials_in_it(
    server: TeacherServer,
) -> None:
    teacher = HttpTeacher(f"{server.url}/reject/predict?api_key=hunter2", retries=0,
                          policy=LOOPBACK)
    with pytest.raises(TeacherError) as caught:
        teacher.predict(FRAME)
    assert f"{server.url}/reject/predict?api_key=*** answered HTTP 400" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_connection_refused_is_retried_then_fails() -> None:
    teacher = HttpTeacher("http://127.0.0.1:9/predict", retries=2, backoff=0.01,
                          policy=LOOPBACK)
    with pytest.raises(TeacherError, match="failed 3 times; last: could not connect"):
        teacher.predict(FRAME)


@pytest.fixture
def proxy() -> Iterator[TeacherServer]:
    """A server posing as the environment's HTTP proxy: a proxied call would land here."""
    canary = TeacherServer()
    yield canary
    canary.close()


def test_proxy_variables_are_ignored(
    server: TeacherServer, proxy: TeacherServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    before = server.count("/price")
    answer = HttpTeacher(f"{server.url}/price/predict", policy=LOOPBACK).predict(FRAME)
    assert proxy.count() == 0
    assert server.count("/price") == before + 1 and len(answer.values) == len(FRAME)
