"""The Airflow Assets an export emits, one per dataset and destination.

Downstream DAGs build the same Asset with these functions to be scheduled on an export::

    from airflow_provider_coinstats.export.assets import file_asset, sql_asset

    with DAG("holdings_report", schedule=[sql_asset("warehouse", "coinstats_coins")]):
        ...

File exports are identified by the dataset's folder URI (``file:///data/coinstats/coins``,
``s3://bucket/coinstats/coins``); SQL exports by ``coinstats-sql://<conn id>/<table>``, which
names the table without reading the connection (no I/O while DAG files are parsed). Each event
carries ``portfolio_id``, ``rows`` and ``location`` in its ``extra``.
"""

from __future__ import annotations

from airflow.sdk import Asset

from airflow_provider_coinstats.export.columns import get_schema
from airflow_provider_coinstats.export.files import base_uri
from airflow_provider_coinstats.export.sql import validate_table_name


def file_asset(path: str, dataset: str) -> Asset:
    """The Asset of ``dataset`` exported under ``path`` by ``CoinStatsToFileOperator``.

    Example::

        file_asset("/data/coinstats", "coins").uri  # 'file:///data/coinstats/coins'
    """
    return Asset(f"{base_uri(path)}/{get_schema(dataset).name}")


def sql_asset(sql_conn_id: str, table: str) -> Asset:
    """The Asset of a table loaded by ``CoinStatsToSqlOperator`` through connection ``sql_conn_id``.

    Example::

        sql_asset("warehouse", "coinstats_coins").uri  # 'coinstats-sql://warehouse/coinstats_coins'
    """
    return Asset(f"coinstats-sql://{sql_conn_id}/{validate_table_name('table', table)}")
