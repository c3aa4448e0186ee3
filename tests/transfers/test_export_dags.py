"""The warehouse example DAG end to end: two portfolios to SQLite tables and JSONL files, with Assets.

Witnesses: task states and XComs, the rows in the warehouse file, the files on disk, the asset
events in the metadata DB and the sandbox's request log.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.export.assets import file_asset, sql_asset
from tests.helpers import export_path

DATASETS = ("coins", "value", "transactions")


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, coinstats_conn: Any) -> Path:
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_EXAMPLE_EXCHANGE",
        json.dumps({"conn_type": "generic", "login": "wh-key", "password": "wh-secret"}),
    )
    shutil.rmtree(export_path(), ignore_errors=True)
    return database


def count(db: sqlite3.Connection, query: str, *params: str) -> int:
    return int(db.execute(query, params).fetchone()[0])


def asset_events(uri: str, dag_id: str = "coinstats_warehouse_pipeline") -> list[dict[str, Any]]:
    # Other example DAGs in the same session (the shared-portfolio one) write to the same Assets.
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri, AssetEvent.source_dag_id == dag_id)
            .order_by(AssetEvent.id)
        )
        return [dict(row.extra or {}) for row in rows]


def test_warehouse_pipeline_loads_tables_files_and_emits_assets(
    coinstats_conn: Any, run_dag: Any, warehouse: Path
) -> None:
    coinstats_conn.state.configure(sync_polls=2)
    result = run_dag("coinstats_warehouse_pipeline")
    assert result.state == "success"
    portfolios = {name: result.xcom(f"connect_{name}") for name in ("wallet", "exchange")}
    assert len(set(portfolios.values())) == 2

    db = sqlite3.connect(warehouse)
    for name, pid in portfolios.items():
        summary = result.xcom(f"load_{name}_tables")
        assert summary["portfolio_id"] == pid
        profile = coinstats_conn.state.profile(pid)
        counts = {d: count(db, f"SELECT COUNT(*) FROM coinstats_{d} WHERE portfolio_id = ?", pid) for d in DATASETS}
        assert counts["transactions"] == profile.transaction_count > 0
        assert counts["value"] == 1
        assert counts["coins"] == len(coinstats_conn_coins(pid)) > 0
        assert {d: summary["datasets"][d]["rows_in_table"] for d in DATASETS} == counts

        files = result.xcom(f"export_{name}_files")
        for dataset in DATASETS:
            location = files["datasets"][dataset]["location"]
            assert location.startswith(f"file://{export_path()}/{dataset}/portfolio_id={pid}/")
            lines = Path(location.removeprefix("file://")).read_text().splitlines()
            assert len(lines) == counts[dataset]
            assert {json.loads(line)["portfolio_id"] for line in lines} == {pid}

    for dataset in DATASETS:
        sql_events = asset_events(sql_asset("coinstats_warehouse", f"coinstats_{dataset}").uri)
        file_events = asset_events(file_asset(str(export_path()), dataset).uri)
        for events in (sql_events, file_events):
            assert sorted(e["portfolio_id"] for e in events) == sorted(portfolios.values())
            assert all(e["dataset"] == dataset and e["rows"] > 0 for e in events)

    # A second run (new logical date) reads again but adds no rows: replace and upsert, not append.
    before = {d: count(db, f"SELECT COUNT(*) FROM coinstats_{d}") for d in DATASETS}
    again = run_dag("coinstats_warehouse_pipeline")
    assert again.state == "success"
    assert {d: count(db, f"SELECT COUNT(*) FROM coinstats_{d}") for d in DATASETS} == before
    # Transactions were read incrementally: the second load asked for transactions since the watermark.
    since = again.xcom("load_wallet_tables")["datasets"]["transactions"]["incremental_since"]
    assert since is not None
    assert len(asset_events(sql_asset("coinstats_warehouse", "coinstats_coins").uri)) == 4


def coinstats_conn_coins(portfolio_id: str) -> list[dict[str, Any]]:
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    return CoinStatsHook().get_portfolio_coins(portfolio_id)
