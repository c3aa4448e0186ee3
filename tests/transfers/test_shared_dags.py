"""Shared portfolios through whole DAGs: sensor (poke and deferred) and both exports, under ``dag.test()``.

Real Airflow (``dag.test()`` on the migrated SQLite metadata DB, the trigger in its in-process
triggerer), the sandbox over real HTTP (an app portfolio shared by token + passcode, the key on the
Degen plan), a real SQLite warehouse and real files. Witnesses: task states and XComs, the rows
and files written, the trigger rows, and the sandbox's request log.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.hooks.shared import shared_portfolio_from_connection
from tests.example_dags.test_dags import reschedule_broken_on_3_0
from tests.helpers import export_path
from tests.secret_search import AIRFLOW_3_0, leaks, log_files, run_haystacks
from tests.shared_portfolios import secrets_of, share_connection

DATASETS = ("coins", "value", "transactions")
#: Query parameters that would select the portfolio in the URL (the share must be in headers).
SELECTORS = {"portfolioId", "shareToken", "sharetoken", "passcode"}


@pytest.fixture
def shared_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, coinstats_conn: Any) -> Path:
    database = tmp_path / "shared.db"
    monkeypatch.setenv("AIRFLOW_CONN_CS_SHARED_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    monkeypatch.setenv("AIRFLOW__COINSTATS__MIN_FIRST_POLL_DELAY", "0")
    shutil.rmtree(export_path() / "shared", ignore_errors=True)
    return database


def _clear_triggers() -> None:
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:  # rows left by earlier tests would blur the search
        session.query(Trigger).delete()


def _check_exports(coinstats_conn: Any, result: Any, database: Path, public_id: str, transactions: int) -> None:
    db = sqlite3.connect(database)
    counts = {
        d: int(db.execute(f"SELECT COUNT(*) FROM coinstats_{d} WHERE portfolio_id = ?", (public_id,)).fetchone()[0])
        for d in DATASETS
    }
    assert counts["transactions"] == transactions
    assert counts["value"] == 1 and counts["coins"] > 0
    assert {r[0] for r in db.execute("SELECT DISTINCT portfolio_id FROM coinstats_transactions")} == {public_id}
    assert result.xcom("load_tables")["portfolio_id"] == public_id
    files = result.xcom("export_files")
    assert files["portfolio_id"] == public_id
    for dataset in DATASETS:
        location = files["datasets"][dataset]["location"]
        assert f"/{dataset}/portfolio_id={public_id}/" in location
        lines = Path(location.removeprefix("file://")).read_text().splitlines()
        assert len(lines) == counts[dataset]
        assert {json.loads(line)["portfolio_id"] for line in lines} == {public_id}
    # Every request selected the shared portfolio by header: nothing in any URL.
    records = coinstats_conn.state.requests()
    reads = [r for r in records if r.endpoint and r.endpoint.startswith("portfolio_")]
    assert reads and {r.portfolio_id for r in reads} == {"shared:alice"}
    assert all(not SELECTORS & set(r.query) for r in records), [r.query for r in records]


def test_poke_sensor_and_both_exports_read_the_shared_portfolio(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch, shared_warehouse: Path
) -> None:
    share, _ = share_connection(coinstats_conn, monkeypatch, transactions=23, conn_id="cs_share")
    coinstats_conn.state.set_sync(share.portfolio_id, polls=2)  # the app is re-syncing it
    coinstats_conn.state.clear_requests()
    result = run_dag("cs_shared_poke_and_export")
    assert result.state == "success", result.tasks
    public_id = shared_portfolio_from_connection("cs_share").public_id
    assert public_id.startswith("shared-")
    assert result.xcom("wait_for_sync") == public_id
    polls = [r.status for r in coinstats_conn.state.requests("portfolio_transactions")]
    assert polls[:3] == [409, 409, 200]  # the pokes, then the exports' reads
    _check_exports(coinstats_conn, result, shared_warehouse, public_id, 23)


@reschedule_broken_on_3_0
def test_reschedule_sensor_waits_for_the_shared_portfolio(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    share, _ = share_connection(coinstats_conn, monkeypatch, conn_id="cs_share", portfolio_name="family")
    coinstats_conn.state.set_sync(share.portfolio_id, polls=2)
    coinstats_conn.state.clear_requests()
    result = run_dag("cs_shared_reschedule")
    assert result.state == "success", result.tasks
    assert result.xcom("wait_for_sync") == "family"
    records = coinstats_conn.state.requests("portfolio_transactions")
    assert [(r.status, r.portfolio_id) for r in records] == [(409, "shared:alice")] * 2 + [(200, "shared:alice")]


def test_deferred_sensor_reads_the_connection_in_the_triggerer_and_no_secret_is_stored(
    coinstats_conn: Any,
    run_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    shared_warehouse: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Token and passcode appear in no log, XCom, rendered field, trigger row, serialized DAG, URL or sandbox log."""
    _clear_triggers()
    share, _ = share_connection(
        coinstats_conn, monkeypatch, transactions=11, conn_id="cs_share", passcode="8642097531", portfolio_name="family"
    )
    coinstats_conn.state.set_sync(share.portfolio_id, polls=2)
    coinstats_conn.state.clear_requests()
    result = run_dag("cs_shared_deferred_and_export")
    assert result.state == "success", result.tasks
    assert result.xcom("wait_for_sync") == "family"
    _check_exports(coinstats_conn, result, shared_warehouse, "family", 11)

    out, err = capfd.readouterr()
    haystacks = run_haystacks(
        "cs_shared_deferred_and_export",
        result.run_id,
        console=out + err,
        log_records=caplog.text,
        sandbox_requests=coinstats_conn.state.requests(),
    )
    assert "wait_for_sync" in haystacks["console"]
    assert "load_tables" in haystacks["xcom rows"]
    assert "cs_share" in haystacks["rendered template fields"]
    assert "share_conn_id" in haystacks["serialized DAG rows"]
    assert "shared:family" not in haystacks["sandbox request log"]  # the sandbox names its own label
    assert "shared:alice" in haystacks["sandbox request log"]
    # The trigger ran and its row holds the connection id, nothing else of the share.
    assert "CoinStatsPortfolioSyncTrigger" in haystacks["trigger rows"]
    assert '"share_conn_id": "cs_share"' in haystacks["trigger rows"]
    secrets = secrets_of(share)
    assert len(secrets) == 2
    found = leaks(secrets, haystacks)
    assert not found, "\n".join(found)
    # The trigger polled with the share's headers: 409 in the worker, then 409 and data in the triggerer.
    assert [r.status for r in coinstats_conn.state.requests("portfolio_transactions")][:3] == [409, 409, 200]


