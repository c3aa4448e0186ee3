"""CoinStatsAsyncHook against the sandbox over real HTTP, in a live event loop.

The connection-lookup sources (env, metastore, secrets backend) are in test_connection_sources.py,
key rotation in tests/triggers/test_key_rotation.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.exceptions import CoinStatsServerError
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.hooks.coinstats_async import CoinStatsAsyncHook
from airflow_provider_coinstats.sandbox import Fault
from tests.helpers import FAST_RETRY, connect_wallet, statuses


def test_credits_are_counted_like_the_sync_hook(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn)
    used_before = coinstats_conn.state.credits_used()
    coinstats_conn.state.add_fault(Fault(kind="status", status=404, times=1, endpoint="portfolio_value"))

    async def calls() -> int:
        async with CoinStatsAsyncHook() as hook:
            await hook.run(builders.portfolio_coins(pid, page=1, limit=1))
            await hook.run(builders.usage_credits())
            with pytest.raises(Exception, match="404"):
                await hook.run(builders.portfolio_value(pid))  # failed: not counted
            return hook.credits_spent

    spent = asyncio.run(calls())
    with CoinStatsHook() as sync_hook:
        sync_hook.run(builders.portfolio_coins(pid, page=1, limit=1))
        sync_hook.run(builders.usage_credits())
    assert spent == sync_hook.credits_spent > 0
    # What the sandbox charged for the async calls (the sync ones charged the same again).
    assert coinstats_conn.state.credits_used() - used_before == 2 * spent


def test_a_deadline_cuts_retries_short(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With 1 s backoff, a retry would overrun a deadline 0.3 s away: the error comes at once."""
    slow = {**FAST_RETRY, "backoff_base": 1.0, "backoff_max": 1.0, "max_attempts": 3}
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(extra=slow))
    coinstats_conn.state.add_fault(Fault(kind="status", status=503, endpoint="usage_credits"))

    async def call(deadline: float | None) -> float:
        started = time.monotonic()
        async with CoinStatsAsyncHook() as hook:
            with pytest.raises(CoinStatsServerError):
                await hook.run(builders.usage_credits(), deadline=deadline)
        return time.monotonic() - started

    assert asyncio.run(call(time.time() + 0.3)) < 0.5
    assert statuses(coinstats_conn, "usage_credits") == [503]
    coinstats_conn.state.clear_requests()
    assert asyncio.run(call(None)) >= 1.0  # no deadline: the connection's 3 attempts, 0.5-1 s apart
    assert statuses(coinstats_conn, "usage_credits") == [503, 503, 503]


def test_max_attempts_overrides_the_connection(coinstats_conn: Any) -> None:
    coinstats_conn.state.add_fault(Fault(kind="status", status=503, endpoint="usage_credits"))

    async def call() -> None:
        async with CoinStatsAsyncHook(max_attempts=2) as hook:
            with pytest.raises(CoinStatsServerError):
                await hook.run(builders.usage_credits())

    asyncio.run(call())
    assert statuses(coinstats_conn, "usage_credits") == [503, 503]  # the connection says 5
