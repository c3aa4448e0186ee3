"""Load new transactions when there are some: an AssetWatcher on the portfolio you track in the app.

Instead of a timer, the DAG is scheduled on an Asset watched by
:class:`~airflow_provider_coinstats.triggers.events.CoinStatsNewTransactionsTrigger`. In the
triggerer, the trigger reads the newest transaction of the portfolio (one row, 4 credits) every
``CHECK_INTERVAL`` seconds and fires when it changes; only then does a run load the new
transactions into the warehouse (incrementally, from the newest loaded date).

Checks cost 4 credits each, whether or not anything changed: per day 5,760 credits at 1 min,
1,152 at 5 min, 384 at 15 min (the default here), 96 at 1 h. A run then pays for the pages it
loads (4 credits per 100 transactions), within ``max_credits``, and only starts when the plan
still has ``min_remaining_credits``; each run pushes what it spent to XCom ``credits_spent``.

The first check after the triggerer starts only notes the newest transaction; a transaction that
arrives while no triggerer runs is loaded with the next one (the load is incremental).

Connections: ``coinstats_default`` (API key, Degen plan for share links),
``coinstats_shared_portfolio`` (the share link: login = token, password = passcode, see
``coinstats_shared_portfolio.py``) and ``coinstats_warehouse`` (any common-sql connection).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator
from airflow_provider_coinstats.triggers.events import CoinStatsNewTransactionsTrigger

SHARE = "coinstats_shared_portfolio"
CHECK_INTERVAL = float(os.environ.get("COINSTATS_EXAMPLE_CHECK_INTERVAL", "900"))

new_transactions = Asset(
    "coinstats_shared_portfolio_new_transactions",
    watchers=[
        AssetWatcher(
            name="coinstats_shared_portfolio_watcher",
            trigger=CoinStatsNewTransactionsTrigger(share_conn_id=SHARE, poll_interval=CHECK_INTERVAL),
        )
    ],
)

with DAG(
    dag_id="coinstats_event_driven",
    schedule=[new_transactions],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["coinstats", "example", "event-driven"],
) as dag:

    @task
    def newest_transaction(triggering_asset_events: Any = None) -> dict[str, Any] | None:
        """The watcher's event payload (portfolio public id, newest date, row key); None for a manual run."""
        payloads = [e.extra.get("payload") for events in (triggering_asset_events or {}).values() for e in events]
        return payloads[-1] if payloads else None

    load = CoinStatsToSqlOperator(
        task_id="load_transactions",
        share_conn_id=SHARE,
        datasets=["transactions"],
        sql_conn_id="coinstats_warehouse",
        max_credits=400,  # 100 pages: a first full load of up to 10,000 transactions
        min_remaining_credits=2_000,  # keep a day of checks in reserve
    )
    newest_transaction() >> load
