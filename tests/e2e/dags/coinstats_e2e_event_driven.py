"""e2e: a DAG scheduled on an Asset whose AssetWatcher runs CoinStatsNewTransactionsTrigger.

The watched portfolio is shared by link; its connection (``coinstats_e2e_watched``) is set by
the test. Each run returns the event payload it was triggered by. A second DAG watches through a
connection whose share token CoinStats does not know (``coinstats_e2e_broken``): its trigger
ends on the 403 and the triggerer starts it again; it must never run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_coinstats.triggers.events import CoinStatsNewTransactionsTrigger

new_transactions = Asset(
    "coinstats_e2e_new_transactions",
    watchers=[
        AssetWatcher(
            name="coinstats_e2e_watcher",
            trigger=CoinStatsNewTransactionsTrigger(share_conn_id="coinstats_e2e_watched", poll_interval=2),
        )
    ],
)

with DAG(
    dag_id="coinstats_e2e_event_driven",
    schedule=[new_transactions],
    start_date=datetime(2025, 1, 1),
    catchup=False,
):

    @task
    def new_transaction(triggering_asset_events: Any = None) -> dict[str, Any]:
        (event,) = [e for events in triggering_asset_events.values() for e in events]
        payload: dict[str, Any] = event.extra["payload"]
        return payload

    new_transaction()

broken = Asset(
    "coinstats_e2e_broken_watch",
    watchers=[
        AssetWatcher(
            name="coinstats_e2e_broken_watcher",
            trigger=CoinStatsNewTransactionsTrigger(share_conn_id="coinstats_e2e_broken", poll_interval=2),
        )
    ],
)

with DAG(
    dag_id="coinstats_e2e_broken_watch",
    schedule=[broken],
    start_date=datetime(2025, 1, 1),
    catchup=False,
):

    @task
    def never() -> None:
        raise AssertionError("a watcher that cannot read its portfolio fired")

    never()
