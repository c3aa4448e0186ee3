"""Retry safety per endpoint, against the sandbox over real HTTP; counts come from its request log.

PATCH /portfolio/sync is charged and acted on per call, so it is repeated only when CoinStats
surely did nothing (connection never made, 429). DELETE counts a 404 on a retry after a lost
answer as done. GETs and connects keep retrying as before (tests/test_hook.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_coinstats import exceptions as exc
from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.async_transport import AsyncTransport
from airflow_provider_coinstats.api.catalog import ENDPOINTS
from airflow_provider_coinstats.api.retry import may_repeat
from airflow_provider_coinstats.api.settings import ClientSettings
from airflow_provider_coinstats.api.transport import SyncTransport
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from tests.helpers import ADDRESS, FAST_RETRY, connect_wallet

SYNC_CREDITS = ENDPOINTS["portfolio_sync"].credits


def sync_calls(server: Any) -> list[Any]:
    return server.state.requests(endpoint="portfolio_sync")


def sync_credits(server: Any) -> int:
    """Credits the sandbox charged for PATCH /portfolio/sync (the connect before is not counted)."""
    return sum(r.credits for r in sync_calls(server))


# --- PATCH /portfolio/sync: not repeated once it may have reached CoinStats ------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        # CoinStats did the sync and charged for it, then the answer was lost.
        (Fault("drop_after", endpoint="portfolio_sync", times=1), exc.CoinStatsTransportError),
        # Dropped mid-answer: from the client's side the same as above.
        (Fault("drop", endpoint="portfolio_sync", times=1), exc.CoinStatsTransportError),
        # A 5xx may come after the work was done (a proxy timing out on a slow upstream).
        (Fault("status", endpoint="portfolio_sync", status=503, times=1), exc.CoinStatsServerError),
        (Fault("status", endpoint="portfolio_sync", status=502, body="text", times=1), exc.CoinStatsServerError),
    ],
)
def test_sync_is_not_repeated_after_it_may_have_reached_coinstats(
    coinstats_conn: Any, fault: Fault, error: type[Exception]
) -> None:
    pid = connect_wallet(coinstats_conn)
    coinstats_conn.state.add_fault(fault)
    with CoinStatsHook() as hook, pytest.raises(error):
        hook.sync_portfolio(pid)
    assert len(sync_calls(coinstats_conn)) == 1
    charged = SYNC_CREDITS if fault.kind == "drop_after" else 0
    assert sync_credits(coinstats_conn) == charged


def test_sync_is_not_repeated_after_a_read_timeout(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = connect_wallet(coinstats_conn)
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(extra={**FAST_RETRY, "timeout": 0.3})
    )
    # The sandbox syncs (and charges), then sends its answer 4 bytes a second: the read times out.
    coinstats_conn.state.add_fault(Fault("trickle", endpoint="portfolio_sync", delay=1.0, times=1))
    with CoinStatsHook() as hook, pytest.raises(exc.CoinStatsTransportError) as info:
        hook.sync_portfolio(pid)
    assert info.value.sent
    assert [r.status for r in sync_calls(coinstats_conn)] == [200]
    assert sync_credits(coinstats_conn) == SYNC_CREDITS


def test_sync_is_repeated_after_429(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn)
    coinstats_conn.state.add_fault(Fault("status", endpoint="portfolio_sync", status=429, times=2))
    with CoinStatsHook() as hook:
        assert hook.sync_portfolio(pid) == {"success": True}
    assert [r.status for r in sync_calls(coinstats_conn)] == [429, 429, 200]
    assert sync_credits(coinstats_conn) == SYNC_CREDITS


class RefusingRelay:
    """A loopback port that refuses connections until :meth:`open`, then forwards them to ``target``.

    Bound but not listening, the kernel answers a connect with a reset: "connection refused",
    exactly what a stopped server gives.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.opened = threading.Event()

    def open(self) -> None:
        if not self.opened.is_set():
            self.listener.listen(8)
            self.opened.set()
            self._start(self._accept)

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() thread
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


class OpenOnRetry:
    """The transport's logger: opens the relay when the policy announces a retry, keeps the lines."""

    def __init__(self, relay: RefusingRelay) -> None:
        self.relay = relay
        self.lines: list[str] = []

    def warning(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)
        self.relay.open()

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)


@pytest.fixture
def relay(coinstats_conn: Any) -> Iterator[RefusingRelay]:
    relay = RefusingRelay(coinstats_conn.port)
    yield relay
    relay.close()


def test_sync_is_repeated_after_a_refused_connection(coinstats_conn: Any, relay: RefusingRelay) -> None:
    pid = connect_wallet(coinstats_conn)
    settings = ClientSettings.from_connection(
        host=f"http://127.0.0.1:{relay.port}", password=coinstats_conn.api_key, extra=FAST_RETRY
    )
    log = OpenOnRetry(relay)
    transport = SyncTransport(settings, log)
    try:
        assert transport.send(builders.portfolio_sync(pid)) == {"success": True}
    finally:
        transport.close()
    # The refused attempt never reached the sandbox; the retry did, once.
    assert [r.status for r in sync_calls(coinstats_conn)] == [200]
    assert sync_credits(coinstats_conn) == SYNC_CREDITS
    assert len(log.lines) == 1
    assert "ConnectionError" in log.lines[0]


# --- DELETE: a 404 on a retry after a lost answer is done ------------------------------------------