def test_wrong_passcode_fails_at_once_without_retries_or_secrets(
    coinstats_conn: Any,
    run_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    shared_warehouse: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    share, _ = share_connection(coinstats_conn, monkeypatch, conn_id="cs_share", wrong_passcode=True)
    stored = shared_portfolio_from_connection("cs_share").passcode
    coinstats_conn.state.clear_requests()
    result = run_dag("cs_shared_wrong_passcode")
    assert result.state == "failed"
    # retries=2, yet each task ran once: a wrong passcode is permanent.
    for task in ("wait_for_sync", "load_tables", "export_files"):
        assert result.tasks[(task, -1)] == ("failed", 1), result.tasks
    assert {r.status for r in coinstats_conn.state.requests()} == {403}
    assert coinstats_conn.state.credits_used() == 0
    out, err = capfd.readouterr()
    text = out + err + caplog.text + log_files()
    # The clear message reached the task log: the sensor's poke logs it, and the exports' failure
    # (Airflow 3.0's dag.test() prints a task's exception where neither capfd nor caplog sees it).
    hint = "answered 403: Invalid passcode (reading a shared portfolio: check the share token"
    for path in ("/portfolio/transactions",) if AIRFLOW_3_0 else ("/portfolio/transactions", "/portfolio/coins"):
        assert f"{path} {hint}" in text
    for secret in [*secrets_of(share), stored or ""]:
        assert secret
        lines = [line for line in text.splitlines() if secret in line and "MaskSecret(value=" not in line]
        assert not lines, lines
