"""A real HTTP receiver for webhook tests: checks every signature, answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from server.webhooks.signing import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    verify_signature,
)


@dataclass
class Received:
    event_id: str
    event_type: str
    attempt: str | None
    body: dict[str, Any]
    verified: bool
    host: str | None


@dataclass
class Receiver:
    """Answers the scripted statuses in turn (then `default`); `hang_s` delays every answer."""

    port: int
    secret: str = ""
    script: list[int] = field(default_factory=list)
    default: int = 200
    hang_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/receipts"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.received)} requests received, expected {n}")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                verify_signature(receiver.secret, body, self.headers.get(SIGNATURE_HEADER))
                verified = True
            except SignatureError:
                verified = False
            with receiver.lock:
                receiver.received.append(
                    Received(
                        self.headers.get(EVENT_ID_HEADER, ""),
                        self.headers.get(EVENT_TYPE_HEADER, ""),
                        self.headers.get("Receipts-Delivery-Attempt"),
                        json.loads(body),
                        verified,
                        self.headers.get("Host"),
                    )
                )
                status = receiver.script.pop(0) if receiver.script else receiver.default
            if receiver.hang_s:
                time.sleep(receiver.hang_s)
            if not verified:
                status = 401
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up (timeout)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(port: int, **kwargs: Any) -> Iterator[Receiver]:
    receiver = Receiver(port, **kwargs)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(receiver))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
