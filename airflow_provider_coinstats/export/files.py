"""Write flat dataset rows as JSON Lines, CSV or Parquet files through Airflow's ``ObjectStoragePath``.

Any storage Airflow's object storage reaches works: a local path in tests, ``s3://`` or
``gs://`` with the matching provider and a connection for users. Files are laid out Hive-style,
one file per dataset, portfolio and run::

    <base>/<dataset>/portfolio_id=<id>/<partition>.<jsonl|csv|parquet>

``partition`` is the run's logical date (``20260101T000000``), or its run id when the run has
no logical date. A rerun therefore overwrites its own file instead of adding a second one.

``portfolio_id`` is the partition column (:data:`PARTITION_COLUMN`): its value is in the folder
name, percent-encoded. Parquet files leave it out, as lake readers expect of a partition column
(they restore it from the folder; pyarrow fails to merge, and Spark refuses, a column that is in
both); ``pyarrow.dataset.dataset(<base>/<dataset>, format="parquet", partitioning="hive")``
gives it back. JSON Lines and CSV files keep it in every row: they are read row by row, usually
one file at a time, and a row without its portfolio would be ambiguous once loaded elsewhere.

With ``max_rows_per_file`` a dataset is split into numbered parts of at most that many rows,
numbered from 1 with five digits (more past 99999), so they sort in row order::

    <base>/<dataset>/portfolio_id=<id>/<partition>-00001.parquet, <partition>-00002.parquet, ...

Every part is a complete file on its own (each CSV part has the header row, each Parquet part
its schema and footer). A dataset without rows still gets part 1 (an empty JSONL file, a CSV
header, a Parquet file with the schema), so every run leaves a file behind. A rerun replaces the run's files whatever
the split: the new files are published, then files of the same partition and format that the
rerun did not write (higher part numbers, or the unsplit name) are deleted.

Parts are written one after the other and published together: no part of a run is visible
before every part is written, and a failure before that publishes none and leaves the previous
files intact. Publishing is then one commit (object stores) or rename (local) per part, back to
back; if one of those fails, the task fails and its rerun replaces the mix. For each part:

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

Parquet files are typed by the column catalogue and written in row groups as rows stream (see
:mod:`.parquet`; it needs the ``[parquet]`` extra, checked by :func:`validate_format`). JSONL and
CSV values are written as :func:`~airflow_provider_coinstats.export.render.to_jsonable` renders
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
    written = write_rows(dataset_file(base, "coins", "p1", "20260101T000000", "parquet"), "coins", rows, "parquet",
                         max_rows_per_file=100_000)
    written.files  # ['s3://warehouse/coinstats/coins/portfolio_id=p1/20260101T000000-00001.parquet', ...]
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, BinaryIO, Final, TextIO
from urllib.parse import quote, unquote

from airflow_provider_coinstats.exceptions import CoinStatsDestinationError, CoinStatsValidationError
from airflow_provider_coinstats.export.columns import get_schema
from airflow_provider_coinstats.export.parquet import require_pyarrow, write_parquet
from airflow_provider_coinstats.export.render import jsonl_encoder, to_jsonable

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

FILE_FORMATS: Final = ("jsonl", "csv", "parquet")
#: The column a dataset's files are partitioned by: ``<dataset>/portfolio_id=<id>/``.
PARTITION_COLUMN: Final = "portfolio_id"
#: JSON lines joined per write call: object-store file objects pay Python overhead per call.
_LINES_PER_WRITE: Final = 500
#: Leading characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection").
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def validate_format(value: object) -> str:
    """``value`` if it is a file format this module writes; ``parquet`` also needs pyarrow installed."""
    if value not in FILE_FORMATS:
        raise CoinStatsValidationError("file_format", f"must be one of {', '.join(FILE_FORMATS)}; got {value!r}")
    if value == "parquet":
        require_pyarrow()
    return str(value)


def validate_max_rows_per_file(value: object) -> int | None:
    """``None`` (one file per dataset and run) or a positive number of rows per part."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CoinStatsValidationError("max_rows_per_file", f"must be a positive whole number or None; got {value!r}")
    return value


def part_name(partition: str, file_format: str, number: int | None) -> str:
    """The file name of a run's rows: ``<partition>.<format>``, or part ``number`` of a split run.

    Example::

        part_name("20260101T000000", "parquet", None)  # '20260101T000000.parquet'
        part_name("20260101T000000", "parquet", 2)     # '20260101T000000-00002.parquet'
    """
    return f"{partition}.{file_format}" if number is None else f"{partition}-{number:05d}.{file_format}"


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
    folder = base / get_schema(dataset).name / f"{PARTITION_COLUMN}={quote(portfolio_id, safe='')}"
    return folder / part_name(partition, validate_format(file_format), None)


def folder_partition(target: ObjectStoragePath) -> dict[str, str]:
    """The partition column and value that ``target``'s folder holds, or nothing for a folder of another name.

    Example::

        folder_partition(dataset_file(base, "coins", "a/b", "20260101T000000", "parquet"))  # {'portfolio_id': 'a/b'}
    """
    name, equals, value = target.parent.name.partition("=")
    return {name: unquote(value)} if equals and name == PARTITION_COLUMN else {}


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


def _write_text(handle: TextIO, dataset: str, rows: Iterable[Mapping[str, Any]], file_format: str) -> int:
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


