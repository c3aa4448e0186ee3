"""Export CoinStats portfolio datasets to JSON Lines, CSV or Parquet files on any Airflow object storage.

Importing this module is cheap: the hook, ``requests``, the object-storage stack and pyarrow
load in ``execute`` (whether pyarrow is installed is checked without importing it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_coinstats.export.extract import ExportPlan, extract_rows
from airflow_provider_coinstats.export.files import (
    dataset_file,
    ensure_writable,
    partition_name,
    storage_path,
    validate_format,
    validate_max_rows_per_file,
    write_rows,
)
from airflow_provider_coinstats.transfers._export import _ExportOperator, is_templated

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context, ObjectStoragePath
    from openlineage.client.event_v2 import OutputDataset

    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook


class CoinStatsToFileOperator(_ExportOperator):
    """Write portfolio datasets as JSON Lines, CSV or Parquet files through ``ObjectStoragePath``.

    One file per dataset, portfolio and run: ``<path>/<dataset>/portfolio_id=<id>/<logical
    date>.<format>``, so a rerun replaces its own files. With ``max_rows_per_file`` a dataset
    is split into parts of at most that many rows, ``<logical date>-00001.<format>``,
    ``-00002``, ...; the parts are published together once all are written, and a rerun's
    publication removes the parts it did not write. ``file_format="parquet"`` needs the extra
    ``pip install 'airflow-provider-coinstats[parquet]'`` (checked when the DAG is parsed); its
    columns are typed from the schema (decimal128, UTC microsecond timestamps) and written in row
    groups as pages stream (:mod:`airflow_provider_coinstats.export.parquet`); they leave out
    ``portfolio_id``, which Hive-aware readers of ``<path>/<dataset>`` restore from the folder
    name (JSONL and CSV rows keep it). Rows stream page by page, with
    ``max_pages_in_flight`` pages (default 4) requested at once (memory stays bounded by that many
    pages; see :mod:`airflow_provider_coinstats.export.pages`). A file appears whole or not at
    all: object stores publish it with the filesystem's own commit (an s3fs multipart upload
    completes only then, and is aborted on failure), local files are renamed into place; a
    failed run keeps the previous file. CSV
    text cells that a spreadsheet would run as a formula get a leading ``'``; see
    :mod:`airflow_provider_coinstats.export.files`. Each dataset updates the Asset
    :func:`~airflow_provider_coinstats.export.assets.file_asset` ``(path, dataset)`` when
    ``path`` is not templated; the task's result lists every file of each dataset under
    ``files`` (with ``rows`` and ``bytes``). The columns are documented in
    :mod:`airflow_provider_coinstats.export.schemas`.

    Everything is checked before the first paid request: dataset names, options, and that
    ``path`` can be written (a probe file is created and deleted). Local folders are created as
    needed; a bucket never is: a missing one fails the task, naming it.

    Example::

        export = CoinStatsToFileOperator(
            task_id="export_files",
            portfolio_id="{{ ti.xcom_pull(task_ids='connect_wallet') }}",
            datasets=["coins", "value", "transactions"],
            path="s3://my-bucket/coinstats",
            storage_conn_id="aws_default",
            file_format="parquet",
            max_rows_per_file=1_000_000,
        )
    """

    template_fields: Sequence[str] = (*_ExportOperator.template_fields, "path")

    def __init__(
        self,
        *,
        path: str,
        file_format: str = "jsonl",
        storage_conn_id: str | None = None,
        max_rows_per_file: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = path
        # Neither is templated: a bad value, or parquet without pyarrow, fails when the DAG is parsed.
        self.file_format = validate_format(file_format)
        self.max_rows_per_file = validate_max_rows_per_file(max_rows_per_file)
        self.storage_conn_id = storage_conn_id
        self._base: ObjectStoragePath | None = None
        self._init_outlets()

    def dataset_asset(self, dataset: str) -> Asset | None:
        if is_templated(self.path) or not isinstance(self.path, str):
            return None
        from airflow_provider_coinstats.export.assets import file_asset

        return file_asset(self.path, dataset)

    def prepare_destination(self, plan: ExportPlan, context: Context) -> None:
        self._base = storage_path(self.path, self.storage_conn_id)
        ensure_writable(self._base)

    def export_dataset(
        self, hook: CoinStatsHook, plan: ExportPlan, dataset: str, extracted_at: datetime, context: Context
    ) -> dict[str, Any]:
        assert self._base is not None, "prepare_destination runs first"
        dag_run = context.get("dag_run")
        partition = partition_name(context.get("logical_date"), getattr(dag_run, "run_id", None))
        target = dataset_file(self._base, dataset, plan.portfolio_id, partition, self.file_format)
        rows = extract_rows(hook, dataset, plan.portfolio, extracted_at=extracted_at, options=plan.options)
        written = write_rows(target, dataset, rows, self.file_format, max_rows_per_file=self.max_rows_per_file)
        # A split run's location names all its parts at once, as a glob readers accept.
        location = (
            written.files[0] if self.max_rows_per_file is None else f"{target.parent}/{partition}-*.{self.file_format}"
        )
        return {"rows": written.rows, "location": location, "files": written.files, "bytes": written.bytes}

    def lineage_outputs(self, summary: dict[str, Any]) -> list[OutputDataset]:
        from airflow_provider_coinstats.export.assets import file_asset
        from airflow_provider_coinstats.export.columns import get_schema
        from airflow_provider_coinstats.transfers.lineage import file_dataset_name, output_dataset

        # The dataset's folder, named as Airflow translates its Asset; the run's files are in its statistics.
        return [
            output_dataset(
                *file_dataset_name(file_asset(self.path, dataset).uri),
                get_schema(dataset),
                result["rows"],
                size=result["bytes"],
                files=len(result["files"]),
            )
            for dataset, result in summary["datasets"].items()
        ]
