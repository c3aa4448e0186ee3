"""The shared-portfolio example DAG end to end under ``dag.test()``: the app's portfolio to a table and files.

Against the sandbox over real HTTP (an app portfolio shared by token + passcode, the key on the
Degen plan), a real SQLite warehouse and real files. Witnesses: task states and XComs, the rows
and files written, and the sandbox's request log and credits ledger.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.api.catalog import ENDPOINTS
from tests.helpers import export_path
from tests.shared_portfolios import secrets_of, share_connection

DATASETS = ("coins", "value", "transactions")


def test_shared_portfolio_example_exports_the_app_portfolio(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    monkeypatch.setenv("AIRFLOW__COINSTATS__MIN_FIRST_POLL_DELAY", "0")
    shutil.rmtree(export_path() / "app_portfolio", ignore_errors=True)
    share, _ = share_connection(
        coinstats_conn,
        monkeypatch,
        "savings",
        transactions=42,
        conn_id="coinstats_shared_portfolio",
        portfolio_name="family-savings",
    )
    coinstats_conn.state.set_sync(share.portfolio_id, polls=1)  # the app is re-syncing: the sensor defers
    coinstats_conn.state.clear_requests()
    used_before = coinstats_conn.state.credits_used()

    result = run_dag("coinstats_shared_portfolio")

    assert result.state == "success", result.tasks
    assert result.xcom("wait_for_sync") == "family-savings"
    db = sqlite3.connect(database)
    profile = coinstats_conn.state.profile(share.portfolio_id)
    for dataset in DATASETS:
        ids = {r[0] for r in db.execute(f"SELECT portfolio_id FROM coinstats_{dataset}")}
        assert ids == {"family-savings"}
    assert db.execute("SELECT COUNT(*) FROM coinstats_transactions").fetchone()[0] == profile.transaction_count == 42
    files = result.xcom("export_files")["datasets"]
    lines = Path(files["transactions"]["location"].removeprefix("file://")).read_text().splitlines()
    assert len(lines) == 42 and "/transactions/portfolio_id=family-savings/" in files["transactions"]["location"]

    records = coinstats_conn.state.requests()
    assert {r.portfolio_id for r in records if r.endpoint} == {"shared:savings"}
    assert not any(set(r.query) & {"portfolioId", "shareToken", "sharetoken", "passcode"} for r in records)
    dumped = json.dumps([r.to_dict() for r in records]) + json.dumps(list(result.xcoms.items()), default=str)
    assert all(secret not in dumped for secret in secrets_of(share))
    # What a run costs: the sensor's two checks (a free 409 in the worker, then data in the
    # triggerer), then holdings, value and transactions (one page each) for the table and the files.
    spent = coinstats_conn.state.credits_used() - used_before
    per_export = sum(ENDPOINTS[e].credits for e in ("portfolio_coins", "portfolio_value", "portfolio_transactions"))
    charged = sum(r.credits for r in coinstats_conn.state.requests("portfolio_transactions") if r.status == 200)
    assert spent == 2 * per_export + ENDPOINTS["portfolio_transactions"].credits == 48
    assert charged == 12  # the sensor's data answer and the two exports' single pages
