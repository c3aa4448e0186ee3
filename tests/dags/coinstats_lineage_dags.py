"""Test-only DAG: both transfer operators in one run, for the OpenLineage events they emit.

The run's conf gives the portfolio (``portfolio_id``) and the folder of the file export
(``path``); the warehouse is the connection ``coinstats_test_warehouse``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator
from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator

with DAG(dag_id="cs_test_lineage", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as cs_test_lineage:
    load = CoinStatsToSqlOperator(
        task_id="load_sql",
        portfolio_id="{{ dag_run.conf['portfolio_id'] }}",
        datasets=["coins", "transactions"],
        sql_conn_id="coinstats_test_warehouse",
    )
    files = CoinStatsToFileOperator(
        task_id="export_files",
        portfolio_id="{{ dag_run.conf['portfolio_id'] }}",
        datasets=["value"],
        path="{{ dag_run.conf['path'] }}",
        file_format="jsonl",
    )
    load >> files
