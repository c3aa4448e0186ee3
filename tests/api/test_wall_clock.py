"""``timeout`` bounds a whole attempt, not each socket read: a trickling server cannot hold a task.

The sandbox's ``trickle`` fault sends its answer a few bytes at a time; every read returns well
within the per-read timeout, so only a wall-clock limit stops it. Elapsed times are bounded
loosely: these are correctness bounds, not benchmarks.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_provider_coinstats import exceptions as exc
from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.async_transport import AsyncTransport
from airflow_provider_coinstats.api.settings import ClientSettings
from airflow_provider_coinstats.api.transport import SyncTransport
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from airflow_provider_coinstats.sandbox.app import TRICKLE_CHUNK
from tests.helpers import FAST_RETRY

ONE_ATTEMPT = {**FAST_RETRY, "timeout": 1, "max_attempts": 1}


def trickle_for_ten_seconds(server: Any, http: Any, endless: bool) -> None:
    """A trickle on GET /usage/credits whose full answer would take at least 10 s."""
    size = len(http.get(f"{server.url}/usage/credits").content)
    delay = 10.0 / (size / TRICKLE_CHUNK)
    assert delay < 1.0  # each read gets bytes well within the 1 s per-read timeout
    server.state.add_fault(Fault("trickle", endpoint="usage_credits", delay=delay, endless=endless))


@pytest.mark.parametrize("endless", [False, True])
def test_sync_hook_stops_a_trickle_at_timeout(
    coinstats_conn: Any, http: Any, monkeypatch: pytest.MonkeyPatch, endless: bool
) -> None:
    trickle_for_ten_seconds(coinstats_conn, http, endless)
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(extra=ONE_ATTEMPT))
    started = time.monotonic()
    with CoinStatsHook() as hook, pytest.raises(exc.CoinStatsTransportError) as info:
        hook.get_usage_credits()
    elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert "within the 1s timeout" in str(info.value)
    assert info.value.sent


@pytest.mark.parametrize("endless", [False, True])
def test_async_transport_stops_a_trickle_at_timeout(coinstats_conn: Any, http: Any, endless: bool) -> None:
    trickle_for_ten_seconds(coinstats_conn, http, endless)
    settings = ClientSettings.from_connection(
        host=coinstats_conn.url, password=coinstats_conn.api_key, extra=ONE_ATTEMPT
    )

    async def go() -> None:
        async with AsyncTransport(settings, logging.getLogger("test.wall_clock")) as transport:
            await transport.send(builders.usage_credits())

    started = time.monotonic()
    with pytest.raises(exc.CoinStatsTransportError) as info:
        asyncio.run(go())
    assert time.monotonic() - started < 3.0
    assert info.value.sent


def test_a_slow_trickle_within_timeout_still_succeeds(coinstats_conn: Any) -> None:
    # 4 bytes every 10 ms: the answer takes a fraction of the 5 s timeout and arrives whole.
    coinstats_conn.state.add_fault(Fault("trickle", endpoint="usage_credits", delay=0.01, times=1))
    with CoinStatsHook() as hook:
        usage = hook.get_usage_credits()
    assert usage["usedCredits"] == 0
    assert [r.fault for r in coinstats_conn.state.requests(endpoint="usage_credits")] == ["trickle"]


@pytest.fixture
def gzip_server() -> Iterator[str]:
    """Answers every GET with gzip-encoded JSON, as an API behind a CDN does."""
    payload = gzip.compress(json.dumps({"result": [{"connectionId": f"chain-{i}"} for i in range(2000)]}).encode())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_streamed_body_is_decoded(gzip_server: str) -> None:
    settings = ClientSettings.from_connection(host=gzip_server, password="k", extra=ONE_ATTEMPT)
    transport = SyncTransport(settings, logging.getLogger("test.wall_clock"))
    try:
        chains = transport.send(builders.wallet_blockchains())["result"]
    finally:
        transport.close()
    assert len(chains) == 2000
    assert chains[-1] == {"connectionId": "chain-1999"}
