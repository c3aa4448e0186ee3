"""History mode (``history=True``): one snapshot of coins and value per logical date, honestly dated.

Against the sandbox over HTTP and real databases (SQLite and PostgreSQL, the ``warehouse``
fixture of ``tests/export``); the backfill cases run the real DAG with ``dag.test()``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_coinstats._compat import AirflowFailException
from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.columns import snapshot_schema
from airflow_provider_coinstats.export.sql import SqlTable
from tests.export.helpers import context, data_requests, db_hook, expected_rows, sql_export

DATASETS = ["coins", "value"]
#: A column per dataset that a test overwrites to tell an untouched snapshot from a reloaded one.
MARKER = {"coins": ("symbol", "'TAMPERED'"), "value": ("total_value", "-1")}


def marked(dataset: str, row: dict[str, Any]) -> bool:
    value = row[MARKER[dataset][0]]
    return value == "TAMPERED" if dataset == "coins" else value is not None and float(value) == -1


def run_context(logical_date: datetime) -> dict[str, Any]:
    """What a scheduled daily run hands the operator (CronTriggerTimetable: a zero-length interval)."""
    run = context(f"scheduled__{logical_date.isoformat()}")
    run["dag_run"].run_after = logical_date
    # The XCom push of credits_spent needs a task instance; tests/export's context may not have one.
    run.setdefault("ti", SimpleNamespace(xcom_push=lambda key, value: None))
    return run | {"logical_date": logical_date, "data_interval_start": logical_date, "data_interval_end": logical_date}


def as_utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def snapshots(conn_id: str, dataset: str) -> list[dict[str, Any]]:
    """Every row of the history table, with the snapshot and extraction times as aware datetimes."""
    names = snapshot_schema(dataset).column_names()
    records = db_hook(conn_id).get_records(f"SELECT {', '.join(names)} FROM coinstats_{dataset}")
    rows = [dict(zip(names, record, strict=True)) for record in records]
    for row in rows:
        row["snapshot_date"] = as_utc(row["snapshot_date"])
        row["extracted_at"] = as_utc(row["extracted_at"])
    return rows


def of(rows: list[dict[str, Any]], portfolio_id: str, day: datetime) -> list[dict[str, Any]]:
    return [r for r in rows if r["portfolio_id"] == portfolio_id and r["snapshot_date"] == day]


def test_two_dates_give_two_snapshots_and_a_rerun_replaces_only_its_date(
    coinstats_conn: Any,
    portfolio: str,
    warehouse: str,
) -> None:
    day1 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    day2 = day1 + timedelta(hours=2)
    expected = {d: expected_rows(d, portfolio) for d in DATASETS}
    assert all(expected.values())

    first = sql_export(warehouse, portfolio, DATASETS, history=True).execute(run_context(day1))
    second = sql_export(warehouse, portfolio, DATASETS, history=True).execute(run_context(day2))
    assert first["datasets"]["coins"]["snapshot_date"] == day1.isoformat()
    assert second["datasets"]["value"]["snapshot_date"] == day2.isoformat()
    for dataset in DATASETS:
        rows = snapshots(warehouse, dataset)
        assert {r["snapshot_date"] for r in rows} == {day1, day2}
        assert len(of(rows, portfolio, day1)) == len(of(rows, portfolio, day2)) == len(expected[dataset])
        assert len(rows) == 2 * len(expected[dataset])

    # Another portfolio's snapshot of day 1, then every row marked: a rerun must touch only its own.
    for dataset in DATASETS:
        table = SqlTable(db_hook(warehouse), f"coinstats_{dataset}", dataset, history=True)
        other = [{**row, "portfolio_id": "other", "snapshot_date": day1} for row in expected[dataset]]
        table.load(other, portfolio_id="other", scope={"currency": "USD", "snapshot_date": day1})
        column, value = MARKER[dataset]
        db_hook(warehouse).run(f"UPDATE coinstats_{dataset} SET {column} = {value}")

    rerun = sql_export(warehouse, portfolio, DATASETS, history=True).execute(run_context(day1))

    for dataset in DATASETS:
        rows = snapshots(warehouse, dataset)
        reloaded = of(rows, portfolio, day1)
        assert len(reloaded) == len(expected[dataset])
        assert not any(marked(dataset, r) for r in reloaded), dataset
        assert {r["extracted_at"] for r in reloaded} == {datetime.fromisoformat(rerun["extracted_at"])}
        for untouched in (of(rows, portfolio, day2), of(rows, "other", day1)):
            assert len(untouched) == len(expected[dataset])
            assert all(marked(dataset, r) for r in untouched), dataset
        assert len(rows) == 3 * len(expected[dataset])


def test_history_tables_key_the_snapshot_date(warehouse: str) -> None:
    table = SqlTable(db_hook(warehouse), "coinstats_value", "value", history=True)
    assert table.schema.key == ("portfolio_id", "snapshot_date", "currency")
    assert "snapshot_date" in table.create_table_sql()
    # A current-state table is no history table: refused before any request, naming the column.
    SqlTable(db_hook(warehouse), "coinstats_coins", "coins").prepare(create=True)
    with pytest.raises(CoinStatsValidationError, match=r"missing column.*snapshot_date"):
        SqlTable(db_hook(warehouse), "coinstats_coins", "coins", history=True).prepare(create=False)


@pytest.mark.parametrize(
    ("shift", "what"), [(timedelta(days=-3), "backfill"), (timedelta(days=3), "future")], ids=["past", "future"]
)
def test_a_run_dated_outside_the_grace_is_refused_before_any_request(
    coinstats_conn: Any,
    portfolio: str,
    warehouse: str,
    shift: timedelta,
    what: str,
) -> None:
    logical_date = datetime.now(UTC) + shift
    with pytest.raises(AirflowFailException, match="history_grace=1 day") as raised:
        sql_export(warehouse, portfolio, DATASETS, history=True).execute(run_context(logical_date))
    assert "no request was sent" in str(raised.value), what
    assert data_requests(coinstats_conn) == []


def test_history_grace_widens_the_window(coinstats_conn: Any, portfolio: str, warehouse: str) -> None:
    late = datetime.now(UTC) - timedelta(days=3)
    summary = sql_export(warehouse, portfolio, ["value"], history=True, history_grace=timedelta(days=4)).execute(
        run_context(late)
    )
    assert as_utc(summary["datasets"]["value"]["snapshot_date"]) == late


def test_history_is_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(CoinStatsValidationError, match="carry their own timestamps"):
        sql_export("wh", "p", ["transactions", "chart"], history=True)
    with pytest.raises(CoinStatsValidationError, match="history_grace"):
        sql_export("wh", "p", ["coins"], history=True, history_grace=-timedelta(seconds=1))
    with pytest.raises(CoinStatsValidationError, match="history: must be True or False"):
        sql_export("wh", "p", ["coins"], history="yes")


# --- the real DAG under dag.test() ---------------------------------------------------------------


@pytest.fixture
def sqlite_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_TEST_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    return database


def test_dag_runs_file_their_snapshot_under_the_logical_date(
    coinstats_conn: Any,
    portfolio: str,
    run_dag: Any,
    sqlite_warehouse: Path,
) -> None:
    day = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    result = run_dag("cs_test_history_snapshot", conf={"portfolio_id": portfolio}, logical_date=day)
    assert result.state == "success"
    assert result.xcom("snapshot")["datasets"]["coins"]["snapshot_date"] == day.isoformat()
    with sqlite3.connect(sqlite_warehouse) as db:
        dates = db.execute("SELECT DISTINCT snapshot_date FROM coinstats_history_value").fetchall()
    assert [as_utc(d) for (d,) in dates] == [day]


def test_a_backfill_run_fails_without_retry_before_any_request(
    coinstats_conn: Any,
    portfolio: str,
    run_dag: Any,
    sqlite_warehouse: Path,
) -> None:
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    result = run_dag("cs_test_history_snapshot", conf={"portfolio_id": portfolio}, logical_date=past)
    assert result.state == "failed"
    assert result.tasks[("snapshot", -1)] == ("failed", 1)  # the retry was not spent
    assert data_requests(coinstats_conn) == []
    assert not sqlite_warehouse.exists() or sqlite_warehouse.stat().st_size == 0  # nothing created either


def test_a_run_without_logical_date_files_under_its_run_after() -> None:
    """Airflow 3 runs may have no logical date (asset-triggered, API-triggered): run_after labels them."""
    from airflow_provider_coinstats.transfers.coinstats_to_sql import snapshot_date

    now = datetime.now(UTC)
    run_after = now - timedelta(minutes=5)
    run = {"logical_date": None, "dag_run": SimpleNamespace(run_id="asset_triggered__x", run_after=run_after)}
    assert snapshot_date(run, now, timedelta(days=1)) == run_after
    with pytest.raises(CoinStatsValidationError, match="history_grace"):
        snapshot_date(run, now + timedelta(days=2), timedelta(days=1))
