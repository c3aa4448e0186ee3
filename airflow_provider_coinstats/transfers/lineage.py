"""OpenLineage for the export operators, built from what ``execute`` recorded: no request is sent again.

Airflow's OpenLineage listener calls ``get_openlineage_facets_on_complete`` on a finished export
(:class:`~airflow_provider_coinstats.transfers._export._ExportOperator`), which lands here. Only
that call imports this module, so the OpenLineage client is needed only where the provider
``apache-airflow-providers-openlineage`` is installed. A COMPLETE event then carries:

- one input per dataset read: namespace ``coinstats://<API host>`` (the connection's host, never
  its key), name ``portfolio/<portfolio id>/<dataset>``;
- one output per dataset written, named by the OpenLineage naming spec: SQL tables through the
  ``DbApiHook``'s ``get_openlineage_database_info`` (``postgres://host:5432`` +
  ``database.schema.table``, ``mysql://host:3306`` + ``database.table``; SQLite, which has none,
  as ``sqlite://<file path>`` + ``main.table``), files as Airflow translates the export's Asset
  (``file`` + ``/data/coinstats/coins``, ``s3://bucket`` + ``coinstats/coins``). Each output has
  a ``schema`` facet (the dataset's columns) and ``outputStatistics`` (rows written by this run;
  bytes for files);
- the run facet ``coinstats_export``: portfolio, extraction time, credits spent, and per dataset
  rows, credits, location, the incremental watermark and read start (transactions) and the
  snapshot date (history mode).

A task that failed before its export finished reports no datasets.

Example (a COMPLETE event, abridged)::

    {"eventType": "COMPLETE", "job": {"namespace": "default", "name": "warehouse.load"},
     "inputs": [{"namespace": "coinstats://openapiv1.coinstats.app",
                 "name": "portfolio/6f2c.../transactions"}],
     "outputs": [{"namespace": "postgres://db.internal:5432",
                  "name": "analytics.public.coinstats_transactions",
                  "facets": {"schema": {"fields": [{"name": "portfolio_id", "type": "string"}, ...]}},
                  "outputFacets": {"outputStatistics": {"rowCount": 42}}}],
     "run": {"facets": {"coinstats_export": {"portfolioId": "6f2c...", "creditsSpent": 12,
             "datasets": {"transactions": {"rows": 42, "credits": 12,
                                           "incrementalWatermark": "2026-11-30T17:02:11+00:00",
                                           "incrementalSince": "2026-11-29T17:02:11+00:00"}}}}}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import urlsplit

import attr
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import RunFacet, output_statistics_output_dataset, schema_dataset

from airflow_provider_coinstats.export.columns import Column, DatasetSchema

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

#: The run facet's key in ``run.facets``.
RUN_FACET: Final = "coinstats_export"

#: Summary keys (as ``execute`` returns them per dataset) -> run facet keys.
_RESULT_FIELDS: Final = {
    "rows": "rows",
    "credits": "credits",
    "location": "location",
    "incremental_watermark": "incrementalWatermark",
    "incremental_since": "incrementalSince",
    "snapshot_date": "snapshotDate",
}


@attr.define
class CoinStatsExportRunFacet(RunFacet):
    """What one export run read and spent (the ``coinstats_export`` run facet).

    Example::

        CoinStatsExportRunFacet(portfolioId="p1", extractedAt="2026-12-01T00:00:00+00:00",
                                creditsSpent=18, datasets={"coins": {"rows": 9, "credits": 8}})
    """

    portfolioId: str  # OpenLineage facet fields are camelCase
    extractedAt: str
    creditsSpent: int
    datasets: dict[str, dict[str, Any]] = attr.field(factory=dict)
    # Counts, dates and locations: nothing in it is a secret for the listener's redaction to hide.
    _additional_skip_redact: ClassVar[list[str]] = ["portfolioId", "extractedAt", "creditsSpent", "datasets"]

    @staticmethod
    def _get_schema() -> str:
        return "urn:airflow-provider-coinstats:facet:CoinStatsExportRunFacet:1"


def api_namespace(base_url: str) -> str:
    """``coinstats://<host[:port]>`` of the API the export read; user info in the URL is dropped.

    Example::

        api_namespace("https://openapiv1.coinstats.app")  # 'coinstats://openapiv1.coinstats.app'
    """
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    return f"coinstats://{host}:{parts.port}" if parts.port else f"coinstats://{host}"


def column_type(column: Column) -> str:
    """The column's type as the schema facet shows it: ``decimal(38,18)``, ``timestamp``, ..."""
    if column.type == "decimal":
        return f"decimal({column.precision},{column.scale})"
    return column.type


