"""Test-only DAGs: the wallet pipeline in each sensor mode, with timeouts and retries to probe."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_coinstats.operators.portfolio import ConnectExchangeOperator, ConnectWalletOperator
from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor

ADDRESS = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"
POKE = 0.3


def wallet_pipeline(
    dag_id: str,
    *,
    mode: str = "poke",
    deferrable: bool = False,
    timeout: float = 60,
    soft_fail: bool = False,
    retries: int = 0,
) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        params={"address": ADDRESS, "blockchain": "ethereum"},
        default_args={"retries": retries, "retry_delay": timedelta(seconds=0)},
    ) as dag:
        connect = ConnectWalletOperator(
            task_id="connect_wallet", address="{{ params.address }}", blockchain="{{ params.blockchain }}"
        )
        wait = CoinStatsPortfolioSyncSensor(
            task_id="wait_for_sync",
            portfolio_id="{{ ti.xcom_pull(task_ids='connect_wallet') }}",
            mode=mode,
            deferrable=deferrable,
            poke_interval=POKE,
            timeout=timeout,
            soft_fail=soft_fail,
        )
        connect >> wait
    return dag


cs_test_poke = wallet_pipeline("cs_test_poke")
cs_test_reschedule = wallet_pipeline("cs_test_reschedule", mode="reschedule")
cs_test_deferrable = wallet_pipeline("cs_test_deferrable", deferrable=True)
cs_test_timeout = wallet_pipeline("cs_test_timeout", timeout=1.5, retries=2)
cs_test_timeout_soft = wallet_pipeline("cs_test_timeout_soft", timeout=1.5, soft_fail=True)
cs_test_timeout_deferrable = wallet_pipeline("cs_test_timeout_deferrable", deferrable=True, timeout=1.5, retries=2)
cs_test_timeout_deferrable_soft = wallet_pipeline(
    "cs_test_timeout_deferrable_soft", deferrable=True, timeout=1.5, soft_fail=True
)
cs_test_retries = wallet_pipeline("cs_test_retries", retries=2)

with DAG(
    dag_id="cs_test_exchange_templated",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
) as cs_test_exchange_templated:
    ConnectExchangeOperator(
        task_id="connect_exchange",
        exchange="binance",
        connection_fields={
            "apiKey": "{{ conn.coinstats_example_exchange.login }}",
            "apiSecret": "{{ conn.coinstats_example_exchange.password }}",
        },
        wait_for_sync=True,
        poll_interval=POKE,
        sync_timeout=60,
    )

with DAG(
    dag_id="cs_test_connect_wait",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
) as cs_test_connect_wait:
    # Connect and wait in one task: probes in the worker first, defers only while syncing.
    ConnectWalletOperator(
        task_id="connect_wallet",
        address=ADDRESS,
        blockchain="ethereum",
        wait_for_sync=True,
        poll_interval=POKE,
        sync_timeout=60,
    )
