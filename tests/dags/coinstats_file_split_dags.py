"""Test-only DAG: a Parquet export split into parts, run with ``dag.test()``.

The portfolio comes from the run's conf (``{"portfolio_id": ...}``); files go to ``lake`` in the
suite's AIRFLOW_HOME, a path fixed at parse time so the task emits the dataset's Asset.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator

with DAG(dag_id="cs_test_parquet_parts", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:
    CoinStatsToFileOperator(
        task_id="lake",
        portfolio_id="{{ dag_run.conf['portfolio_id'] }}",
        datasets=["transactions", "value"],
        path=os.path.join(os.environ.get("AIRFLOW_HOME", "/tmp"), "lake"),
        file_format="parquet",
        max_rows_per_file=100,
    )
