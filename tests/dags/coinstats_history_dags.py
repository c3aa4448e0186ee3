"""Test-only DAG: a daily snapshot of holdings into ``coinstats_test_warehouse`` (``history=True``).

The portfolio comes from the run's conf (``{"portfolio_id": ...}``). One retry is allowed, so a
test sees that a refused backfill does not spend it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator

with DAG(
    dag_id="cs_test_history_snapshot",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=0)},
) as cs_test_history_snapshot:
    CoinStatsToSqlOperator(
        task_id="snapshot",
        portfolio_id="{{ dag_run.conf['portfolio_id'] }}",
        datasets=["coins", "value"],
        sql_conn_id="coinstats_test_warehouse",
        table_prefix="coinstats_history_",
        history=True,
    )
