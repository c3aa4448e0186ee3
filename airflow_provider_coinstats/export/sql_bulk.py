"""Write a batch of rows the fastest way the database offers, inside the caller's transaction.

:class:`~airflow_provider_coinstats.export.sql.SqlTable` decides which rows a batch replaces
(the DELETEs, the "last copy of a key wins" rule) and adapts every value; a writer from
:func:`bulk_writer` (DELETE + INSERT loads) or :func:`bulk_upserter` (upserts) only writes the
batch's row tuples through the load's own cursor, so a failed load still rolls back as one
transaction. Identifiers arrive already quoted by the dialect.

===================  =============================================================================
dialect              how a batch is written
===================  =============================================================================
``postgresql``       ``COPY table (columns) FROM STDIN``: psycopg 3's ``copy.write_row`` (its own
                     adapters: exact ``numeric``, ``timestamptz``, NULL), or psycopg2's
                     ``copy_expert`` with COPY's text format escaped here. Upserts COPY into a
                     temporary stage (``ON COMMIT DROP``), then one ``INSERT ... SELECT ... ON
                     CONFLICT DO UPDATE`` per batch
``mysql``            the driver's ``executemany``: mysqlclient (and mysql-connector-python) already
                     send one multi-row ``INSERT``/``REPLACE`` per 64 KiB. :class:`MultiRowInsert`
                     (chunks under a quarter of ``max_allowed_packet``) measured no faster, so it
                     is not registered
anything else        the driver's ``executemany`` (SQLite's is already an in-process loop)
===================  =============================================================================

Measured with ``python -m benchmarks load`` (100,000 transactions, 1,000-row batches; figures in
that benchmark's docstring): COPY + ON CONFLICT beat psycopg 3's pipelined ``executemany`` by
1.3x-1.7x (31,400 rows/s) and psycopg2's row-by-row ``executemany`` by 6.7x; DELETE by key + COPY
collapsed on a first load into a new table (288 rows/s: each DELETE seq-scans the growing table).

Example::

    write = bulk_writer("postgresql", '"order"', ['"portfolio_id"', '"rank"'], "%s")
    write(cursor, [("p1", 1), ("p1", 2)])  # one COPY, in the cursor's transaction
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Protocol

from airflow_provider_coinstats.export.values import plain_digits


class RowWriter(Protocol):
    """Inserts a batch of row tuples (values in column order) through ``cursor``."""

    def __call__(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None: ...


def insert_statement(table: str, columns: Sequence[str], placeholder: str, rows: int = 1, verb: str = "INSERT") -> str:
    """``INSERT INTO table (columns) VALUES (...)``, with ``rows`` groups of placeholders.

    Example::

        insert_statement("t", ["a", "b"], "?", rows=2)  # 'INSERT INTO t (a, b) VALUES (?, ?), (?, ?)'
    """
    group = f"({', '.join([placeholder] * len(columns))})"
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES {', '.join([group] * rows)}"


class ExecuteMany:
    """The driver's ``executemany`` of the one-row INSERT: the baseline every bulk path must beat.

    Example::

        ExecuteMany("INSERT INTO t (a) VALUES (?)")(cursor, [(1,), (2,)])
    """

    def __init__(self, insert: str) -> None:
        self.insert = insert

    def __call__(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor.executemany(self.insert, rows)


#: COPY text format: backslash, tab, newline and carriage return are escaped; ``\N`` is NULL.
_COPY_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format.

    Decimals keep every digit (no exponent, never a float); aware datetimes keep their offset, so
    ``timestamptz`` stores the same instant whatever the session's time zone.

    Example::

        copy_text(None)  # '\\N'
        copy_text("a\\tb")  # 'a\\\\tb'
    """
    if value is None:
        return "\\N"
    if type(value) is str:
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, Decimal):
        return plain_digits(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).translate(_COPY_ESCAPES)


