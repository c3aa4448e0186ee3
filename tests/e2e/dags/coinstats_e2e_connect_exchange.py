"""E2E only: connect one exchange account, picked by the run's ``account`` param, and wait for its sync.

Each account has its own connection ``coinstats_e2e_exchange_<account>`` (set by the harness as an
``AIRFLOW_CONN_*`` variable), so the run conf carries an index, never a credential. Running it twice
for the same account connects an account CoinStats already tracks (``existing``, already synced):
the case in which a deferral whose trigger fires within seconds walks into the scheduler's
defer/resume race (apache/airflow issues 66374, 71580, 72716).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_coinstats.operators.portfolio import ConnectExchangeOperator

DAG_ID = "coinstats_e2e_connect_exchange"
TASK_ID = "connect_exchange"
#: The poll interval of the issue's reproduction (issue 8, item 6).
POLL_INTERVAL = 2.0

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"account": Param(0, type="integer", minimum=0)},
    # All accounts' runs at once: the race needs concurrent runs, not a queue of them.
    max_active_runs=32,
    tags=["coinstats", "e2e"],
):
    ConnectExchangeOperator(
        task_id=TASK_ID,
        exchange="binance",
        exchange_conn_id="coinstats_e2e_exchange_{{ params.account }}",
        portfolio_name="E2E exchange account {{ params.account }}",
        wait_for_sync=True,
        poll_interval=POLL_INTERVAL,
        sync_timeout=120,
        # A race-failed attempt must show as failed, not be hidden by a retry.
        retries=0,
    )
