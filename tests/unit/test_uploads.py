"""The upload form parsed from the stream (serve_app.uploads), without Ray."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from serve_app import problems
from serve_app.limits import BodyLimit, BodyLimits
from serve_app.uploads import MAX_NAME_LENGTH, read_upload
from tests.multipart import FORM, form, part

LIMIT = 10_000


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.add_middleware(BodyLimit, limits=lambda: BodyLimits(1000, LIMIT))

    @app.post("/upload")
    async def upload(request: Request) -> dict:
        got = await read_upload(request, LIMIT)
        return {"size": len(got.content), "filename": got.filename, "name": got.name,
                "head": got.content[:20].decode("latin-1")}

    return app




async def _chunks(body: bytes, size: int = 999) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def _post(body: bytes, content_type: str = FORM, stream: bool = True) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            content = _chunks(body) if stream else body
            return await http.post("/upload", content=content,
                                   headers={"content-type": content_type})

    return asyncio.run(go())


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def test_file_and_name() -> None:
    body = form(part("name", "prices \u20ac".encode()), part("file", b"a,b\n1,2\n", "t.csv"))
    got = _post(body).json()
    assert got == {"size": 8, "filename": "t.csv", "name": "prices \u20ac", "head": "a,b\n1,2\n"}


def test_file_of_exactly_the_limit_passes_streamed() -> None:
    content = b"\r\n--b0undar" + b"x" * (LIMIT - 11)  # near-boundary bytes inside the file
    got = _post(form(part("file", content, "t.csv"))).json()
    assert got["size"] == LIMIT and got["name"] is None


def test_one_byte_over_without_content_length_is_413() -> None:
    response = _post(form(part("file", b"x" * (LIMIT + 1), "t.csv")))
    assert "content-length" not in response.request.headers
    assert "limit of 10,000 bytes" in _problem(response, 413)["detail"]


def test_one_byte_over_with_content_length_is_413() -> None:
    response = _post(form(part("file", b"x" * (LIMIT + 1), "t.csv")), stream=False)
    assert response.request.headers["content-length"]
    _problem(response, 413)


def test_missing_filepart() -> None:
    problem = _problem(_post(form(part("name", b"x"))), 422)
    assert problem["errors"][0]["loc"] == ["body", "file"] and "file" in problem["detail"]


def test_two_files() -> None:
    body = form(part("file", b"a\n1\n", "a.csv"), part("file", b"b\n2\n", "b.csv"))
    assert "one file" in _problem(_post(body), 422)["detail"]


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b'{"file": "a,b"}', "application/json", "multipart/form-data"),
        (b"", "multipart/form-data", "multipart/form-data"),  # no boundary
        (b"garbage with no boundary at all", FORM, "malformed multipart"),
        (form(part("file", b"a\n1\n", "a.csv"), close=False), FORM, "closing boundary"),
        (b"--b0undary\r\nno header separator\x00\r\n", FORM, "malformed multipart"),
    ],
)
def test_malformed_forms_are_422(body: bytes, content_type: str, words: str) -> None:
    problem = _problem(_post(body, content_type), 422)
    assert words in problem["detail"]


def test_name_too_long_or_not_utf8() -> None:
    long = form(part("name", b"n" * (MAX_NAME_LENGTH + 1)), part("file", b"a\n1\n", "t.csv"))
    assert "longer than" in _problem(_post(long), 422)["detail"]
    latin = form(part("name", "caf\u00e9".encode("latin-1")), part("file", b"a\n1\n", "t.csv"))
    assert "not UTF-8" in _problem(_post(latin), 422)["detail"]


def test_file_without_filename_and_other_fields_ignored() -> None:
    body = form(part("other", b"ignored"), part("file", b"a\n1\n"), part("name", b"  "))
    got = _post(body).json()
    assert got["filename"] == "upload" and got["size"] == 4 and got["name"] is None


def test_reading_stops_at_the_first_byte_over_the_limit() -> None:
    """The rest of a huge body is never read (Starlette's UploadFile would spool it all)."""
    sent = 0

    async def huge() -> AsyncIterator[bytes]:
        nonlocal sent
        head = part("file", b"", "t.csv")[:-2]  # the part's headers, then endless file bytes
        for chunk in [head] + [b"x" * 1000] * (100 * LIMIT // 1000):
            sent += len(chunk)
            yield chunk

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post("/upload", content=huge(), headers={"content-type": FORM})

    _problem(asyncio.run(go()), 413)
    assert sent < LIMIT + 3000
