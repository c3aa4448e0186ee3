"""Write flat dataset rows as JSON Lines or CSV files through Airflow's ``ObjectStoragePath``.

Any storage Airflow's object storage reaches works: a local path in tests, ``s3://`` or
``gs://`` with the matching provider and a connection for users. Files are laid out Hive-style,
one file per dataset, portfolio and run::

    <base>/<dataset>/portfolio_id=<id>/<partition>.<jsonl|csv>

``partition`` is the run's logical date (``20260101T000000``), or its run id when the run has
no logical date. A rerun therefore overwrites its own file instead of adding a second one.

A file appears whole or not at all, and a failed run leaves the previous file intact:

* Object stores (``s3://``, ``gs://``, ...): the target is opened with fsspec's
  ``autocommit=False`` and the filesystem's own ``commit()`` publishes it once every row is
  written (s3fs completes its multipart upload only then); on failure ``discard()`` throws the
  upload away (s3fs aborts it). No temporary object is ever visible and nothing is copied or
  deleted. No bucket is ever created: object stores have no folders to make, and a missing
  bucket is a :class:`~airflow_provider_coinstats.exceptions.CoinStatsDestinationError` that
  names it, raised by :func:`ensure_writable` before any paid request.
* Local paths: folders are created below the filesystem root as needed; rows go to a hidden
  sibling (``.<name>.<uuid>.partial``) renamed over the target, an atomic ``rename(2)`` in the
  same folder. (fsspec's local ``autocommit=False`` writes to the system temp folder and
  moves the file with ``shutil.move``: a copy, not atomic, when that is another filesystem.)
* If cleaning up after a failure fails too (``discard``/``unlink`` raising), that is logged as
  a warning and the original error propagates.

Values are written as :func:`~airflow_provider_coinstats.export.render.to_jsonable` renders
them: decimals as plain digit strings (exact; no float rounding), timestamps as UTC ISO-8601
with ``Z``. CSV follows RFC 4180: a header row, ``\r\n`` line ends, and fields holding a comma,
quote, ``\r`` or ``\n`` quoted; ``None`` is an empty field and booleans are ``true``/``false``.
JSON Lines keep ``null`` and JSON booleans.

CSV injection: a spreadsheet opening the CSV would run a text cell such as ``=HYPERLINK(...)``
as a formula. Text cells (schema type ``string``: names, symbols, notes, addresses, some of
them chosen by whoever named a portfolio) that start with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return get a leading ``'`` (OWASP's recommendation), so ``=1+2`` is written ``'=1+2``.
Typed columns are never changed: ``decimal`` and ``integer`` cells are numbers, so ``-12.5``
stays ``-12.5`` exactly. JSON Lines are not a spreadsheet format and are written unchanged.

Example::

    base = storage_path("s3://warehouse/coinstats", conn_id="aws_default")
    ensure_writable(base)
    write_rows(dataset_file(base, "coins", "p1", "20260101T000000", "jsonl"), "coins", rows, "jsonl")
"""

from __future__ import annotations

import csv
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TextIO
from urllib.parse import quote

from airflow_provider_coinstats.exceptions import CoinStatsDestinationError, CoinStatsValidationError
from airflow_provider_coinstats.export.columns import get_schema
from airflow_provider_coinstats.export.render import jsonl_encoder, to_jsonable

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

FILE_FORMATS: Final = ("jsonl", "csv")
#: JSON lines joined per write call: object-store file objects pay Python overhead per call.
_LINES_PER_WRITE: Final = 500
#: Leading characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection").
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


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


def is_local(path: ObjectStoragePath) -> bool:
    """Whether ``path`` is on the local filesystem (real folders, atomic rename) rather than an object store."""
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(path.fs, LocalFileSystem)


