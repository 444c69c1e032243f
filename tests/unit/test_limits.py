"""Body limits counted on the stream, and the JSON depth bound (serve_app.limits), without Ray."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from serve_app import problems
from serve_app.limits import FORM_OVERHEAD, BodyLimit, BodyLimits, json_depth

PROBLEM = "application/problem+json"
LIMITS = BodyLimits(json_bytes=4000, upload_bytes=5000, json_depth=8)


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.add_middleware(BodyLimit, limits=lambda: LIMITS)

    @app.post("/json")
    async def echo(body: dict) -> dict:
        return {"keys": len(body)}

    @app.post("/raw")
    async def raw(request: Request) -> dict:
        return {"size": len(await request.body())}

    @app.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    return app


def _call(method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.request(method, path, **kwargs)

    return asyncio.run(go())


async def _chunks(body: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def _problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()["detail"]


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"{}", 1),
        (b"1", 0),
        (b'{"a": [1, {"b": [[]]}]}', 5),
        (b'{"a": "[[[[[[[[[[[[", "b": "\\"[[[["}', 1),  # brackets inside strings do not nest
        (b"[" * 5000 + b"]" * 5000, 5000),
        (b'["\\\\", [["]]]"]]]', 3),
    ],
)
def test_json_depth(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def test_json_depth_spans_chunks() -> None:
    deep = b"[" * 3_000_000 + b"]" * 3_000_000
    assert json_depth(deep) == 3_000_000


def test_small_json_passes() -> None:
    response = _call("POST", "/json", json={"a": [1, 2], "b": {"c": 3}})
    assert response.status_code == 200 and response.json() == {"keys": 2}


def test_declared_length_over_the_limit_is_413_before_reading() -> None:
    detail = _problem(_call("POST", "/json", content=b"{" + b" " * 4200 + b"}",
                            headers={"content-type": "application/json"}), 413)
    assert "4,000 bytes" in detail


def test_streamed_body_over_the_limit_is_413_without_content_length() -> None:
    body = json.dumps({"a": "x" * 4001}).encode()
    response = _call("POST", "/json", content=_chunks(body),
                     headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert "4,000 bytes" in _problem(response, 413)


def test_streamed_body_at_the_limit_passes() -> None:
    body = json.dumps({"a": "x" * (4000 - 9)}).encode()
    assert len(body) == 4000
    response = _call("POST", "/json", content=_chunks(body),
                     headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_raw_route_is_limited_too() -> None:
    response = _call("POST", "/raw", content=_chunks(b"x" * 4001),
                     headers={"content-type": "text/plain"})
    _problem(response, 413)


def test_multipart_gets_the_upload_limit_plus_framing() -> None:
    ok = _call("POST", "/raw", content=_chunks(b"x" * 5000),
               headers={"content-type": "multipart/form-data; boundary=b"})
    assert ok.status_code == 200 and ok.json() == {"size": 5000}
    over = _call("POST", "/raw", content=_chunks(b"x" * (5001 + FORM_OVERHEAD), 4096),
                 headers={"content-type": "multipart/form-data; boundary=b"})
    assert "limit of 5,000 bytes (plus 65,536 for the form)" in _problem(over, 413)


def test_deep_json_is_422_naming_the_depth() -> None:
    body = b'{"a": ' + b"[" * 9 + b"]" * 9 + b"}"
    detail = _problem(_call("POST", "/json", content=body,
                            headers={"content-type": "application/json"}), 422)
    assert "nested 10 levels deep" in detail and "at most 8" in detail


def test_very_deep_json_is_422_not_a_recursion_error() -> None:
    body = b"[" * 1500 + b"]" * 1500  # within the byte limit, past Python's recursion limit
    response = _call("POST", "/json", content=body, headers={"content-type": "application/json"})
    assert "nested 1,500 levels deep" in _problem(response, 422)


def test_depth_at_the_limit_passes() -> None:
    body = b'{"a": ' + b"[" * 7 + b"]" * 7 + b"}"
    response = _call("POST", "/json", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_get_without_body_is_untouched() -> None:
    assert _call("GET", "/ping").json() == {"ok": True}
