"""Test-only DAGs for the lifecycle operators: re-sync with a wait, teardown delete, budgets."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_coinstats.operators.lifecycle import (
    CoinStatsDeletePortfolioOperator,
    CoinStatsSyncPortfolioOperator,
)
from airflow_provider_coinstats.operators.portfolio import ConnectWalletOperator

ADDRESS = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"
PORTFOLIO = "{{ params.portfolio_id }}"
_ARGS = {"start_date": datetime(2025, 1, 1), "schedule": None, "catchup": False}
# Retries are allowed so the tests can see a permanent error fail on the first try regardless.
_RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=0)}


def _dag(dag_id: str) -> DAG:
    """A manually run DAG whose ``portfolio_id`` param the tests set through ``conf``."""
    return DAG(
        dag_id=dag_id,
        params={"portfolio_id": "unknown"},
        default_args=_RETRIES,
        **_ARGS,  # type: ignore[arg-type]
    )


with _dag("coinstats_lifecycle") as lifecycle:
    connect = ConnectWalletOperator(task_id="connect_wallet", address=ADDRESS, blockchain="ethereum")
    resync = CoinStatsSyncPortfolioOperator(
        task_id="resync",
        portfolio_id="{{ ti.xcom_pull(task_ids='connect_wallet') }}",
        wait_for_sync=True,
        poll_interval=0.2,
        sync_timeout=60,
        max_credits=40,
    )
    delete = CoinStatsDeletePortfolioOperator(
        task_id="delete_portfolio", portfolio_id="{{ ti.xcom_pull(task_ids='connect_wallet') }}"
    )
    connect >> resync >> delete.as_teardown(setups=connect)

with _dag("coinstats_lifecycle_sync_all") as sync_all:
    CoinStatsSyncPortfolioOperator(task_id="resync_all", all_portfolios=True)

with _dag("coinstats_lifecycle_delete") as delete_only:
    CoinStatsDeletePortfolioOperator(task_id="delete_portfolio", portfolio_id=PORTFOLIO)

with _dag("coinstats_lifecycle_budget") as budget:
    # A sync costs 30 credits: a 20-credit budget refuses it before it is sent.
    CoinStatsSyncPortfolioOperator(task_id="resync_over_budget", portfolio_id=PORTFOLIO, max_credits=20)
    # The plan check runs first (free) and stops the task before the delete is sent.
    CoinStatsDeletePortfolioOperator(
        task_id="delete_if_plan_has_credits", portfolio_id=PORTFOLIO, min_remaining_credits=1_000
    )
