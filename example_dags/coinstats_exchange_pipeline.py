"""Connect an exchange account with credentials from an Airflow connection, then read holdings.

The exchange credentials live in a connection of any type, ``coinstats_example_exchange`` here
(login = apiKey, password = apiSecret, extra keys such as ``passphrase`` by name), so they come
from your secrets backend and never appear in the DAG, logs or XCom. The connect task itself waits
for the sync in the triggerer (``wait_for_sync=True``).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_coinstats.operators.portfolio import ConnectExchangeOperator

POKE_INTERVAL = float(os.environ.get("COINSTATS_EXAMPLE_POKE_INTERVAL", "30"))

with DAG(
    dag_id="coinstats_exchange_pipeline",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"exchange": "binance"},
    tags=["coinstats", "example"],
) as dag:
    connect = ConnectExchangeOperator(
        task_id="connect_exchange",
        exchange="{{ params.exchange }}",
        exchange_conn_id="coinstats_example_exchange",
        portfolio_name="Example exchange account",
        wait_for_sync=True,
        poll_interval=POKE_INTERVAL,
        sync_timeout=3600,
    )

    @task
    def read_balances(portfolio_id: str) -> dict[str, Any]:
        from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

        hook = CoinStatsHook()
        coins = hook.get_portfolio_coins(portfolio_id)
        return {
            "portfolio_id": portfolio_id,
            "coins": len(coins),
            "symbols": sorted(c["coin"]["symbol"] for c in coins),
        }

    read_balances(connect.output)
