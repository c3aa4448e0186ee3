"""Parquet files of flat dataset rows, typed by the column catalogue and written in row groups as rows stream.

Needs the optional extra ``pip install 'airflow-provider-coinstats[parquet]'`` (pyarrow).
:func:`require_pyarrow` checks that it is installed without importing it, so an operator asking
for Parquet fails when its DAG file is parsed, and DAG parsing never pays pyarrow's import
(hundreds of milliseconds). pyarrow is imported only inside :func:`write_parquet`.

Arrow types come from :mod:`.columns`:

=========  ==========================================================================
string     ``string``
decimal    ``decimal128(precision, scale)`` of the column (38, 18; prices 38, 24)
integer    ``int64``
boolean    ``bool``
timestamp  ``timestamp("us", tz="UTC")``
=========  ==========================================================================

Partition columns stay out of the file: :func:`write_parquet` leaves out each column named in its
``partition`` argument (the export's ``portfolio_id``), whose one value the file's Hive folder
(``portfolio_id=<id>/``) holds. That is the lake convention Hive-aware readers expect: they
restore the column from the folder name, and pyarrow fails to merge (Spark refuses) a column that
is in the files and in the path. Every row must carry the partition's value; a row
that does not fails the write (it would otherwise be relabelled silently).

Key and not-null columns are non-nullable fields; each field carries its column description as
``description`` metadata. Decimals are exact up to the column's scale. A value with more
fractional digits (an exact product of two JSON numbers can have up to 36) is rounded half-even
to the scale, as a SQL ``NUMERIC(p, s)`` column would store it; a value with more integer digits
than ``precision - scale`` fails the write with a
:class:`~airflow_provider_coinstats.exceptions.CoinStatsValidationError` naming the column,
rather than being altered.

Memory stays flat whatever the row count: rows are converted to Arrow :data:`ROWS_PER_BATCH` at a
time and written as one row group per :data:`ROWS_PER_ROW_GROUP` rows, so at most one row group
is held (in Arrow's compact buffers) plus one batch of Python rows. The writer streams into any
writable binary file object, e.g. an fsspec/s3fs file, which uploads as it fills.

Example::

    require_pyarrow()  # CoinStatsValidationError with the install command if pyarrow is missing
    with open("coins/portfolio_id=p1/20260101T000000.parquet", "wb") as handle:
        write_parquet(handle, "coins", rows, partition={"portfolio_id": "p1"})  # every column but portfolio_id
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.columns import Column, get_schema
from airflow_provider_coinstats.export.values import EXACT

if TYPE_CHECKING:
    import pyarrow as pa

#: The command that installs what Parquet needs; error messages show it.
INSTALL_COMMAND: Final = "pip install 'airflow-provider-coinstats[parquet]'"
#: Rows converted from Python to Arrow at once: bounds the Python objects held for the writer.
ROWS_PER_BATCH: Final = 1_000
#: Rows per Parquet row group: big enough for readers to skip and compress well, small enough
#: that one group (the most the writer holds) stays a few megabytes.
ROWS_PER_ROW_GROUP: Final = 10_000


def require_pyarrow() -> None:
    """Fail unless pyarrow can be imported, without importing it (DAG parsing stays cheap).

    Example::

        require_pyarrow()
        # CoinStatsValidationError: file_format: parquet needs pyarrow, which is not installed;
        # install it with: pip install 'airflow-provider-coinstats[parquet]'
    """
    try:
        found = importlib.util.find_spec("pyarrow") is not None
    except (ImportError, ValueError):  # a broken or blocked installation
        found = False
    if not found:
        raise CoinStatsValidationError(
            "file_format", f"parquet needs pyarrow, which is not installed; install it with: {INSTALL_COMMAND}"
        )


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type of a catalogue column (see the module docstring)."""
    import pyarrow as pa

    if column.type == "decimal":
        assert column.precision is not None and column.scale is not None  # filled by Column
        return pa.decimal128(column.precision, column.scale)
    if column.type == "timestamp":
        return pa.timestamp("us", tz="UTC")
    return {"string": pa.string(), "integer": pa.int64(), "boolean": pa.bool_()}[column.type]


