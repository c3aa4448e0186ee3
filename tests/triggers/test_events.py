"""The AssetWatcher trigger in a live event loop against the sandbox over HTTP.

Each test runs ``CoinStatsNewTransactionsTrigger.run()`` as an asyncio task (as the triggerer
does), changes the sandbox while it runs, and waits on conditions with deadlines: the number of
checks the sandbox logged, the events collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.row_key import transaction_row_key
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from airflow_provider_coinstats.triggers.events import (
    CREDITS_PER_CHECK,
    CoinStatsNewTransactionsTrigger,
    credits_per_day,
)
from tests.helpers import connect_wallet, requests_to
from tests.shared_portfolios import secrets_of, share_connection

INTERVAL = 0.05


class Watch:
    """A trigger running on the test's event loop, its events collected."""

    def __init__(self, trigger: CoinStatsNewTransactionsTrigger) -> None:
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.get_running_loop().create_task(self._consume(trigger))

    async def _consume(self, trigger: CoinStatsNewTransactionsTrigger) -> None:
        async for event in trigger.run():
            self.events.append(event.payload)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def watch(trigger: CoinStatsNewTransactionsTrigger, body: Callable[[Watch], Awaitable[None]]) -> list[dict[str, Any]]:
    """Run ``trigger`` on a fresh event loop while ``body`` drives the sandbox; the events it fired."""

    async def scenario() -> list[dict[str, Any]]:
        running = Watch(trigger)
        try:
            await body(running)
        finally:
            await running.stop()
        return running.events

    return asyncio.run(scenario())


async def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def checks(server: Any) -> list[Any]:
    return requests_to(server, "portfolio_transactions")


def newest_row(portfolio: Any) -> dict[str, Any]:
    with CoinStatsHook() as hook:
        return next(hook.iter_portfolio_transactions(portfolio, limit=1, max_pages=1))


def assert_each_check_cost_4(server: Any, used_before: int) -> int:
    seen = checks(server)
    assert seen
    assert all((r.status, r.credits, r.query["limit"]) == (200, CREDITS_PER_CHECK, "1") for r in seen)
    assert server.state.credits_used() - used_before == CREDITS_PER_CHECK * len(seen) == 4 * len(seen)
    return len(seen)


def test_a_new_transaction_fires_exactly_one_event(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=12)
    used_before = coinstats_conn.state.credits_used()

    async def body(running: Watch) -> None:
        await until(lambda: len(checks(coinstats_conn)) >= 3, "three checks")
        assert running.events == []  # the baseline check and the ones after it: nothing new
        coinstats_conn.state.append_transactions(pid, 2)
        await until(lambda: len(running.events) >= 1, "the event")
        after = len(checks(coinstats_conn))
        await until(lambda: len(checks(coinstats_conn)) >= after + 3, "three more checks")

    events = watch(CoinStatsNewTransactionsTrigger(portfolio_id=pid, poll_interval=INTERVAL), body)
    newest = newest_row(pid)
    assert events == [{"portfolio": pid, "newest_date": newest["date"], "row_key": transaction_row_key(newest)}]
    assert_each_check_cost_4(coinstats_conn, used_before)


def test_no_new_transaction_means_no_event(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=12)
    used_before = coinstats_conn.state.credits_used()

    async def body(running: Watch) -> None:
        await until(lambda: len(checks(coinstats_conn)) >= 8, "eight checks")

    assert watch(CoinStatsNewTransactionsTrigger(portfolio_id=pid, poll_interval=INTERVAL), body) == []
    assert assert_each_check_cost_4(coinstats_conn, used_before) >= 8


def test_transient_failures_retry_on_the_next_check(coinstats_conn: Any) -> None:
    """A 503 and a 429 are skipped (and not charged); the change is still seen, once."""
    pid = connect_wallet(coinstats_conn, transactions=3)

    async def body(running: Watch) -> None:
        await until(lambda: len(checks(coinstats_conn)) >= 1, "the baseline")
        coinstats_conn.state.add_fault(Fault("status", endpoint="portfolio_transactions", status=503, times=1))
        coinstats_conn.state.add_fault(Fault("status", endpoint="portfolio_transactions", status=429, times=1))
        coinstats_conn.state.append_transactions(pid, 1)
        await until(lambda: len(running.events) >= 1, "the event")
        after = len(checks(coinstats_conn))
        await until(lambda: len(checks(coinstats_conn)) >= after + 2, "two more checks")

    events = watch(CoinStatsNewTransactionsTrigger(portfolio_id=pid, poll_interval=INTERVAL), body)
    assert len(events) == 1
    statuses = [r.status for r in checks(coinstats_conn)]
    assert statuses[:3] == [200, 503, 429]  # one request per check: nothing retried within a check
    assert [r.credits for r in checks(coinstats_conn) if r.status != 200] == [0, 0]