def schema_facet(schema: DatasetSchema) -> schema_dataset.SchemaDatasetFacet:
    """The dataset's columns, in order, with their documented descriptions."""
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=c.name, type=column_type(c), description=c.description)
            for c in schema.columns
        ]
    )


def output_dataset(
    namespace: str, name: str, schema: DatasetSchema, rows: int, *, size: int | None = None, files: int | None = None
) -> OutputDataset:
    """One written dataset with its schema and this run's output statistics (bytes and files for files)."""
    return OutputDataset(
        namespace=namespace,
        name=name,
        facets={"schema": schema_facet(schema)},
        outputFacets={
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=rows, size=size, fileCount=files
            )
        },
    )


def sql_table_name(hook: DbApiHook, connection: Any, table: str) -> tuple[str, str]:
    """(namespace, name) of ``table`` by the OpenLineage naming spec, through the hook's own lineage info.

    Example::

        sql_table_name(postgres_hook, connection, "coinstats_coins")
        # ('postgres://db.internal:5432', 'analytics.public.coinstats_coins')
    """
    from airflow.providers.openlineage.sqlparser import DatabaseInfo, SQLParser

    info = hook.get_openlineage_database_info(connection)
    default_schema = hook.get_openlineage_default_schema()
    if info is None:
        # Hooks without lineage support (SQLite's among them): the connection's type and address.
        scheme = str(getattr(hook, "dialect_name", "") or connection.conn_type or "generic").lower()
        if scheme == "sqlite":
            info, default_schema = DatabaseInfo(scheme="sqlite", authority=connection.host), "main"
        else:
            info = DatabaseInfo(scheme=scheme, authority=hook.get_openlineage_authority_part(connection))
    parts = table.split(".")
    name, schema = parts[-1], (parts[-2] if len(parts) > 1 else default_schema)
    database = parts[0] if len(parts) == 3 else info.database
    if schema is None:
        # MySQL and MariaDB have no schemas: the database is the level above the table.
        schema, database = database or connection.schema, None
    qualified = ".".join(p for p in (database, schema, name) if p)
    return SQLParser.create_namespace(info), qualified


def file_dataset_name(uri: str) -> tuple[str, str]:
    """(namespace, name) of a file export's folder, as Airflow translates the Asset with that URI.

    Example::

        file_dataset_name("file:///data/coinstats/coins")  # ('file', '/data/coinstats/coins')
        file_dataset_name("s3://bucket/coinstats/coins")   # ('s3://bucket', 'coinstats/coins')
    """
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return (f"file://{parts.netloc}" if parts.netloc else "file"), parts.path
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"


def run_facet(summary: Mapping[str, Any]) -> CoinStatsExportRunFacet:
    """The ``coinstats_export`` run facet from the summary ``execute`` returned."""
    return CoinStatsExportRunFacet(
        portfolioId=summary["portfolio_id"],
        extractedAt=summary["extracted_at"],
        creditsSpent=int(summary["credits_spent"]),
        datasets={
            dataset: {out: result[key] for key, out in _RESULT_FIELDS.items() if result.get(key) is not None}
            for dataset, result in summary["datasets"].items()
        },
    )


def export_lineage(
    api_url: str,
    summary: Mapping[str, Any],
    outputs: Sequence[OutputDataset],
    extra: OperatorLineage[Any, Any] | None = None,
) -> OperatorLineage[Any, Any]:
    """The lineage of one finished export: inputs from the summary, the destination's ``outputs``.

    ``extra`` is lineage the destination adds itself (``DbApiHook.get_openlineage_database_specific_lineage``).
    """
    namespace = api_namespace(api_url)
    # Merged by hand: OperatorLineage.merge is newer than the 2.x providers Airflow 3.0 runs.
    extra = extra or OperatorLineage()
    return OperatorLineage(
        inputs=[
            InputDataset(namespace=namespace, name=f"portfolio/{summary['portfolio_id']}/{dataset}")
            for dataset in summary["datasets"]
        ],
        outputs=list(outputs),
        run_facets={**extra.run_facets, RUN_FACET: run_facet(summary)},
        job_facets=dict(extra.job_facets),
    )
