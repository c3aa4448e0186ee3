"""Test-only DAGs for task credit budgets and ``credits_spent``: one paying task per DAG, so the
sandbox ledger's charges during a run are exactly that task's."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_coinstats.operators.portfolio import ConnectWalletOperator
from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor
from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator

ADDRESS = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"
PORTFOLIO = "{{ params.portfolio_id }}"


def _dag(dag_id: str) -> DAG:
    # Retries are allowed so the tests see that budget failures skip them.
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        params={"portfolio_id": "unknown", "path": "/tmp/unset"},
        default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
    )


with _dag("cs_credits_connect_wait") as credits_connect_wait:
    # GET /wallet/blockchains (1) + POST /portfolio/wallet (40) in the worker, then deferred probes.
    ConnectWalletOperator(
        task_id="connect_wallet", address=ADDRESS, blockchain="ethereum", wait_for_sync=True, poll_interval=0.1
    )

with _dag("cs_credits_connect_wait_budget") as credits_connect_wait_budget:
    # 41 credits before deferring leave no room for the trigger's 4-credit probe within 44.
    ConnectWalletOperator(
        task_id="connect_wallet",
        address=ADDRESS,
        blockchain="ethereum",
        wait_for_sync=True,
        poll_interval=0.1,
        max_credits=44,
    )

with _dag("cs_credits_sensor_poke") as credits_sensor_poke:
    CoinStatsPortfolioSyncSensor(task_id="wait_for_sync", portfolio_id=PORTFOLIO, poke_interval=0.1, timeout=60)

with _dag("cs_credits_sensor_deferrable") as credits_sensor_deferrable:
    CoinStatsPortfolioSyncSensor(
        task_id="wait_for_sync", portfolio_id=PORTFOLIO, poke_interval=0.1, timeout=60, deferrable=True
    )

with _dag("cs_credits_sensor_plan_check") as credits_sensor_plan_check:
    CoinStatsPortfolioSyncSensor(
        task_id="wait_for_sync",
        portfolio_id=PORTFOLIO,
        poke_interval=0.1,
        timeout=60,
        min_remaining_credits=1_000,
    )

with _dag("cs_credits_file_export") as credits_file_export:
    CoinStatsToFileOperator(
        task_id="export_files",
        portfolio_id=PORTFOLIO,
        datasets=["coins", "value", "transactions"],
        path="{{ params.path }}",
        page_limit=10,
    )
