"""Hand-built multipart/form-data bodies, for uploads httpx would not send (no
Content-Length, truncated, malformed)."""

from __future__ import annotations

BOUNDARY = "test-boundary-7f3a"
FORM = f"multipart/form-data; boundary={BOUNDARY}"


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    """One form field; a file when it has a file name."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n"
    return head.encode() + value + b"\r\n"


def form(*parts: bytes, close: bool = True) -> bytes:
    """The parts with the closing boundary (left off with close=False: a truncated body)."""
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if close else b"")
