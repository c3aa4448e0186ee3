"""Connect a wallet to CoinStats, wait until it has synced, then read its holdings and value.

Runs against the real API or the local sandbox, whichever ``coinstats_default`` points at.
``COINSTATS_EXAMPLE_POKE_INTERVAL`` (seconds, default 30) lets tests and the demo poll faster.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_coinstats.operators.portfolio import ConnectWalletOperator
from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor

POKE_INTERVAL = float(os.environ.get("COINSTATS_EXAMPLE_POKE_INTERVAL", "30"))

with DAG(
    dag_id="coinstats_wallet_pipeline",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"address": "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045", "blockchain": "ethereum"},
    tags=["coinstats", "example"],
) as dag:
    connect = ConnectWalletOperator(
        task_id="connect_wallet",
        address="{{ params.address }}",
        blockchain="{{ params.blockchain }}",
        portfolio_name="Example wallet",
    )

    wait = CoinStatsPortfolioSyncSensor(
        task_id="wait_for_sync",
        portfolio_id="{{ ti.xcom_pull(task_ids='connect_wallet') }}",
        mode="reschedule",
        poke_interval=POKE_INTERVAL,
        timeout=3600,
    )

    @task
    def read_holdings(portfolio_id: str) -> dict[str, Any]:
        from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

        hook = CoinStatsHook()
        coins = hook.get_portfolio_coins(portfolio_id)
        value = hook.get_portfolio_value(portfolio_id)
        top = sorted(coins, key=lambda c: -c["count"] * c["price"]["USD"])[:5]
        return {
            "portfolio_id": portfolio_id,
            "coins": len(coins),
            "total_value_usd": value.get("totalValue"),
            "top_symbols": [c["coin"]["symbol"] for c in top],
            "credits_spent": hook.credits_spent,
        }

    holdings = read_holdings(connect.output)
    connect >> wait >> holdings
