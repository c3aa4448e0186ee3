"""Feed a warehouse: connect a wallet and an exchange account, wait for sync, load tables and files.

Both connect tasks wait for the sync in the triggerer (``wait_for_sync=True``). Then holdings,
value and transactions of each portfolio go to SQL tables through ``coinstats_warehouse`` (any
common-sql connection: SQLite here, PostgreSQL, Snowflake, ...) and to JSON Lines files under
``COINSTATS_EXAMPLE_EXPORT_PATH`` (a local folder, or ``s3://...`` with ``storage_conn_id``).
Reruns replace, transactions load incrementally, and every table and file folder is an Airflow
Asset: ``coinstats_holdings_report`` below runs whenever the holdings table is updated.

Connections: ``coinstats_default`` (the API key), ``coinstats_example_exchange`` (exchange
credentials) and ``coinstats_warehouse``.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_coinstats.export.assets import sql_asset
from airflow_provider_coinstats.operators.portfolio import ConnectExchangeOperator, ConnectWalletOperator
from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator
from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator

POKE_INTERVAL = float(os.environ.get("COINSTATS_EXAMPLE_POKE_INTERVAL", "30"))
EXPORT_PATH = os.environ.get("COINSTATS_EXAMPLE_EXPORT_PATH", "/tmp/coinstats-export")
WAREHOUSE = "coinstats_warehouse"
DATASETS = ["coins", "value", "transactions"]

with DAG(
    dag_id="coinstats_warehouse_pipeline",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "address": "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045",
        "blockchain": "ethereum",
        "exchange": "binance",
    },
    tags=["coinstats", "example", "warehouse"],
) as dag:
    wallet = ConnectWalletOperator(
        task_id="connect_wallet",
        address="{{ params.address }}",
        blockchain="{{ params.blockchain }}",
        portfolio_name="Warehouse wallet",
        wait_for_sync=True,
        poll_interval=POKE_INTERVAL,
    )
    exchange = ConnectExchangeOperator(
        task_id="connect_exchange",
        exchange="{{ params.exchange }}",
        exchange_conn_id="coinstats_example_exchange",
        portfolio_name="Warehouse exchange account",
        wait_for_sync=True,
        poll_interval=POKE_INTERVAL,
    )

    for name, connect in (("wallet", wallet), ("exchange", exchange)):
        CoinStatsToSqlOperator(
            task_id=f"load_{name}_tables",
            portfolio_id=connect.output,
            datasets=DATASETS,
            sql_conn_id=WAREHOUSE,
        )
        CoinStatsToFileOperator(
            task_id=f"export_{name}_files",
            portfolio_id=connect.output,
            datasets=DATASETS,
            path=EXPORT_PATH,
            file_format="jsonl",
        )


with DAG(
    dag_id="coinstats_holdings_report",
    schedule=[sql_asset(WAREHOUSE, "coinstats_coins")],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["coinstats", "example", "warehouse"],
) as report_dag:

    @task
    def holdings_by_portfolio() -> list[Any]:
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        from airflow_provider_coinstats._compat import BaseHook

        hook = BaseHook.get_connection(WAREHOUSE).get_hook()
        assert isinstance(hook, DbApiHook)
        return [
            list(row)
            for row in hook.get_records(
                "SELECT portfolio_id, COUNT(*), SUM(value_usd) FROM coinstats_coins GROUP BY portfolio_id"
            )
        ]

    holdings_by_portfolio()