def test_a_permanent_error_ends_the_trigger_with_a_clear_log(
    coinstats_conn: Any, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    pid = connect_wallet(coinstats_conn)
    coinstats_conn.state.clear_requests()
    coinstats_conn.state.set_transaction_count(pid, 3)
    trigger = CoinStatsNewTransactionsTrigger(portfolio_id="0" * 24, poll_interval=INTERVAL)  # unknown: 404

    async def body(running: Watch) -> None:
        await asyncio.wait_for(asyncio.shield(running.task), timeout=15)  # ends by itself

    caplog.set_level(logging.INFO)
    assert watch(trigger, body) == []
    assert [r.status for r in checks(coinstats_conn)] == [404]  # no retry, no second check
    out, err = capfd.readouterr()
    logs = caplog.text + out + err  # stdlib logging on Airflow 3.0, structlog to the console on 3.1+
    line = next((x for x in logs.splitlines() if "watcher stops" in x), "")
    assert "404" in line
    assert "error" in line.lower()


def test_an_empty_portfolio_fires_on_its_first_transaction(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=0)

    async def body(running: Watch) -> None:
        await until(lambda: len(checks(coinstats_conn)) >= 2, "two checks")
        assert running.events == []
        coinstats_conn.state.append_transactions(pid, 1)
        await until(lambda: len(running.events) >= 1, "the event")

    events = watch(CoinStatsNewTransactionsTrigger(portfolio_id=pid, poll_interval=INTERVAL), body)
    assert [e["row_key"] for e in events] == [transaction_row_key(newest_row(pid))]


def test_a_shared_portfolio_is_watched_by_its_connection_and_named_by_its_public_id(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    share, conn_id = share_connection(coinstats_conn, monkeypatch, "alice", transactions=5, portfolio_name="family")
    coinstats_conn.state.clear_requests()
    trigger = CoinStatsNewTransactionsTrigger(share_conn_id=conn_id, poll_interval=INTERVAL)
    _, kwargs = trigger.serialize()

    async def body(running: Watch) -> None:
        await until(lambda: len(checks(coinstats_conn)) >= 2, "two checks")
        coinstats_conn.state.append_transactions(share.portfolio_id, 1)
        await until(lambda: len(running.events) >= 1, "the event")

    caplog.set_level(logging.DEBUG)
    events = watch(CoinStatsNewTransactionsTrigger(**kwargs), body)  # re-created as the triggerer does
    assert [e["portfolio"] for e in events] == ["family"]
    assert {r.portfolio_id for r in checks(coinstats_conn)} == {"shared:alice"}
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert "CoinStats watcher of family: new transaction" in logs  # the trigger's log was captured
    haystack = repr(kwargs) + repr(events) + logs + repr([r.to_dict() for r in coinstats_conn.state.requests()])
    for secret in secrets_of(share):
        assert secret not in haystack


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "portfolio_id"),
        ({"portfolio_id": "p" * 24, "share_conn_id": "s"}, "portfolio_id"),
        ({"portfolio_id": "p" * 24, "poll_interval": 0.01}, "poll_interval"),
        ({"portfolio_id": " "}, "portfolio_id"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(CoinStatsValidationError) as info:
        CoinStatsNewTransactionsTrigger(**kwargs)
    assert info.value.field == field


def test_serialize_round_trip_and_credits_per_day() -> None:
    trigger = CoinStatsNewTransactionsTrigger(portfolio_id="p" * 24, poll_interval=300)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_coinstats.triggers.events.CoinStatsNewTransactionsTrigger"
    assert CoinStatsNewTransactionsTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert CREDITS_PER_CHECK == 4
    assert [credits_per_day(s) for s in (60, 300, 900, 3600)] == [5760, 1152, 384, 96]