def ensure_writable(base: ObjectStoragePath) -> None:
    """Check that ``base`` can be written, before any paid request: write and delete a probe file.

    Local folders are created as needed. On object stores nothing is created: ``mkdir`` there
    would create a missing bucket (s3fs does), so a missing bucket is refused by name instead.
    """
    probe = base / f".coinstats-write-check-{uuid.uuid4().hex}"
    local = is_local(base)
    try:
        if local:
            base.mkdir(parents=True, exist_ok=True)
        with probe.open("w", encoding="utf-8") as handle:  # type: ignore[no-untyped-call]
            handle.write("ok\n")
        probe.unlink()
    except Exception as error:  # each filesystem raises its own kinds
        if isinstance(error, FileNotFoundError) and not local:  # s3fs/gcsfs: NoSuchBucket, 404
            # ``base.bucket`` is "conn_id@bucket" on Airflow 3.0; the filesystem path starts with the bucket.
            bucket = base.path.split("/", 1)[0]
            raise CoinStatsDestinationError(
                "path", f"bucket {bucket!r} of {base} does not exist; the export never creates buckets"
            ) from None
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


def _csv_text(value: Any) -> Any:
    """A ``string`` column's cell, with a leading ``'`` if a spreadsheet would take it for a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return _csv_value(value)


def _write(handle: TextIO, dataset: str, rows: Iterable[Mapping[str, Any]], file_format: str) -> int:
    count = 0
    if file_format == "jsonl":
        line = jsonl_encoder()
        lines: list[str] = []
        for row in rows:
            lines.append(line(row))
            if len(lines) >= _LINES_PER_WRITE:
                handle.write("\n".join(lines) + "\n")
                count += len(lines)
                lines = []
        if lines:
            handle.write("\n".join(lines) + "\n")
            count += len(lines)
        return count
    schema = get_schema(dataset)
    # Only text columns can hold a formula; typed ones (decimal, integer) keep their exact value.
    cell = [_csv_text if column.type == "string" else _csv_value for column in schema.columns]
    # RFC 4180 line ends: the csv module quotes a field only for the characters of its line
    # terminator, so with "\n" alone a carriage return inside a name went out unquoted and split
    # the row for every reader (and could start a forged row with a formula).
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(schema.column_names())
    for row in rows:
        writer.writerow([render(v) for render, v in zip(cell, to_jsonable(row).values(), strict=True)])
        count += 1
    return count


def _clean_up(target: ObjectStoragePath, *steps: Callable[[], object]) -> None:
    """Run every cleanup step after a failed write; a failing step is logged, never raised.

    The caller re-raises the write's own error: a cleanup error must not replace it.
    """
    for step in steps:
        try:
            step()
        except Exception:
            log.warning("Cleanup after the failed write of %s failed too", target, exc_info=True)


def _write_object(target: ObjectStoragePath, dataset: str, rows: Iterable[Mapping[str, Any]], file_format: str) -> int:
    handle = target.open("w", encoding="utf-8", newline="", autocommit=False)  # type: ignore[no-untyped-call]
    # The fsspec file under the text wrapper: commit/discard are its methods.
    upload = handle.buffer
    try:
        count = _write(handle, dataset, rows, file_format)
        handle.close()  # uploads the last part; nothing is visible before commit
        upload.commit()
    except BaseException:
        # Close before discard, as fsspec transactions do: closing a discarded s3fs file would
        # start a new multipart upload that nobody aborts.
        _clean_up(target, handle.close, upload.discard)
        raise
    return count


def _write_local(target: ObjectStoragePath, dataset: str, rows: Iterable[Mapping[str, Any]], file_format: str) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.{uuid.uuid4().hex}.partial"

    def remove_partial() -> None:
        if partial.exists():
            partial.unlink()

    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:  # type: ignore[no-untyped-call]
            count = _write(handle, dataset, rows, file_format)
        partial.rename(target)  # same folder, so os.rename: atomic
    except BaseException:
        _clean_up(target, remove_partial)
        raise
    return count


def write_rows(target: ObjectStoragePath, dataset: str, rows: Iterable[Mapping[str, Any]], file_format: str) -> int:
    """Stream ``rows`` into ``target``, replacing it atomically (see the module docstring); return the row count."""
    validate_format(file_format)
    if is_local(target):
        return _write_local(target, dataset, rows, file_format)
    return _write_object(target, dataset, rows, file_format)
