"""Exports to SQL tables (SQLite file and a real PostgreSQL server) and to JSONL/CSV files.

Data is read from the sandbox over HTTP; what lands is read back from the database or the file and
compared with the sandbox's own answer flattened by the documented schema. The operators run their
``execute`` directly here (no DAG around them; ``outlets=[]`` so no Asset bookkeeping is needed);
``test_export_dags.py`` runs them inside real DAG runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_coinstats._compat import AirflowFailException
from airflow_provider_coinstats.exceptions import CoinStatsDestinationError, CoinStatsValidationError
from airflow_provider_coinstats.export import get_schema, iter_rows
from airflow_provider_coinstats.export.extract import ExportOptions, extract_rows
from airflow_provider_coinstats.export.pages import DEFAULT_PAGES_IN_FLIGHT
from airflow_provider_coinstats.export.sql import SqlTable
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator
from tests.export.helpers import (
    ALL_DATASETS,
    LOGICAL_DATE,
    as_text,
    assert_same_rows,
    context,
    data_requests,
    db_hook,
    expected_rows,
    file_export,
    normalized,
    read_file,
    sql_export,
    table_rows,
)

# --- SQL ---------------------------------------------------------------------------------------------


def test_every_dataset_lands_as_the_sandbox_answered_and_a_rerun_changes_nothing(
    coinstats_conn: Any, portfolio: str, warehouse: str
) -> None:
    credits_before = coinstats_conn.state.credits_used()
    first = sql_export(warehouse, portfolio, ALL_DATASETS).execute(context())
    assert set(first["datasets"]) == set(ALL_DATASETS)
    assert first["credits_spent"] == coinstats_conn.state.credits_used() - credits_before > 0

    for dataset in ALL_DATASETS:
        rows = table_rows(warehouse, dataset, portfolio)
        assert rows, dataset
        assert first["datasets"][dataset]["rows"] == first["datasets"][dataset]["rows_in_table"] == len(rows)
        assert_same_rows(dataset, rows, expected_rows(dataset, portfolio))
    assert len(table_rows(warehouse, "transactions", portfolio)) == 250

    second = sql_export(warehouse, portfolio, ALL_DATASETS).execute(context())
    for dataset in ALL_DATASETS:
        assert second["datasets"][dataset]["rows_in_table"] == first["datasets"][dataset]["rows_in_table"], dataset
        assert len(table_rows(warehouse, dataset, portfolio)) == first["datasets"][dataset]["rows_in_table"]


def test_incremental_run_adds_only_the_new_transactions(coinstats_conn: Any, portfolio: str, warehouse: str) -> None:
    first = sql_export(warehouse, portfolio, ["transactions"]).execute(context())
    assert first["datasets"]["transactions"]["rows_in_table"] == 250
    assert first["datasets"]["transactions"]["incremental_since"] is None
    before = {r["row_key"]: normalized("transactions", r) for r in table_rows(warehouse, "transactions", portfolio)}

    coinstats_conn.state.append_transactions(portfolio, 37)
    coinstats_conn.state.clear_requests()
    second = sql_export(warehouse, portfolio, ["transactions"], incremental_lookback=timedelta(0)).execute(context())

    after = {r["row_key"]: normalized("transactions", r) for r in table_rows(warehouse, "transactions", portfolio)}
    assert len(after) == 287
    assert second["datasets"]["transactions"]["rows_in_table"] == 287
    assert {k: after[k] for k in before} == before  # old rows untouched
    new_keys = set(after) - set(before)
    assert len(new_keys) == 37
    newest_old = max(row["date"] for row in before.values())
    assert all(after[k]["date"] > newest_old for k in new_keys)
    # Only the new rows (and the one at the watermark) were read: one page, with ``from`` sent.
    pages = [r for r in coinstats_conn.state.requests(endpoint="portfolio_transactions")]
    assert len(pages) == 1
    assert second["datasets"]["transactions"]["rows"] == 38
    assert second["datasets"]["transactions"]["incremental_since"] is not None


def test_a_failed_load_leaves_the_table_as_it_was(coinstats_conn: Any, portfolio: str, warehouse: str) -> None:
    sql_export(warehouse, portfolio, ["transactions"]).execute(context())
    before = sorted(r["row_key"] for r in table_rows(warehouse, "transactions", portfolio))
    # Ten more pages to read: however far the read-ahead thread has got when the fault is added, pages remain.
    coinstats_conn.state.append_transactions(portfolio, 1000)

    table = SqlTable(db_hook(warehouse), "coinstats_transactions", "transactions", batch_size=50)
    rows = extract_rows(
        CoinStatsHook(), "transactions", portfolio, extracted_at=datetime.now(UTC), options=ExportOptions()
    )

    def break_after_first_page() -> Iterator[dict[str, Any]]:
        for index, row in enumerate(rows):
            if index == 100:  # from now on CoinStats refuses the next page
                coinstats_conn.state.add_fault(Fault("status", endpoint="portfolio_transactions", status=401))
            yield row

    with pytest.raises(Exception, match="401"):
        table.load(break_after_first_page(), portfolio_id=portfolio)
    assert sorted(r["row_key"] for r in table_rows(warehouse, "transactions", portfolio)) == before


def test_existing_table_with_other_columns_fails_before_any_request(
    coinstats_conn: Any, portfolio: str, warehouse: str
) -> None:
    db_hook(warehouse).run("CREATE TABLE coinstats_coins (portfolio_id VARCHAR(64), symbol VARCHAR(16))")
    with pytest.raises(AirflowFailException, match=r"missing column.*coin_id") as raised:
        sql_export(warehouse, portfolio, ["value", "coins"]).execute(context())
    assert "coinstats_coins" in str(raised.value)
    assert data_requests(coinstats_conn) == []
    assert coinstats_conn.state.credits_used() == 40  # the connect of the fixture, nothing more


def test_missing_table_without_create_table_fails_before_any_request(
    coinstats_conn: Any, portfolio: str, warehouse: str
) -> None:
    with pytest.raises(AirflowFailException, match="coinstats_chart does not exist"):
        sql_export(warehouse, portfolio, ["chart"], create_table=False).execute(context())
    assert data_requests(coinstats_conn) == []


def test_a_table_with_extra_columns_is_accepted(coinstats_conn: Any, portfolio: str, warehouse: str) -> None:
    table = SqlTable(db_hook(warehouse), "coinstats_value", "value")
    ddl = table.create_table_sql().replace("PRIMARY KEY", "loaded_by VARCHAR(32) DEFAULT 'airflow',\n    PRIMARY KEY")
    db_hook(warehouse).run(ddl)
    result = sql_export(warehouse, portfolio, ["value"]).execute(context())
    assert result["datasets"]["value"]["rows_in_table"] == 1
    hook = db_hook(warehouse)
    assert hook.get_first("SELECT loaded_by FROM coinstats_value")[0] == "airflow"


# --- validation before any paid request ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"datasets": ["coins", "holdings"]}, "datasets", "unknown dataset(s) 'holdings'; choose from coins, value"),
        ({"datasets": []}, "datasets", "non-empty list"),
        ({"tables": {"chart": "x"}}, "tables", "names dataset(s) not exported: chart"),
        ({"tables": {"coins": "drop table; --"}}, "tables", "must be a table name"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], field: str, words: str) -> None:
    args: dict[str, Any] = {"datasets": ["coins"], **kwargs}
    with pytest.raises(CoinStatsValidationError) as raised:
        CoinStatsToSqlOperator(task_id="t", portfolio_id="p", sql_conn_id="wh", **args)
    assert raised.value.field == field
    assert words in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chart_type": "2w"}, "chart_type"),
        ({"pl_interval": "minutely"}, "pl_interval"),
        ({"pl_range": "5y"}, "pl_range"),
        ({"currency": " "}, "currency"),
        ({"portfolio_id": "None"}, "portfolio_id"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_options_fail_before_any_request(
    coinstats_conn: Any, portfolio: str, warehouse: str, kwargs: dict[str, Any], field: str
) -> None:
    # chart and pl_history come last: a bad option of theirs must stop the coins read too.
    args = {"portfolio_id": portfolio, **kwargs}
    operator = CoinStatsToSqlOperator(
        task_id="t", datasets=["coins", "chart", "pl_history"], sql_conn_id=warehouse, outlets=[], **args
    )
    with pytest.raises(AirflowFailException, match=f"^{field}: "):
        operator.execute(context())
    assert data_requests(coinstats_conn) == []


def test_a_connection_without_a_sql_hook_is_refused(coinstats_conn: Any, portfolio: str) -> None:
    with pytest.raises(AirflowFailException, match=r"sql_conn_id: connection 'coinstats_default'.*no common-sql"):
        sql_export("coinstats_default", portfolio, ["coins"]).execute(context())
    assert data_requests(coinstats_conn) == []


# --- files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_files_hold_the_documented_rows_and_a_rerun_replaces_them(
    coinstats_conn: Any, portfolio: str, tmp_path: Path, file_format: str
) -> None:
    datasets = ["coins", "value", "chart", "transactions", "defi"]
    result = file_export(tmp_path / "out", portfolio, datasets, file_format=file_format).execute(context())
    for dataset in datasets:
        location = result["datasets"][dataset]["location"]
        expected_file = tmp_path / "out" / dataset / f"portfolio_id={portfolio}" / f"20260101T000000.{file_format}"
        assert location == f"file://{expected_file}"
        written = read_file(expected_file, file_format)
        assert len(written) == result["datasets"][dataset]["rows"] > 0
        assert list(written[0]) == get_schema(dataset).column_names()
        extracted_at = written[0]["extracted_at"]
        want = [as_text(r, file_format) | {"extracted_at": extracted_at} for r in expected_rows(dataset, portfolio)]
        assert written == want, dataset

    again = file_export(tmp_path / "out", portfolio, datasets, file_format=file_format).execute(context())
    for dataset in datasets:
        folder = tmp_path / "out" / dataset / f"portfolio_id={portfolio}"
        assert [p.name for p in folder.iterdir()] == [f"20260101T000000.{file_format}"]  # replaced, no leftovers
        assert again["datasets"][dataset]["rows"] == result["datasets"][dataset]["rows"]


def test_jsonl_keeps_decimals_exact(coinstats_conn: Any, portfolio: str, tmp_path: Path) -> None:
    file_export(tmp_path, portfolio, ["coins"]).execute(context())
    (path,) = (tmp_path / "coins").glob("*/*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    coins = {c["coin"]["identifier"]: c for c in CoinStatsHook().get_portfolio_coins(portfolio)}
    for row in rows:
        coin = coins[row["coin_id"]]
        assert Decimal(row["count"]) == Decimal(str(coin["count"]))
        assert Decimal(row["value_usd"]) == Decimal(str(coin["count"])) * Decimal(str(coin["price"]["USD"]))


def test_a_run_without_logical_date_is_named_by_its_run_id(coinstats_conn: Any, portfolio: str, tmp_path: Path) -> None:
    ctx = {"logical_date": None, "dag_run": SimpleNamespace(run_id="manual__2026-03-04T05:06:07+00:00")}
    result = file_export(tmp_path, portfolio, ["value"]).execute(ctx)
    assert result["datasets"]["value"]["location"].endswith("/manual__2026-03-04T05%3A06%3A07%2B00%3A00.jsonl")


def test_unwritable_path_fails_before_any_request(coinstats_conn: Any, portfolio: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CoinStatsDestinationError, match=r"^path: cannot write to .*a-file/exports"):
        file_export(blocker / "exports", portfolio, ["coins"]).execute(context())
    assert data_requests(coinstats_conn) == []


def test_a_failed_export_keeps_the_previous_file_and_leaves_no_partial_one(
    coinstats_conn: Any, portfolio: str, tmp_path: Path
) -> None:
    file_export(tmp_path, portfolio, ["transactions"]).execute(context())
    folder = tmp_path / "transactions" / f"portfolio_id={portfolio}"
    before = (folder / "20260101T000000.jsonl").read_bytes()
    coinstats_conn.state.add_fault(Fault("status", endpoint="portfolio_transactions", status=401))
    with pytest.raises(AirflowFailException, match="401"):
        file_export(tmp_path, portfolio, ["transactions"]).execute(context())
    assert [p.name for p in folder.iterdir()] == ["20260101T000000.jsonl"]
    assert (folder / "20260101T000000.jsonl").read_bytes() == before


def test_portfolio_ids_cannot_escape_the_export_folder(coinstats_conn: Any, tmp_path: Path) -> None:
    from airflow_provider_coinstats.export.files import dataset_file, storage_path

    target = dataset_file(storage_path(str(tmp_path)), "coins", "../../etc", "20260101T000000", "csv")
    assert str(target) == f"file://{tmp_path}/coins/portfolio_id=..%2F..%2Fetc/20260101T000000.csv"


# --- large portfolios --------------------------------------------------------------------------------


def test_a_100k_transaction_portfolio_arrives_whole_without_duplicates(
    coinstats_conn: Any, portfolio: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coinstats_conn.state.set_transaction_count(portfolio, 100_000)
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_TEST_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "big.db")})
    )
    result = sql_export("coinstats_test_sqlite", portfolio, ["transactions"], batch_size=5000).execute(context())
    assert result["datasets"]["transactions"]["rows"] == 100_000
    hook = db_hook("coinstats_test_sqlite")
    assert hook.get_first("SELECT COUNT(*), COUNT(DISTINCT row_key) FROM coinstats_transactions") == (100_000, 100_000)
    # Every sandbox transaction is there: the oldest and newest dates match the sandbox's first and last pages.
    newest = next(CoinStatsHook().iter_portfolio_transactions(portfolio, limit=1))
    oldest = next(CoinStatsHook().iter_portfolio_transactions(portfolio, limit=1, start_page=100_000))
    dates = hook.get_first("SELECT MAX(date), MIN(date) FROM coinstats_transactions")
    flat = [
        next(iter_rows("transactions", [item], portfolio_id=portfolio, extracted_at=LOGICAL_DATE))
        for item in (newest, oldest)
    ]
    assert [datetime.fromisoformat(d) for d in dates] == [row["date"] for row in flat]
    # The export's own page reads (limit 100; the two checks above ask for limit 1): every page once,
    # pages 1-1001 all there (1001 is the short last one), and at most the window's worth past the end.
    pages = [
        int(r.query["page"])
        for r in coinstats_conn.state.requests(endpoint="portfolio_transactions")
        if r.query.get("limit") == "100"
    ]
    assert len(pages) == len(set(pages))
    assert set(range(1, 1002)) <= set(pages)
    assert max(pages) <= 1001 + DEFAULT_PAGES_IN_FLIGHT - 1