def _write(
    handle: BinaryIO, dataset: str, rows: Iterable[Mapping[str, Any]], file_format: str, partition: Mapping[str, str]
) -> int:
    """Write one file's rows to the binary ``handle`` (left open); return the row count.

    Only Parquet leaves the ``partition`` columns out (see the module docstring).
    """
    if file_format == "parquet":
        return write_parquet(handle, dataset, rows, partition=partition)
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    try:
        count = _write_text(text, dataset, rows, file_format)
        text.flush()
    finally:
        text.detach()  # the caller closes, commits or discards the file under it
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


@dataclass
class _Staged:
    """One file written completely but not yet visible: ``publish`` makes it so, ``discard`` throws it away."""

    target: ObjectStoragePath
    rows: int
    size: int
    publish: Callable[[], object]
    discard: Callable[[], object]


_Writer = Callable[[BinaryIO], int]


def _stage_object(target: ObjectStoragePath, write: _Writer) -> _Staged:
    # autocommit=False: closing uploads the last part, but only the filesystem's commit() makes
    # the object exist (s3fs completes its multipart upload then) and discard() aborts it.
    upload = target.open("wb", autocommit=False)  # type: ignore[no-untyped-call]
    try:
        count = write(upload)
        size = upload.tell()
        upload.close()  # uploads the last part; nothing is visible before commit
    except BaseException:
        # Close before discard, as fsspec transactions do: closing a discarded s3fs file would
        # start a new multipart upload that nobody aborts.
        _clean_up(target, upload.close, upload.discard)
        raise
    return _Staged(target, count, size, upload.commit, upload.discard)


def _stage_local(target: ObjectStoragePath, write: _Writer) -> _Staged:
    target.parent.mkdir(parents=True, exist_ok=True)
    hidden = target.parent / f".{target.name}.{uuid.uuid4().hex}.partial"

    def remove_hidden() -> None:
        if hidden.exists():
            hidden.unlink()

    try:
        with hidden.open("wb") as handle:  # type: ignore[no-untyped-call]
            count = write(handle)
            size = handle.tell()
    except BaseException:
        _clean_up(target, remove_hidden)
        raise
    # Same folder, so os.rename: atomic. Once renamed there is no hidden file left to remove.
    return _Staged(target, count, size, lambda: hidden.rename(target), remove_hidden)


def _parts(rows: Iterable[Mapping[str, Any]], limit: int | None) -> Iterator[Iterator[Mapping[str, Any]]]:
    """``rows`` in consecutive runs of at most ``limit`` (all of them if ``None``); at least one, maybe empty.

    Each run must be consumed before the next is taken: they share one iterator.
    """
    rows = iter(rows)
    if limit is None:
        yield rows
        return
    first = next(rows, None)
    yield iter(()) if first is None else chain([first], islice(rows, limit - 1))
    while (first := next(rows, None)) is not None:
        yield chain([first], islice(rows, limit - 1))


def _stale_files(target: ObjectStoragePath, file_format: str, keep: set[str]) -> list[ObjectStoragePath]:
    """Files of ``target``'s partition and format, split or not, that are not in ``keep`` (an earlier run's)."""
    stem = target.name[: -len(file_format) - 1]
    own = re.compile(rf"{re.escape(stem)}(-\d{{5,}})?\.{re.escape(file_format)}")
    folder = target.parent
    folder.fs.invalidate_cache(folder.path)  # a cached listing would miss files of an earlier run
    try:
        names = [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in folder.fs.ls(folder.path, detail=False)]
    except FileNotFoundError:
        return []
    return [folder / name for name in sorted(names) if own.fullmatch(name) and name not in keep]


@dataclass
class WrittenFiles:
    """What :func:`write_rows` wrote: rows, the published files in part order, and their total size.

    Example::

        WrittenFiles(rows=250, files=["file:///data/coins/portfolio_id=p1/20260101T000000.csv"], bytes=81234)
    """

    rows: int
    files: list[str] = field(default_factory=list)
    bytes: int = 0


def write_rows(
    target: ObjectStoragePath,
    dataset: str,
    rows: Iterable[Mapping[str, Any]],
    file_format: str,
    *,
    max_rows_per_file: int | None = None,
) -> WrittenFiles:
    """Stream ``rows`` into ``target`` (or its numbered parts), replacing the run's files (see the module docstring).

    ``target`` is :func:`dataset_file`'s unsplit name; with ``max_rows_per_file`` the parts are
    named after it by :func:`part_name`.
    """
    validate_format(file_format)
    limit = validate_max_rows_per_file(max_rows_per_file)
    stage = _stage_local if is_local(target) else _stage_object
    stem = target.name[: -len(file_format) - 1]
    write = partial(_write, dataset=dataset, file_format=file_format, partition=folder_partition(target))
    staged: list[_Staged] = []
    published = 0
    try:
        for number, part_rows in enumerate(_parts(rows, limit), start=1):
            path = target if limit is None else target.parent / part_name(stem, file_format, number)
            staged.append(stage(path, partial(write, rows=part_rows)))
        stale = _stale_files(target, file_format, {part.target.name for part in staged})
        for part in staged:
            part.publish()
            published += 1
    except BaseException:
        _clean_up(target, *(part.discard for part in staged[published:]))
        raise
    for path in stale:
        path.unlink()
    return WrittenFiles(
        rows=sum(part.rows for part in staged),
        files=[str(part.target) for part in staged],
        bytes=sum(part.size for part in staged),
    )