def copy_rows(cursor: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run ``COPY ... FROM STDIN`` (``statement``) with ``rows`` through psycopg 3 or psycopg2."""
    copy = getattr(cursor, "copy", None)
    if copy is not None:  # psycopg 3: its adapters write each value, in C with psycopg-binary
        with copy(statement) as stream:
            for row in rows:
                stream.write_row(row)
        return
    text = "".join("\t".join(map(copy_text, row)) + "\n" for row in rows)
    cursor.copy_expert(statement, io.StringIO(text))


class PostgresCopy:
    """``COPY table (columns) FROM STDIN`` through the load's cursor (psycopg 3 or psycopg2).

    Example::

        PostgresCopy('"order"', ['"portfolio_id"', '"rank"'])(cursor, [("p1", 1)])
    """

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"

    def __call__(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            copy_rows(cursor, self.statement, rows)


#: The staging table of :class:`PostgresCopyUpsert`: temporary, so private to the load's session.
STAGE: Final = "coinstats_bulk_stage"


class PostgresCopyUpsert:
    """PostgreSQL upsert: COPY the batch into a temporary stage, then one ``INSERT ... SELECT ... ON CONFLICT``.

    The stage is created inside the load's transaction with ``ON COMMIT DROP`` (a rollback drops
    it too) and emptied after each batch. A batch must not repeat a key (ON CONFLICT cannot touch
    a row twice in one statement); :class:`~.sql.SqlTable` keeps the last copy of each key.

    Example::

        PostgresCopyUpsert('"order"', ['"portfolio_id"', '"rank"'], ['"portfolio_id"'])(cursor, [("p1", 1)])
    """

    def __init__(self, table: str, columns: Sequence[str], key: Sequence[str]) -> None:
        names = ", ".join(columns)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        # Only the loaded columns and their types: no NOT NULL of a column the load does not fill.
        self.create = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA"
        )
        self.copy = f"COPY {STAGE} ({names}) FROM STDIN"
        self.merge = (
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {STAGE} ON CONFLICT ({', '.join(key)}) {action}"
        )
        self.empty = f"TRUNCATE {STAGE}"

    def __call__(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        cursor.execute(self.create)
        copy_rows(cursor, self.copy, rows)
        cursor.execute(self.merge)
        cursor.execute(self.empty)


#: Never more rows per statement than this: beyond it larger statements gain nothing measurable.
MAX_ROWS_PER_INSERT: Final = 5000
#: What a non-string value may take once the driver has written it as SQL text.
_LITERAL_BYTES: Final = 40


def _max_allowed_packet(cursor: Any) -> int:
    cursor.execute("SELECT @@max_allowed_packet")
    found = cursor.fetchone()
    return int(found[0]) if found else 1 << 20


class MultiRowInsert:
    """MySQL/MariaDB: one ``INSERT ... VALUES (...), (...)`` per chunk of rows.

    A statement larger than the server's ``max_allowed_packet`` is refused, so chunks are cut by
    size: a string counts twice its length plus quotes (every character might need escaping;
    UTF-8 may take up to 4 bytes per character, hence the quarter of the packet), any other
    value a fixed allowance.

    Example::

        MultiRowInsert("`order`", ["`portfolio_id`", "`rank`"], "%s")(cursor, [("p1", 1), ("p1", 2)])
    """

    def __init__(self, table: str, columns: Sequence[str], placeholder: str, verb: str = "INSERT") -> None:
        self.table, self.columns, self.placeholder, self.verb = table, list(columns), placeholder, verb
        self._budget: int | None = None
        self._statements: dict[int, str] = {}

    def _statement(self, rows: int) -> str:
        statement = self._statements.get(rows)
        if statement is None:
            statement = self._statements[rows] = insert_statement(
                self.table, self.columns, self.placeholder, rows, self.verb
            )
        return statement

    def __call__(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._budget is None:
            self._budget = max(1 << 16, _max_allowed_packet(cursor) // 4)
        budget, width = self._budget, len(self.columns)
        chunk: list[Any] = []
        count = size = 0
        for row in rows:
            row_size = sum(2 * len(v) + 3 if type(v) is str else _LITERAL_BYTES for v in row) + 2 * width
            if count and (size + row_size > budget or count >= MAX_ROWS_PER_INSERT):
                cursor.execute(self._statement(count), chunk)
                chunk, count, size = [], 0, 0
            chunk.extend(row)
            count += 1
            size += row_size
        cursor.execute(self._statement(count), chunk)


#: Makes a DELETE + INSERT load's writer from (quoted table, quoted columns, placeholder).
InsertFactory = Callable[[str, Sequence[str], str], RowWriter]
#: Makes an upsert's writer from (quoted table, quoted columns, quoted key, placeholder).
UpsertFactory = Callable[[str, Sequence[str], Sequence[str], str], RowWriter]

#: dialect -> bulk writer of a DELETE + INSERT load, where it measured faster than executemany.
BULK_INSERT: Final[dict[str, InsertFactory]] = {
    "postgresql": lambda table, columns, _mark: PostgresCopy(table, columns),
}
#: dialect -> bulk writer that upserts on the key, where it measured faster than the native
#: upsert statement through executemany.
BULK_UPSERT: Final[dict[str, UpsertFactory]] = {
    "postgresql": lambda table, columns, key, _mark: PostgresCopyUpsert(table, columns, key),
}


def bulk_upserter(
    dialect: str, table: str, columns: Sequence[str], key: Sequence[str], placeholder: str
) -> RowWriter | None:
    """A bulk writer that replaces rows with the same ``key`` itself, or ``None`` where none measured faster.

    Names arrive quoted; a batch must not repeat a key.

    Example::

        columns, key = ['"portfolio_id"', '"row_key"', '"note"'], ['"portfolio_id"', '"row_key"']
        bulk_upserter("postgresql", '"t"', columns, key, "%s")  # PostgresCopyUpsert
    """
    make = BULK_UPSERT.get(dialect)
    return None if make is None else make(table, columns, key, placeholder)


def bulk_writer(dialect: str, table: str, columns: Sequence[str], placeholder: str, *, bulk: bool = True) -> RowWriter:
    """The writer for ``dialect``: its bulk path, or ``executemany`` (other dialects, or ``bulk=False``).

    ``table`` and ``columns`` must already be quoted for the dialect; rows are tuples of adapted
    values in ``columns`` order.

    Example::

        bulk_writer("postgresql", '"order"', ['"portfolio_id"'], "%s")  # PostgresCopy
        bulk_writer("sqlite", '"order"', ['"portfolio_id"'], "?")  # ExecuteMany
    """
    make = BULK_INSERT.get(dialect) if bulk else None
    if make is None:
        return ExecuteMany(insert_statement(table, columns, placeholder))
    return make(table, columns, placeholder)
