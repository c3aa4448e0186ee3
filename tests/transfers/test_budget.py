"""A transfer whose next page would pass its credit budget stops before sending that page.

Real parts only: the sandbox over HTTP (its request log shows which pages were asked for), a
SQLite warehouse file and a local folder. The destination must be exactly as it was before the
run (rows compared, file bytes compared or still absent), and the error names the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats._compat import AirflowFailException
from tests.export.helpers import context, file_export, sql_export, table_rows
from tests.helpers import connect_wallet, requests_to

WAREHOUSE = "coinstats_budget_warehouse"
PAGE = 10
TX_COST = 4  # GET /portfolio/transactions, per page
#: Room for three pages (12 credits), not a fourth (16).
BUDGET = 14


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE.upper()}", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    return WAREHOUSE


def pages_asked(server: Any) -> list[str]:
    return sorted(r.query["page"] for r in requests_to(server, "portfolio_transactions"))


def assert_names_the_numbers(error: BaseException) -> None:
    message = str(error)
    assert "spent 12" in message
    assert f"budget of {BUDGET}" in message
    assert f"costs {TX_COST} credits" in message
    assert "GET /portfolio/transactions" in message


def test_sql_load_stops_before_the_page_over_budget_and_keeps_the_table(coinstats_conn: Any, warehouse: str) -> None:
    pid = connect_wallet(coinstats_conn, transactions=25)
    sql_export(warehouse, pid, ["transactions"], page_limit=PAGE, incremental=False).execute(context())
    before = table_rows(warehouse, "transactions", pid)
    assert len(before) == 25
    coinstats_conn.state.append_transactions(pid, 30)  # 55 now: six pages of 10
    coinstats_conn.state.clear_requests()
    used_before = coinstats_conn.state.credits_used()

    load = sql_export(warehouse, pid, ["transactions"], page_limit=PAGE, incremental=False, max_credits=BUDGET)
    with pytest.raises(AirflowFailException) as info:  # permanent: no task retries
        load.execute(context())

    assert_names_the_numbers(info.value)
    assert pages_asked(coinstats_conn) == ["1", "2", "3"]  # page 4 was never requested
    assert coinstats_conn.state.credits_used() - used_before == 12
    assert table_rows(warehouse, "transactions", pid) == before  # the load was rolled back


def test_file_export_stops_before_the_page_over_budget_and_publishes_nothing(
    coinstats_conn: Any, tmp_path: Path
) -> None:
    pid = connect_wallet(coinstats_conn, transactions=25)
    kept, fresh = tmp_path / "kept", tmp_path / "fresh"
    file_export(kept, pid, ["transactions"], page_limit=PAGE).execute(context())
    files = sorted(p for p in kept.rglob("*") if p.is_file())
    assert len(files) == 1
    content = files[0].read_bytes()
    assert content.count(b"\n") == 25
    coinstats_conn.state.append_transactions(pid, 30)

    for path in (kept, fresh):
        coinstats_conn.state.clear_requests()
        export = file_export(path, pid, ["transactions"], page_limit=PAGE, max_credits=BUDGET)
        with pytest.raises(AirflowFailException) as info:
            export.execute(context())
        assert_names_the_numbers(info.value)
        assert pages_asked(coinstats_conn) == ["1", "2", "3"]

    assert sorted(p for p in kept.rglob("*") if p.is_file()) == files
    assert files[0].read_bytes() == content  # the previous file, unchanged
    assert [p for p in fresh.rglob("*") if p.is_file()] == []  # no file, not even a partial one
