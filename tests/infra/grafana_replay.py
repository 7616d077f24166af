"""A local HTTP server that plays Grafana from a recorded contract (tests/infra/fixtures/grafana).

Each fixture is a list of exchanges: the request Grafana expects (method, path, and `body` to
match exactly or `body_subset` to contain) and the response it gives. The server answers the
exchanges in order and records every request; a request that is not the next expected one is
answered 500 and noted as a mismatch, so a client that strays from the contract fails the test.
A response body `{"$dashboard_file": "ops.json", ...}` stands for that repository dashboard
(with the other keys laid over it), so a recording of "Grafana already holds this dashboard"
stays true when the dashboard changes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.grafana.dashboards import DASHBOARD_DIR

FIXTURES = Path(__file__).parent / "fixtures" / "grafana"


def contains(actual: Any, expected: Any) -> bool:
    """`expected` is a recursive subset of `actual` (dicts by key, everything else equal)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    return bool(actual == expected)


def _expand(body: Any) -> Any:
    if isinstance(body, dict):
        if "$dashboard_file" in body:
            base = json.loads((DASHBOARD_DIR / body["$dashboard_file"]).read_text())
            return base | {k: v for k, v in body.items() if k != "$dashboard_file"}
        return {k: _expand(v) for k, v in body.items()}
    return body


@dataclass
class Replay:
    exchanges: list[dict[str, Any]]
    auth: str | None
    seen: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        body = json.loads(raw) if raw else None
        with self.lock:
            index = len(self.seen)
            self.seen.append({"method": method, "path": path, "body": body, "headers": headers})
            if index >= len(self.exchanges):
                self.mismatches.append(f"unexpected extra request {method} {path}")
                return 500, {"message": "not in the recording"}
            expected = self.exchanges[index]["request"]
            problems = []
            if (method, path) != (expected["method"], expected["path"]):
                problems.append(f"expected {expected['method']} {expected['path']}")
            if "body" in expected and body != expected["body"]:
                problems.append(f"body {body!r} != recorded {expected['body']!r}")
            if "body_subset" in expected and not contains(body, expected["body_subset"]):
                problems.append(f"body lacks recorded {expected['body_subset']!r}")
            if self.auth is not None and headers.get("authorization") != self.auth:
                problems.append(f"authorization {headers.get('authorization')!r}")
            if problems:
                self.mismatches.append(f"request {index} {method} {path}: " + "; ".join(problems))
                return 500, {"message": "request does not match the recording"}
            response = self.exchanges[index]["response"]
            return int(response["status"]), _expand(response.get("body"))

    @property
    def complete(self) -> bool:
        return len(self.seen) == len(self.exchanges) and not self.mismatches


def load(name: str) -> Replay:
    recording = json.loads((FIXTURES / name).read_text())
    return Replay(exchanges=recording["exchanges"], auth=recording.get("auth"))


@contextmanager
def serve(replay: Replay) -> Iterator[str]:
    """Serve `replay` on 127.0.0.1 and yield its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = replay.answer(self.command, self.path, headers, raw)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
