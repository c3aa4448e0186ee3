"""e2e: DAGs scheduled on Assets whose AssetWatchers run CoinStatsNewTransactionsTrigger.

``coinstats_e2e_event_driven`` watches a portfolio shared by link (connection
``coinstats_e2e_watched``, set by the test); each run returns the event payload it was
triggered by. ``coinstats_e2e_broken_watch`` watches through a connection whose share token
CoinStats does not know (``coinstats_e2e_broken``): its trigger ends on the 403 and the
triggerer starts it again; it must never run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_coinstats.triggers.events import CoinStatsNewTransactionsTrigger


def watched_dag(dag_id: str, share_conn_id: str) -> DAG:
    """A DAG scheduled on an Asset watched through ``share_conn_id`` every 2 s; it returns the payload."""
    watched = Asset(
        f"{dag_id}_asset",
        watchers=[
            AssetWatcher(
                name=f"{dag_id}_watcher",
                trigger=CoinStatsNewTransactionsTrigger(share_conn_id=share_conn_id, poll_interval=2),
            )
        ],
    )
    with DAG(dag_id=dag_id, schedule=[watched], start_date=datetime(2025, 1, 1), catchup=False) as dag:

        @task
        def new_transaction(triggering_asset_events: Any = None) -> dict[str, Any]:
            (event,) = [e for events in triggering_asset_events.values() for e in events]
            payload: dict[str, Any] = event.extra["payload"]
            return payload

        new_transaction()
    return dag


event_driven = watched_dag("coinstats_e2e_event_driven", "coinstats_e2e_watched")
broken_watch = watched_dag("coinstats_e2e_broken_watch", "coinstats_e2e_broken")
