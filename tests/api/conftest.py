"""Fixtures for the transport tests: a second loopback HTTP server that records what reaches it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass(frozen=True)
class Received:
    """One request as the recording server saw it, headers and body included."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    """A tiny threaded HTTP server on 127.0.0.2 that logs every request and answers a plausible 200.

    The answer looks like a successful connect, so a client that followed a redirect here would
    take it for CoinStats' answer: only "nothing arrived" proves no request left the origin.
    """

    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)


def _handler(server: RecordingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record_and_answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with server.lock:
                server.received.append(Received(self.command, self.path, dict(self.headers.items()), body))
            payload = b'{"portfolioId":"from-the-redirect-target","status":"connected","result":[]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _record_and_answer

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def redirect_target() -> Iterator[RecordingServer]:
    """A recording HTTP server on 127.0.0.2 (another loopback host than the sandbox's 127.0.0.1)."""
    recorder = RecordingServer("127.0.0.2", 0)
    httpd = ThreadingHTTPServer(("127.0.0.2", 0), _handler(recorder))
    recorder.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, name="redirect-target", daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
