"""Load CoinStats portfolio datasets into SQL tables through any common-sql ``DbApiHook``.

Importing this module is cheap: the hooks, ``requests`` and database drivers load in ``execute``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_coinstats._compat import BaseHook
from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.extract import ExportPlan, extract_rows
from airflow_provider_coinstats.export.sql import SqlTable, validate_table_name
from airflow_provider_coinstats.transfers._export import _ExportOperator, is_templated

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Asset, Context

    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook


class CoinStatsToSqlOperator(_ExportOperator):
    """Load portfolio datasets into SQL tables of any database with a common-sql hook.

    Each dataset goes to ``tables[dataset]`` or ``<table_prefix><dataset>`` (``coinstats_coins``,
    ``coinstats_transactions``, ...) in one database transaction per dataset. Reruns never
    duplicate rows: ``coins``, ``defi`` and ``value`` replace the portfolio's rows, the other
    datasets upsert on their key (see :mod:`airflow_provider_coinstats.export.sql`).
    Transactions load incrementally by default: only those dated at or after the newest loaded
    ``date`` minus ``incremental_lookback`` are read, which saves credits on every page skipped.

    Before the first paid request, every table is created (``create_table=True``) or checked to
    have the dataset's columns; a missing or mismatched table fails naming the columns, without
    task retries. Any other database error (a lock, a timeout, a refused or lost connection)
    fails with the database's own message as a retryable
    :class:`~airflow_provider_coinstats.exceptions.CoinStatsDestinationError`, so task retries
    apply. A killed task (SIGTERM) stops within a fraction of a second and rolls the open load
    back. Each dataset updates the Asset :func:`~airflow_provider_coinstats.export.assets.sql_asset`
    ``(sql_conn_id, table)``.

    Example::

        load = CoinStatsToSqlOperator(
            task_id="load_warehouse",
            portfolio_id="{{ ti.xcom_pull(task_ids='connect_wallet') }}",
            datasets=["coins", "value", "transactions"],
            sql_conn_id="warehouse",  # postgres, sqlite, snowflake, ... any DbApiHook
            table_prefix="coinstats_",
        )
    """

    def __init__(
        self,
        *,
        sql_conn_id: str,
        table_prefix: str = "coinstats_",
        tables: Mapping[str, str] | None = None,
        create_table: bool = True,
        batch_size: int = 1000,
        incremental: bool = True,
        incremental_lookback: timedelta = timedelta(days=1),
        column_types: Mapping[str, Mapping[str, str]] | None = None,
        hook_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(sql_conn_id, str) or not sql_conn_id.strip():
            raise CoinStatsValidationError("sql_conn_id", "must be the id of an Airflow connection to a SQL database")
        unknown = sorted(set(tables or {}) - set(self.datasets))
        if unknown:
            raise CoinStatsValidationError("tables", f"names dataset(s) not exported: {', '.join(unknown)}")
        if not isinstance(incremental_lookback, timedelta) or incremental_lookback < timedelta(0):
            raise CoinStatsValidationError("incremental_lookback", "must be a timedelta >= 0")
        self.sql_conn_id = sql_conn_id
        self.tables = {
            d: validate_table_name("tables", (tables or {}).get(d, f"{table_prefix}{d}")) for d in self.datasets
        }
        self.create_table = create_table
        self.batch_size = batch_size
        self.incremental = incremental
        self.incremental_lookback = incremental_lookback
        self.column_types = {d: dict(types) for d, types in (column_types or {}).items()}
        self.hook_params = dict(hook_params or {})
        self._tables: dict[str, SqlTable] = {}
        self._init_outlets()

    def dataset_asset(self, dataset: str) -> Asset | None:
        if is_templated(self.sql_conn_id):
            return None
        from airflow_provider_coinstats.export.assets import sql_asset

        return sql_asset(self.sql_conn_id, self.tables[dataset])

    def get_db_hook(self) -> DbApiHook:
        """The common-sql hook of ``sql_conn_id``."""
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        connection = BaseHook.get_connection(self.sql_conn_id)
        hook = connection.get_hook(hook_params=self.hook_params)  # type: ignore[no-untyped-call]
        if not isinstance(hook, DbApiHook):
            raise CoinStatsValidationError(
                "sql_conn_id",
                f"connection {self.sql_conn_id!r} (type {connection.conn_type!r}) has no common-sql DbApiHook; "
                "use a SQL database connection such as postgres or sqlite",
            )
        return hook

    def prepare_destination(self, plan: ExportPlan, context: Context) -> None:
        hook = self.get_db_hook()
        for dataset in plan.datasets:
            table = SqlTable(
                hook,
                self.tables[dataset],
                dataset,
                column_types=self.column_types.get(dataset),
                batch_size=self.batch_size,
            )
            if table.prepare(create=self.create_table):
                self.log.info("Created table %s for %s", table.table, dataset)
            self._tables[dataset] = table

    def export_dataset(
        self, hook: CoinStatsHook, plan: ExportPlan, dataset: str, extracted_at: datetime, context: Context
    ) -> dict[str, Any]:
        table = self._tables[dataset]
        since = None
        if dataset == "transactions" and self.incremental:
            watermark = table.watermark(plan.portfolio_id)
            if watermark is not None:
                since = watermark - self.incremental_lookback
                self.log.info("transactions: incremental from %s (watermark %s)", since.isoformat(), watermark)
        rows = extract_rows(
            hook, dataset, plan.portfolio_id, extracted_at=extracted_at, options=plan.options, since=since
        )
        read = table.load(
            rows, portfolio_id=plan.portfolio_id, scope={"currency": plan.options.currency.strip().upper()}
        )
        return {
            "rows": read,
            "rows_in_table": table.count(plan.portfolio_id),
            "location": f"{self.sql_conn_id}:{table.table}",
            "incremental_since": since.isoformat() if since is not None else None,
        }
