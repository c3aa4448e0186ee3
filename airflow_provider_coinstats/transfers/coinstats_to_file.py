"""Export CoinStats portfolio datasets to JSON Lines or CSV files on any Airflow object storage.

Importing this module is cheap: the hook, ``requests`` and the object-storage stack load in
``execute``.
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
    write_rows,
)
from airflow_provider_coinstats.transfers._export import _ExportOperator, is_templated

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context, ObjectStoragePath

    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook


class CoinStatsToFileOperator(_ExportOperator):
    """Write portfolio datasets as JSON Lines or CSV files through ``ObjectStoragePath``.

    One file per dataset, portfolio and run: ``<path>/<dataset>/portfolio_id=<id>/<logical
    date>.<format>``, so a rerun replaces its own files. Rows stream page by page, with
    ``max_pages_in_flight`` pages (default 4) requested at once (memory stays bounded by that many
    pages; see :mod:`airflow_provider_coinstats.export.pages`). A file appears whole or not at
    all: object stores publish it with the filesystem's own commit (an s3fs multipart upload
    completes only then, and is aborted on failure), local files are renamed into place; a
    failed run keeps the previous file. CSV
    text cells that a spreadsheet would run as a formula get a leading ``'``; see
    :mod:`airflow_provider_coinstats.export.files`. Each dataset updates the Asset
    :func:`~airflow_provider_coinstats.export.assets.file_asset` ``(path, dataset)`` when
    ``path`` is not templated. The columns are documented in
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
            file_format="jsonl",
        )
    """

    template_fields: Sequence[str] = (*_ExportOperator.template_fields, "path")

    def __init__(
        self,
        *,
        path: str,
        file_format: str = "jsonl",
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.file_format = validate_format(file_format)
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
        rows = extract_rows(hook, dataset, plan.portfolio_id, extracted_at=extracted_at, options=plan.options)
        count = write_rows(target, dataset, rows, self.file_format)
        return {"rows": count, "location": str(target)}