def arrow_schema(dataset: str) -> pa.Schema:
    """The Arrow schema of ``dataset``'s Parquet files: catalogue order, types, nullability, descriptions.

    Example::

        arrow_schema("chart").field("timestamp").type  # TimestampType(timestamp[us, tz=UTC])
    """
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(c.name, arrow_type(c), nullable=c.nullable, metadata={"description": c.description})
            for c in get_schema(dataset).columns
        ]
    )


def file_schema(dataset: str, partition: Iterable[str] = ()) -> pa.Schema:
    """:func:`arrow_schema` without the ``partition`` columns: the schema of a file whose folder holds them.

    Example::

        file_schema("coins", ["portfolio_id"]).names[:2]  # ['extracted_at', 'coin_id']
    """
    schema = arrow_schema(dataset)
    for name in partition:
        index = schema.get_field_index(name)
        if index < 0:  # remove(-1) would drop the last column instead
            raise ValueError(f"dataset {dataset} has no column {name!r} to partition by")
        schema = schema.remove(index)
    return schema


def _check_partition(dataset: str, batch: list[Mapping[str, Any]], partition: Mapping[str, str]) -> None:
    """Refuse a row whose partition column differs from the folder's value: leaving it out would relabel the row."""
    for name, value in partition.items():
        for row in batch:
            if row[name] != value:
                raise CoinStatsValidationError(
                    f"{dataset}.{name}", f"a row has {row[name]!r}, but the file's partition folder holds {value!r}"
                )


def _fit_decimals(dataset: str, column: Column, values: list[Any], kind: pa.DataType) -> pa.Array:
    """The column's decimals rounded half-even to its scale; a value too large for its precision is refused."""
    import pyarrow as pa

    assert column.precision is not None and column.scale is not None
    step = Decimal(1).scaleb(-column.scale)
    limit = Decimal(10) ** (column.precision - column.scale)
    fitted: list[Decimal | None] = []
    for value in values:
        if value is None:
            fitted.append(None)
            continue
        rounded = value.quantize(step, rounding=ROUND_HALF_EVEN, context=EXACT)
        # After rounding (99.996 at scale 2 is 100.00); copy_abs is exact, abs() would round to 28 digits.
        if rounded.copy_abs() >= limit:
            raise CoinStatsValidationError(
                f"{dataset}.{column.name}",
                f"{value} has more than {column.precision - column.scale} integer digits, "
                f"the most Parquet's decimal128({column.precision}, {column.scale}) of this column holds",
            )
        fitted.append(rounded)
    return pa.array(fitted, type=kind)


def _arrow_column(dataset: str, column: Column, values: list[Any], kind: pa.DataType) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values, type=kind)
    except pa.ArrowInvalid:
        # Only a decimal beyond the column's scale or precision gets here: the common case pays
        # nothing for the check.
        if column.type != "decimal":
            raise
        return _fit_decimals(dataset, column, values, kind)


def write_parquet(
    handle: BinaryIO,
    dataset: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    partition: Mapping[str, str] | None = None,
) -> int:
    """Write ``rows`` of ``dataset`` to ``handle`` as one Parquet file; return the row count.

    ``partition`` maps the columns the file's folder holds to their value (``{"portfolio_id": "p1"}``
    for ``.../portfolio_id=p1/``): they are left out of the file, and every row must have that value.
    ``handle`` stays open (the caller publishes or discards it). A file without rows still has
    the schema, so readers see the columns.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    partition = dict(partition or {})
    schema = file_schema(dataset, partition)
    columns = [c for c in get_schema(dataset).columns if c.name not in partition]
    kinds = [field.type for field in schema]
    names = [c.name for c in columns]
    count = 0
    group: list[pa.RecordBatch] = []
    group_rows = 0
    rows = iter(rows)
    with pq.ParquetWriter(handle, schema) as writer:
        while batch := list(islice(rows, ROWS_PER_BATCH)):
            _check_partition(dataset, batch, partition)
            arrays = [
                _arrow_column(dataset, column, [row[name] for row in batch], kind)
                for column, name, kind in zip(columns, names, kinds, strict=True)
            ]
            group.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
            group_rows += len(batch)
            count += len(batch)
            del batch, arrays  # the Python rows go now, not when the next batch replaces them
            if group_rows >= ROWS_PER_ROW_GROUP:
                writer.write_table(pa.Table.from_batches(group, schema), row_group_size=group_rows)
                group, group_rows = [], 0
        if group:
            writer.write_table(pa.Table.from_batches(group, schema), row_group_size=group_rows)
    return count
