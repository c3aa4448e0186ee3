"""Test-only DAGs: one SQL export task each, to probe retries and kills under ``dag.test()``.

The portfolio comes from the run's conf (``{"portfolio_id": ...}``); the warehouse is the
connection ``coinstats_test_warehouse``, which each test points at its own database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator

WAREHOUSE = "coinstats_test_warehouse"


def sql_export_dag(dag_id: str, datasets: Sequence[str], *, retries: int, create_table: bool = True) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=0)},
    ) as dag:
        CoinStatsToSqlOperator(
            task_id="load",
            portfolio_id="{{ dag_run.conf['portfolio_id'] }}",
            datasets=list(datasets),
            sql_conn_id=WAREHOUSE,
            create_table=create_table,
            batch_size=100,  # one page per batch: rows are written (uncommitted) before a later page
        )
    return dag


# One task, two failures: a locked database spends the retry, a missing table does not.
cs_test_export_no_create = sql_export_dag("cs_test_export_no_create", ["coins"], retries=1, create_table=False)
cs_test_export_kill_transactions = sql_export_dag("cs_test_export_kill_transactions", ["transactions"], retries=0)
cs_test_export_kill_value = sql_export_dag("cs_test_export_kill_value", ["value"], retries=0)
