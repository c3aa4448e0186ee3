"""The event-driven example DAG: its watcher in a live event loop, its run under ``dag.test()``.

Against the sandbox over HTTP (an app portfolio shared by token + passcode, the key on the Degen
plan) and a real SQLite warehouse. The watcher is the trigger the DAG file builds, re-created
from its serialized kwargs as the triggerer does, with a 50 ms interval instead of 15 min.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.export.row_key import transaction_row_key
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.hooks.shared import shared_portfolio_from_connection
from airflow_provider_coinstats.triggers.events import CoinStatsNewTransactionsTrigger
from tests.helpers import dags_folder, requests_to
from tests.shared_portfolios import share_connection

SHARE = "coinstats_shared_portfolio"


def watcher_trigger() -> CoinStatsNewTransactionsTrigger:
    asset = runpy.run_path(str(dags_folder() / "coinstats_event_driven.py"))["new_transactions"]
    (watcher,) = asset.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath.endswith("CoinStatsNewTransactionsTrigger")
    assert kwargs["share_conn_id"] == SHARE
    assert kwargs["poll_interval"] == 900  # 15 min: 384 credits a day
    return CoinStatsNewTransactionsTrigger(**{**kwargs, "poll_interval": 0.05})


async def first_event_after(server: Any, trigger: CoinStatsNewTransactionsTrigger, portfolio: str) -> dict[str, Any]:
    """Run the trigger; append one transaction after its baseline check; its first event."""
    events = trigger.run()
    task = asyncio.ensure_future(events.__anext__())
    deadline = time.monotonic() + 15
    while not requests_to(server, "portfolio_transactions"):
        assert time.monotonic() < deadline, "no baseline check"
        await asyncio.sleep(0.01)
    server.state.append_transactions(portfolio, 1)
    event = await asyncio.wait_for(task, 15)
    await events.aclose()
    payload: dict[str, Any] = event.payload
    return payload


def test_event_driven_example_fires_on_a_new_transaction_then_loads(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    share, _ = share_connection(
        coinstats_conn, monkeypatch, "savings", transactions=12, conn_id=SHARE, portfolio_name="family-savings"
    )
    coinstats_conn.state.clear_requests()

    payload = asyncio.run(first_event_after(coinstats_conn, watcher_trigger(), share.portfolio_id))
    with CoinStatsHook() as hook:
        newest = next(hook.iter_portfolio_transactions(shared_portfolio_from_connection(SHARE), limit=1, max_pages=1))
    assert payload == {
        "portfolio": "family-savings",
        "newest_date": newest["date"],
        "row_key": transaction_row_key(newest),
    }

    coinstats_conn.state.clear_requests()
    result = run_dag("coinstats_event_driven")
    assert result.state == "success", result.tasks
    rows = sqlite3.connect(database).execute("SELECT count(*) FROM coinstats_transactions").fetchone()[0]
    assert rows == 13
    charged = sum(r.credits for r in coinstats_conn.state.requests())
    assert charged > 0
    assert result.xcom("load_transactions", "credits_spent") == charged
