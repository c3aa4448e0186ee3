"""Connect many wallets with dynamic task mapping and wait for each in deferrable mode.

One mapped connect task per address, one mapped deferrable sensor per portfolio: while waiting,
the sensors hold no worker slot, only a few coroutines in the triggerer.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_coinstats.operators.portfolio import ConnectWalletOperator
from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor

POKE_INTERVAL = float(os.environ.get("COINSTATS_EXAMPLE_POKE_INTERVAL", "30"))

WALLETS = [
    "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045",
    "0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B",
    "0x220866B1A2219f40e72f5c628B65D54268cA3A9D",
]

with DAG(
    dag_id="coinstats_many_wallets",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["coinstats", "example"],
) as dag:
    connect = ConnectWalletOperator.partial(task_id="connect_wallet", blockchain="ethereum").expand(address=WALLETS)

    wait = CoinStatsPortfolioSyncSensor.partial(
        task_id="wait_for_sync",
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=3600,
    ).expand(portfolio_id=connect.output)

    @task
    def summarize(portfolio_ids: list[str]) -> dict[str, Any]:
        from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

        hook = CoinStatsHook()
        values = {pid: hook.get_portfolio_value(pid).get("totalValue") for pid in portfolio_ids}
        return {"portfolios": len(values), "total_value_usd": sum(v or 0 for v in values.values())}

    summary = summarize(wait.output)