def test_delete_404_after_a_lost_answer_counts_as_done(
    coinstats_conn: Any, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    pid = connect_wallet(coinstats_conn)
    coinstats_conn.state.add_fault(Fault("drop_after", endpoint="delete_portfolio", times=1))
    caplog.set_level(logging.INFO)
    with CoinStatsHook() as hook:
        assert hook.delete_portfolio(pid) == {}
    assert [r.status for r in coinstats_conn.state.requests(endpoint="delete_portfolio")] == [None, 404]
    assert coinstats_conn.state.portfolios() == []
    out, err = capfd.readouterr()
    assert "counts as done" in caplog.text + out + err


def test_delete_404_on_the_first_attempt_is_not_found(coinstats_conn: Any) -> None:
    with CoinStatsHook() as hook, pytest.raises(exc.CoinStatsNotFoundError):
        hook.delete_portfolio("000000000000000000000000")
    assert [r.status for r in coinstats_conn.state.requests(endpoint="delete_portfolio")] == [404]


def test_delete_404_after_a_refused_attempt_is_not_found(coinstats_conn: Any, relay: RefusingRelay) -> None:
    # A refused attempt never reached CoinStats, so a 404 after it is a real 404.
    settings = ClientSettings.from_connection(
        host=f"http://127.0.0.1:{relay.port}", password=coinstats_conn.api_key, extra=FAST_RETRY
    )
    transport = SyncTransport(settings, OpenOnRetry(relay))
    try:
        with pytest.raises(exc.CoinStatsNotFoundError):
            transport.send(builders.delete_portfolio("000000000000000000000000"))
    finally:
        transport.close()
    assert [r.status for r in coinstats_conn.state.requests(endpoint="delete_portfolio")] == [404]


def test_async_delete_404_after_a_lost_answer_counts_as_done(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn)
    coinstats_conn.state.add_fault(Fault("drop_after", endpoint="delete_portfolio", times=1))
    settings = ClientSettings.from_connection(
        host=coinstats_conn.url, password=coinstats_conn.api_key, extra=FAST_RETRY
    )

    async def go() -> Any:
        async with AsyncTransport(settings, logging.getLogger("test.retry_safety")) as transport:
            return await transport.send(builders.delete_portfolio(pid))

    assert asyncio.run(go()) is None
    assert [r.status for r in coinstats_conn.state.requests(endpoint="delete_portfolio")] == [None, 404]


# --- how each transport classifies "not sent" ------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def black_hole() -> tuple[socket.socket, socket.socket]:
    """A listener whose accept queue is full: a further connect gets no answer (connect timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname(), timeout=5)  # fills the queue of 1
    return listener, filler


def test_sync_transport_classifies_not_sent(coinstats_conn: Any) -> None:
    def attempt(host: str, timeout: float = 1.0) -> exc.CoinStatsTransportError:
        settings = ClientSettings.from_connection(
            host=host, password="k", extra={**FAST_RETRY, "timeout": timeout, "max_attempts": 1}
        )
        transport = SyncTransport(settings, logging.getLogger("test.retry_safety"))
        try:
            with pytest.raises(exc.CoinStatsTransportError) as info:
                transport.send(builders.portfolio_sync("p1"))
        finally:
            transport.close()
        return info.value

    refused = attempt(f"http://127.0.0.1:{closed_port()}")
    assert not refused.sent
    listener, filler = black_hole()
    try:
        timed_out = attempt(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.3)
    finally:
        filler.close()
        listener.close()
    assert (timed_out.sent, timed_out.reason) == (False, "ConnectTimeout")
    coinstats_conn.state.add_fault(Fault("drop", endpoint="portfolio_sync"))
    dropped = attempt(coinstats_conn.url)
    assert dropped.sent


def test_async_transport_classifies_not_sent(coinstats_conn: Any) -> None:
    async def attempt(host: str) -> exc.CoinStatsTransportError:
        settings = ClientSettings.from_connection(host=host, password="k", extra={**FAST_RETRY, "max_attempts": 1})
        async with AsyncTransport(settings, logging.getLogger("test.retry_safety")) as transport:
            with pytest.raises(exc.CoinStatsTransportError) as info:
                await transport.send(builders.portfolio_sync("p1"))
        return info.value

    assert not asyncio.run(attempt(f"http://127.0.0.1:{closed_port()}")).sent
    coinstats_conn.state.add_fault(Fault("drop", endpoint="portfolio_sync"))
    assert asyncio.run(attempt(coinstats_conn.url)).sent


def test_policy_decides_with_exception_and_endpoint() -> None:
    sync, read, connect = (
        builders.portfolio_sync("p1"),
        builders.portfolio_value("p1"),
        builders.connect_wallet(ADDRESS, "ethereum"),
    )
    refused = exc.CoinStatsTransportError("PATCH", "/portfolio/sync", "ConnectionError", sent=False)
    lost = exc.CoinStatsTransportError("PATCH", "/portfolio/sync", "ReadTimeout")
    limited = exc.CoinStatsRateLimitedError(429, "slow down", method="PATCH", path="/portfolio/sync")
    failed = exc.CoinStatsServerError(503, "down", method="PATCH", path="/portfolio/sync")
    truncated = exc.CoinStatsInvalidResponseError(200, "cut", method="PATCH", path="/portfolio/sync")
    assert [may_repeat(sync, e) for e in (refused, limited, lost, failed, truncated)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    for request in (read, connect):
        assert all(may_repeat(request, e) for e in (refused, limited, lost, failed, truncated))
    assert ENDPOINTS["portfolio_sync"].repeat == "if_not_sent"
    assert {e.name for e in ENDPOINTS.values() if e.repeat != "safe"} == {"portfolio_sync"}
    assert {e.name for e in ENDPOINTS.values() if e.gone_means_done} == {"delete_portfolio"}
