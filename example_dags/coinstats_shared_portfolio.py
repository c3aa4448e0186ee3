"""Export the portfolio you already track in the CoinStats app, daily, to a warehouse and to files.

Nothing is connected through the API (no wallet or exchange connect, no 40 credits per wallet):
the API reads the app's portfolio through its share link. In the CoinStats app, share the
portfolio (with a passcode), then keep the link's token and passcode in an Airflow connection,
``coinstats_shared_portfolio`` (any type, e.g. ``generic``; ideally in a secrets backend):

- login: the share token;
- password: the passcode (empty for a link without one);
- extra (optional): ``{"portfolio_name": "family-savings"}``, the id rows, files, XCom and logs
  use for the portfolio. Without it they use ``shared-<16 hex>``, a keyed hash of the token that
  changes if you share the portfolio again.

Reading by share token needs the API key in ``coinstats_default`` to be on CoinStats' Degen plan.
Each run spends about 48 credits for a portfolio with up to 100 holdings and transactions: one
4-credit check that the app is not re-syncing it, then holdings (8), value (10) and transactions
(4 per 100) for the table and again for the files.

Connections: ``coinstats_default`` (API key), ``coinstats_shared_portfolio`` (share link) and
``coinstats_warehouse`` (any common-sql connection).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor
from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator
from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator

POKE_INTERVAL = float(os.environ.get("COINSTATS_EXAMPLE_POKE_INTERVAL", "30"))
EXPORT_PATH = os.environ.get("COINSTATS_EXAMPLE_EXPORT_PATH", "/tmp/coinstats-export")
SHARE = "coinstats_shared_portfolio"
DATASETS = ["coins", "value", "transactions"]

with DAG(
    dag_id="coinstats_shared_portfolio",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["coinstats", "example", "shared"],
) as dag:
    # The app may be re-syncing the portfolio (its reads answer 409 meanwhile): wait in the triggerer.
    wait = CoinStatsPortfolioSyncSensor(
        task_id="wait_for_sync",
        share_conn_id=SHARE,
        poke_interval=POKE_INTERVAL,
        timeout=3600,
        deferrable=True,
    )
    load = CoinStatsToSqlOperator(
        task_id="load_tables",
        share_conn_id=SHARE,
        datasets=DATASETS,
        sql_conn_id="coinstats_warehouse",
    )
    files = CoinStatsToFileOperator(
        task_id="export_files",
        share_conn_id=SHARE,
        datasets=DATASETS,
        path=f"{EXPORT_PATH}/app_portfolio",
    )
    wait >> [load, files]
