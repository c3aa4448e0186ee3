"""Load CoinStats portfolio datasets into SQL tables through any common-sql ``DbApiHook``.

Importing this module is cheap: the hooks, ``requests`` and database drivers load in ``execute``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_coinstats._compat import BaseHook
from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.columns import SNAPSHOT_DATASETS
from airflow_provider_coinstats.export.dialects import check_column_types
from airflow_provider_coinstats.export.extract import ExportPlan, extract_rows
from airflow_provider_coinstats.export.sql import SqlTable, validate_table_name
from airflow_provider_coinstats.transfers._export import _ExportOperator, is_templated

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Asset, Context
    from openlineage.client.event_v2 import OutputDataset

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

    ``history=True`` keeps holdings over time: ``coins``, ``defi`` and ``value`` rows are appended
    per run with a ``snapshot_date`` column (the run's logical date, else its ``run_after``) in
    the key, and a rerun of that date replaces exactly that date's snapshot of the portfolio. The
    API only answers "now", so a run is refused before any paid request when the extraction falls
    more than ``history_grace`` (default one day) outside the run's data interval: a backfill or
    late catch-up cannot fill past snapshots (``snapshot_items`` has past daily holdings). The
    other datasets carry their own timestamps and load as usual.

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
        history: bool = False,
        history_grace: timedelta = timedelta(days=1),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(history, bool):
            raise CoinStatsValidationError("history", f"must be True or False, got {history!r}")
        if history and not set(self.datasets) & set(SNAPSHOT_DATASETS):
            raise CoinStatsValidationError(
                "history", f"applies to {', '.join(SNAPSHOT_DATASETS)}; the other datasets carry their own timestamps"
            )
        if not isinstance(history_grace, timedelta) or history_grace < timedelta(0):
            raise CoinStatsValidationError("history_grace", "must be a timedelta >= 0")
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
        # Pasted into CREATE TABLE: checked here, at DAG parse, against a strict type grammar.
        self.column_types = check_column_types(column_types, self.datasets)
        self.hook_params = dict(hook_params or {})
        self.history = history
        self.history_grace = history_grace
        self._snapshot_date: datetime | None = None
        self._tables: dict[str, SqlTable] = {}
        self._db: tuple[DbApiHook, Any] | None = None  # the hook and connection execute used, for lineage
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
        self._db = (hook, connection)
        return hook

    def prepare_destination(self, plan: ExportPlan, context: Context) -> None:
        if self.history:
            self._snapshot_date = snapshot_date(context, datetime.now(UTC), self.history_grace)
        hook = self.get_db_hook()
        for dataset in plan.datasets:
            table = SqlTable(
                hook,
                self.tables[dataset],
                dataset,
                column_types=self.column_types.get(dataset),
                batch_size=self.batch_size,
                history=self.history and dataset in SNAPSHOT_DATASETS,
            )
            if table.prepare(create=self.create_table):
                self.log.info("Created table %s for %s", table.table, dataset)
            self._tables[dataset] = table

    def export_dataset(
        self, hook: CoinStatsHook, plan: ExportPlan, dataset: str, extracted_at: datetime, context: Context
    ) -> dict[str, Any]:
        table = self._tables[dataset]
        since = watermark = None
        if dataset == "transactions" and self.incremental:
            watermark = table.watermark(plan.portfolio_id)
            if watermark is not None:
                since = watermark - self.incremental_lookback
                self.log.info("transactions: incremental from %s (watermark %s)", since.isoformat(), watermark)
        rows = extract_rows(hook, dataset, plan.portfolio, extracted_at=extracted_at, options=plan.options, since=since)
        scope: dict[str, Any] = {"currency": plan.options.currency.strip().upper()}
        dated = "snapshot_date" in table.schema.column_names()
        if dated:
            assert self._snapshot_date is not None, "prepare_destination runs first"
            scope["snapshot_date"] = self._snapshot_date
            rows = _filed_under(rows, self._snapshot_date)
        read = table.load(rows, portfolio_id=plan.portfolio_id, scope=scope)
        return {
            "rows": read,
            "rows_in_table": table.count(plan.portfolio_id),
            "location": f"{self.sql_conn_id}:{table.table}",
            "incremental_since": since.isoformat() if since is not None else None,
            "incremental_watermark": watermark.isoformat() if watermark is not None else None,
            "snapshot_date": self._snapshot_date.isoformat() if dated and self._snapshot_date else None,
        }

    def lineage_outputs(self, summary: dict[str, Any]) -> list[OutputDataset]:
        from airflow_provider_coinstats.transfers.lineage import output_dataset, sql_table_name

        assert self._db is not None, "execute ran"
        hook, connection = self._db
        outputs = []
        for dataset, result in summary["datasets"].items():
            table = self._tables[dataset]
            namespace, name = sql_table_name(hook, connection, table.table)
            outputs.append(output_dataset(namespace, name, table.schema, result["rows"]))
        return outputs

    def destination_lineage(self, task_instance: object) -> OperatorLineage[Any, Any] | None:
        return None if self._db is None else self._db[0].get_openlineage_database_specific_lineage(task_instance)


def _filed_under(rows: Iterator[dict[str, Any]], date: datetime) -> Iterator[dict[str, Any]]:
    for row in rows:
        row["snapshot_date"] = date
        yield row


def snapshot_date(context: Context, now: datetime, grace: timedelta) -> datetime:
    """The date a history-mode run files its snapshot under, or a refusal if that would mislabel it.

    The label is the run's logical date (its ``run_after`` when it has none, as asset-triggered
    runs on Airflow 3). CoinStats only ever answers with the portfolio as it is ``now``, so the
    label is honest only while ``now`` lies within ``grace`` of the run's data interval; outside
    it (a backfill, a catch-up of missed intervals, a run dated in the future) the run fails
    without retries before any request is paid.

    Example::

        snapshot_date(context, datetime.now(UTC), timedelta(days=1))  # context["logical_date"]
    """
    dag_run = context.get("dag_run")
    found = context.get("logical_date") or getattr(dag_run, "run_after", None)
    if found is None:
        raise CoinStatsValidationError("history", "this run has neither a logical date nor a run_after to file under")
    label = _plain_utc(found)
    start = _plain_utc(context.get("data_interval_start") or label)
    end = _plain_utc(context.get("data_interval_end") or label)
    if now - end > grace or start - now > grace:
        raise CoinStatsValidationError(
            "history",
            f"refusing to file the holdings read now ({now.isoformat()}) under {label.isoformat()}: the run's data "
            f"interval {start.isoformat()} to {end.isoformat()} lies more than history_grace={grace} from now, and "
            "CoinStats only answers with the current portfolio. A backfill or late catch-up cannot produce past "
            "snapshots (snapshot_items has past daily holdings); no request was sent",
        )
    return label


def _plain_utc(moment: datetime) -> datetime:
    # Drivers adapt values by exact type, and Airflow hands out pendulum subclasses.
    utc = moment.astimezone(UTC)
    return datetime.combine(utc.date(), utc.time(), UTC)
