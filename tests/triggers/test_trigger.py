"""CoinStatsPortfolioSyncTrigger driven directly with asyncio against the sandbox."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from typing import Any

import pytest

from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from airflow_provider_coinstats.triggers.portfolio import CoinStatsPortfolioSyncTrigger, poll_delay
from tests.helpers import FAST_RETRY, connect_wallet, first_event


def make_trigger(portfolio_id: str, **kwargs: Any) -> CoinStatsPortfolioSyncTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("end_time", time.time() + 30)
    return CoinStatsPortfolioSyncTrigger(portfolio_id=portfolio_id, **kwargs)


def polls(server: Any) -> list[int | None]:
    return [r.status for r in server.state.requests(endpoint="portfolio_transactions")]


def test_serialize_round_trip() -> None:
    trigger = make_trigger("p1", probe="coins", exponential_backoff=True, max_wait=10.0, end_time=1234.5)
    classpath, kwargs = trigger.serialize()
    json.dumps(kwargs)  # JSON primitives only
    module, _, name = classpath.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert kwargs["end_time"] == 1234.5


def test_waits_through_409s(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=3)
    event = asyncio.run(first_event(make_trigger(pid)))
    assert event["status"] == "synced"
    assert event["portfolio_id"] == pid
    assert event["polls"] == 4
    assert polls(coinstats_conn) == [409, 409, 409, 200]


def test_survives_triggerer_restart(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=6)
    trigger = make_trigger(pid)

    async def run_then_restart() -> dict[str, Any]:
        task = asyncio.create_task(first_event(trigger))
        # Let it poll a few times, then stop it the way a triggerer shutdown does.
        for _ in range(400):
            if len(polls(coinstats_conn)) >= 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        classpath, kwargs = trigger.serialize()
        module, _, name = classpath.rpartition(".")
        reborn = getattr(importlib.import_module(module), name)(**kwargs)
        return await first_event(reborn)

    event = asyncio.run(run_then_restart())
    assert event["status"] == "synced"
    seen = polls(coinstats_conn)
    assert seen.count(409) == 6
    assert seen[-1] == 200


def test_deadline_is_enforced_by_the_trigger(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=0)
    coinstats_conn.state.set_sync(pid, seconds=float("inf"))
    end_time = time.time() + 0.5
    event = asyncio.run(first_event(make_trigger(pid, end_time=end_time)))
    assert event["status"] == "timeout"
    assert time.time() >= end_time
    assert event["polls"] >= 2
    assert set(polls(coinstats_conn)) == {409}


def test_401_fails_without_polling_on(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=2)
    monkeypatch.setenv("AIRFLOW_CONN_BAD", coinstats_conn.airflow_connection(api_key="wrong", extra=FAST_RETRY))
    event = asyncio.run(first_event(make_trigger(pid, coinstats_conn_id="bad")))
    assert event["status"] == "failed"
    assert event["result"]["status_code"] == 401
    assert event["result"]["request_id"]
    assert polls(coinstats_conn) == [401]


def test_transient_errors_within_budget_are_tolerated(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=1)
    coinstats_conn.state.add_fault(Fault(kind="status", status=503, times=3, endpoint="portfolio_transactions"))
    event = asyncio.run(first_event(make_trigger(pid, max_consecutive_failures=3)))
    assert event["status"] == "synced"
    assert polls(coinstats_conn) == [503, 503, 503, 409, 200]


def test_transient_errors_beyond_budget_end_in_error(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=1)
    coinstats_conn.state.add_fault(Fault(kind="status", status=503, endpoint="portfolio_transactions"))
    event = asyncio.run(first_event(make_trigger(pid, max_consecutive_failures=2)))
    assert event["status"] == "error"
    assert event["result"]["outcome"] == "error"  # one vocabulary: the probe's word is the event's
    assert polls(coinstats_conn) == [503, 503, 503]


def test_missing_connection_key_fails(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NOKEY", json.dumps({"conn_type": "coinstats", "host": coinstats_conn.url}))
    event = asyncio.run(first_event(make_trigger("p1", coinstats_conn_id="nokey")))
    assert event["status"] == "failed"
    assert "API key" in event["result"]["message"]
    assert coinstats_conn.state.requests() == []


def test_poll_delay() -> None:
    assert [poll_delay(2.0, n, False, None) for n in (1, 2, 3)] == [2.0, 2.0, 2.0]
    assert [poll_delay(2.0, n, True, 10.0) for n in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_triggers_share_one_connection_lookup(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_coinstats.hooks import coinstats_async

    lookups: list[str] = []
    real = coinstats_async.aget_connection

    async def counting(conn_id: str) -> Any:
        lookups.append(conn_id)
        return await real(conn_id)

    monkeypatch.setattr(coinstats_async, "aget_connection", counting)
    pids = [connect_wallet(coinstats_conn, sync_polls=1)]
    coinstats_conn.state.configure(sync_polls=1)
    pids.append(CoinStatsHook().connect_wallet("0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B", "ethereum").portfolio_id)

    async def both() -> list[dict[str, Any]]:
        # One after the other in one loop, as a triggerer runs them: the second finds the first's lookup.
        return [await first_event(make_trigger(pid)) for pid in pids]

    events = asyncio.run(both())
    assert [e["status"] for e in events] == ["synced", "synced"]
    assert lookups == ["coinstats_default"]


def test_polls_leave_no_reference_cycles(coinstats_conn: Any) -> None:
    """Each poll's objects are freed at once, not left for a full collection of the triggerer's heap."""
    import gc

    def cyclic_garbage(sync_polls: int) -> int:
        coinstats_conn.state.configure(sync_polls=sync_polls)
        address = f"0x{sync_polls + 0xC0FFEE:040x}"  # a new wallet each time, so a new sync
        pid = CoinStatsHook().connect_wallet(address, "ethereum").portfolio_id
        gc.collect()
        gc.disable()
        try:
            event = asyncio.run(first_event(make_trigger(pid, poll_interval=0.01)))
            assert event["polls"] == sync_polls + 1
            return gc.collect()
        finally:
            gc.enable()

    cyclic_garbage(0)  # one-off imports and caches
    few, many = cyclic_garbage(1), cyclic_garbage(9)
    # Before: about 80 objects per 409 poll (exception traceback <-> retry state, a retry driver per poll).
    assert many - few < 8 * 5, (few, many)


def test_the_trigger_talks_only_to_the_async_hook() -> None:
    """No transport, connection lookup or settings in triggers/: the hook owns them."""
    import ast
    from pathlib import Path

    import airflow_provider_coinstats.triggers as package

    imported = set()
    for path in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
    assert "airflow_provider_coinstats.hooks.coinstats_async.CoinStatsAsyncHook" in imported
    forbidden = ("api.async_transport", "api.transport", "api.settings", "_compat", "aiohttp", "requests")
    assert [name for name in imported if any(part in name for part in forbidden)] == []
