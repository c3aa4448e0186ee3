"""Write flat dataset rows as JSON Lines or CSV files through Airflow's ``ObjectStoragePath``.

Any storage Airflow's object storage reaches works: a local path in tests, ``s3://`` or
``gs://`` with the matching provider and a connection for users. Files are laid out Hive-style,
one file per dataset, portfolio and run::

    <base>/<dataset>/portfolio_id=<id>/<partition>.<jsonl|csv>

``partition`` is the run's logical date (``20260101T000000``), or its run id when the run has
no logical date. A rerun therefore overwrites its own file instead of adding a second one.
Rows stream into a temporary sibling that is renamed over the final name only when every row
is written, so readers never see half a file and a failed run leaves the previous file intact.

Values are written as :func:`~airflow_provider_coinstats.export.schemas.to_jsonable` renders
them: decimals as plain digit strings (exact; no float rounding), timestamps as UTC ISO-8601
with ``Z``. CSV has a header row; ``None`` is an empty field and booleans are ``true``/``false``.
JSON Lines keep ``null`` and JSON booleans.

Example::

    base = storage_path("s3://warehouse/coinstats", conn_id="aws_default")
    ensure_writable(base)
    write_rows(dataset_file(base, "coins", "p1", "20260101T000000", "jsonl"), "coins", rows, "jsonl")
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TextIO
from urllib.parse import quote

from airflow_provider_coinstats.exceptions import CoinStatsDestinationError, CoinStatsValidationError
from airflow_provider_coinstats.export.schemas import get_schema, to_jsonable

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

FILE_FORMATS: Final = ("jsonl", "csv")
#: JSON lines joined per write call: object-store file objects pay Python overhead per call.
_LINES_PER_WRITE: Final = 500


def validate_format(value: object) -> str:
    if value not in FILE_FORMATS:
        raise CoinStatsValidationError("file_format", f"must be one of {', '.join(FILE_FORMATS)}; got {value!r}")
    return str(value)


def base_uri(path: str) -> str:
    """``path`` as a URI: object-store URIs as given, local paths as absolute ``file://`` URIs."""
    if "://" in path:
        return path.rstrip("/")
    return "file://" + os.path.abspath(os.path.expanduser(path))


def storage_path(path: object, conn_id: str | None = None) -> ObjectStoragePath:
    """The export's base folder as an ``ObjectStoragePath``."""
    from airflow.sdk import ObjectStoragePath

    if not isinstance(path, str) or not path.strip():
        raise CoinStatsValidationError(
            "path", f"must be a folder path or URI such as s3://bucket/coinstats, got {path!r}"
        )
    return ObjectStoragePath(base_uri(path.strip()), conn_id=conn_id)


def ensure_writable(base: ObjectStoragePath) -> None:
    """Create ``base`` and write and delete a probe file there, before any paid request."""
    probe = base / f".coinstats-write-check-{uuid.uuid4().hex}"
    try:
        base.mkdir(parents=True, exist_ok=True)
        with probe.open("w", encoding="utf-8") as handle:  # type: ignore[no-untyped-call]
            handle.write("ok\n")
        probe.unlink()
    except Exception as error:  # each filesystem raises its own kinds
        raise CoinStatsDestinationError("path", f"cannot write to {base}: {type(error).__name__}: {error}") from None


def partition_name(logical_date: Any, run_id: str | None) -> str:
    """The file stem of one run: its logical date in UTC, or its run id if it has none."""
    if logical_date is not None:
        return str(logical_date.strftime("%Y%m%dT%H%M%S"))
    if not run_id:
        raise CoinStatsValidationError("run_id", "a run without a logical date needs a run id to name its files")
    return quote(run_id, safe="")


def dataset_file(
    base: ObjectStoragePath, dataset: str, portfolio_id: str, partition: str, file_format: str
) -> ObjectStoragePath:
    """Where one run's rows of one dataset and portfolio go (ids are percent-encoded: no path tricks)."""
    folder = base / get_schema(dataset).name / f"portfolio_id={quote(portfolio_id, safe='')}"
    return folder / f"{partition}.{validate_format(file_format)}"


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _write(handle: TextIO, dataset: str, rows: Iterable[Mapping[str, Any]], file_format: str) -> int:
    count = 0
    if file_format == "jsonl":
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        lines: list[str] = []
        for row in rows:
            lines.append(dumps(to_jsonable(row)))
            if len(lines) >= _LINES_PER_WRITE:
                handle.write("\n".join(lines) + "\n")
                count += len(lines)
                lines = []
        if lines:
            handle.write("\n".join(lines) + "\n")
            count += len(lines)
        return count
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(get_schema(dataset).column_names())
    for row in rows:
        writer.writerow([_csv_value(v) for v in to_jsonable(row).values()])
        count += 1
    return count


def write_rows(target: ObjectStoragePath, dataset: str, rows: Iterable[Mapping[str, Any]], file_format: str) -> int:
    """Stream ``rows`` into ``target`` (replacing it atomically where the store allows); return the row count."""
    validate_format(file_format)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.{uuid.uuid4().hex}.partial"
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:  # type: ignore[no-untyped-call]
            count = _write(handle, dataset, rows, file_format)
        partial.rename(target)
    except BaseException:
        if partial.exists():
            partial.unlink()
        raise
    return count
