"""Test-only DAGs: a shared portfolio (share token + passcode in the connection ``cs_share``).

The tests set ``cs_share`` (login = share token, password = passcode) and the SQLite warehouse
``cs_shared_warehouse`` as ``AIRFLOW_CONN_*`` variables; files go under
``$COINSTATS_EXAMPLE_EXPORT_PATH/shared``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor
from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator
from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator

SHARE = "cs_share"
WAREHOUSE = "cs_shared_warehouse"
POLL = 0.3
DATASETS = ["coins", "value", "transactions"]
EXPORT_PATH = os.path.join(os.environ.get("COINSTATS_EXAMPLE_EXPORT_PATH", "/tmp/coinstats-export"), "shared")


def dag(dag_id: str, retries: int = 0) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=0)},
    )


def wait(deferrable: bool, mode: str = "poke") -> CoinStatsPortfolioSyncSensor:
    return CoinStatsPortfolioSyncSensor(
        task_id="wait_for_sync",
        share_conn_id=SHARE,
        poke_interval=POLL,
        timeout=60,
        mode=mode,
        deferrable=deferrable,
    )


def exports() -> list[CoinStatsToSqlOperator | CoinStatsToFileOperator]:
    return [
        CoinStatsToSqlOperator(task_id="load_tables", share_conn_id=SHARE, datasets=DATASETS, sql_conn_id=WAREHOUSE),
        CoinStatsToFileOperator(task_id="export_files", share_conn_id=SHARE, datasets=DATASETS, path=EXPORT_PATH),
    ]


# Wait in the worker (poke), then export to a table and to files.
with dag("cs_shared_poke_and_export") as cs_shared_poke_and_export:
    wait(deferrable=False) >> exports()

# Wait in the triggerer (the trigger row holds only the connection id), then export.
with dag("cs_shared_deferred_and_export") as cs_shared_deferred_and_export:
    wait(deferrable=True) >> exports()

# Wait with the worker slot freed between pokes.
with dag("cs_shared_reschedule") as cs_shared_reschedule:
    wait(deferrable=False, mode="reschedule")

# A wrong passcode: each task fails once, without using its retries.
with dag("cs_shared_wrong_passcode", retries=2) as cs_shared_wrong_passcode:
    wait(deferrable=False)
    exports()
