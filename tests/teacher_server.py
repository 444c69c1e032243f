"""A real HTTP teacher server on loopback, started by the tests (unit and integration).

One threaded stdlib HTTP server answers the teacher protocols (reasoning.teachers) for
two known functions and a set of faults, and records every request it receives.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd


def friedman(x: np.ndarray) -> np.ndarray:
    """Friedman #1 on columns x1..x5 (the others are noise)."""
    return (10 * np.sin(math.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2
            + 10 * x[:, 3] + 5 * x[:, 4])


def friedman_jacobian(x: np.ndarray) -> np.ndarray:
    """Its exact gradient, one column per input column."""
    jac = np.zeros_like(x)
    c = np.cos(math.pi * x[:, 0] * x[:, 1])
    jac[:, 0] = 10 * math.pi * x[:, 1] * c
    jac[:, 1] = 10 * math.pi * x[:, 0] * c
    jac[:, 2] = 40 * (x[:, 2] - 0.5)
    jac[:, 3] = 10
    jac[:, 4] = 5
    return jac


def house_price(frame: pd.DataFrame) -> np.ndarray:
    """A simple known pricing rule over the housing table's columns."""
    area = pd.to_numeric(frame["area_sqm"], errors="coerce").fillna(100).to_numpy(float)
    garden = frame["has_garden"].map(lambda v: v in (True, "True", "true", 1)).to_numpy(float)
    harbor = (frame["neighborhood"] == "harbor").to_numpy(float)
    return 3.5 * area + 30 * garden + 60 * harbor + 20


class TeacherServer:
    """Serves /friedman/{predict,grads} and /price/predict plus fault paths on 127.0.0.1."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.flaky_failures = 0
        self.redirect_to = ""
        """Where /redirect/predict sends its callers (a 302)."""
        self.gate = threading.Event()
        """/gated/predict holds every request until the test opens this gate."""
        self.closed = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers)})
                status, payload = server.answer(self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                if status == 302:
                    self.send_header("location", server.redirect_to)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                # A caller that gave up (the slow path's timeout) has closed its socket.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, prefix: str = "/") -> int:
        with self.lock:
            return sum(r["path"].startswith(prefix) for r in self.requests)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        path = urlsplit(path).path  # routed by path; a query (a credential, say) is ignored
        split = body["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        if path == "/friedman/predict":
            return 200, {"predictions": friedman(self._x(frame)).tolist()}
        if path == "/friedman/grads":
            jac = friedman_jacobian(self._x(frame))
            return 200, {"jacobians": jac.tolist()}
        if path == "/price/predict":
            return 200, {"predictions": house_price(frame).tolist()}
        if path == "/flaky/predict":
            with self.lock:
                self.flaky_failures += 1
                fail = self.flaky_failures == 1
            if fail:
                return 500, {"error": "warming up"}
            return 200, house_price(frame).tolist()  # a bare list is accepted too
        if path == "/reject/predict":
            return 400, {"error": "api key invalid for tenant acme"}
        if path == "/slow/predict":
            self.closed.wait(4)  # longer than any client here waits; cut short by close()
            return 200, {"predictions": house_price(frame).tolist()}
        if path == "/malformed/predict":
            return 200, b'{"predictions": [1, 2,'
        if path == "/gated/predict":
            self.gate.wait(timeout=120)
            return 200, {"predictions": house_price(frame).tolist()}
        if path == "/redirect/predict":
            return 302, {"moved": self.redirect_to}
        if path == "/short/predict":
            return 200, {"predictions": house_price(frame).tolist()[:-1]}
        return 404, {"error": f"no route {path}"}

    @staticmethod
    def _x(frame: pd.DataFrame) -> np.ndarray:
        return frame[[f"x{i}" for i in range(1, frame.shape[1] + 1)]].to_numpy(float)
