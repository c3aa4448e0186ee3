"""Load flat dataset rows into a SQL table through any common-sql ``DbApiHook``.

One :class:`SqlTable` is one dataset's table. Every load runs in a single database transaction,
so a failed or interrupted export leaves the table exactly as it was, and a rerun never
duplicates a row:

=========================================  ==========================================================
dataset                                    what a load does
=========================================  ==========================================================
``coins``, ``defi``                        replace the portfolio's rows (the table is the current
                                           state: a coin sold since the last run disappears)
``value``                                  replace the portfolio's rows in that currency
``chart``, ``pl_history``,                 upsert on the dataset key: history accumulates, reruns
``snapshot_items``, ``transactions``       replace
=========================================  ==========================================================

Dialects (:mod:`.dialects` has the type maps and the measurements behind the upsert choice):

=============  ==============================================  ====================================
dialect        upsert (and a replace load's later batches)     proven by
=============  ==============================================  ====================================
postgresql     INSERT ... ON CONFLICT (key) DO UPDATE          real PostgreSQL in the tests
mysql          REPLACE INTO (common-sql's MySQL statement)      real MariaDB in the tests (MySqlHook)
sqlite         REPLACE INTO (common-sql's statement)           real SQLite in the tests
mssql          DELETE by key + INSERT                          generated SQL tested, no live server
snowflake      DELETE by key + INSERT                          generated SQL tested, no live server
other          DELETE by key + INSERT, only with               refused before any request otherwise
               ``column_types`` for every column
=============  ==============================================  ====================================

The native upserts are common-sql's ``generate_replace_sql`` (on PostgreSQL the same ON CONFLICT
from a COPY stage, see :mod:`.sql_bulk`) and are used only on a table whose primary key is the dataset key
(created here, or checked by :meth:`SqlTable.prepare`); any other table, and every other
dialect, gets DELETE-by-key plus INSERT inside the transaction. Either way a key that comes
again in a later page or batch replaces the earlier row: the last one wins. ``transactions``
also offer a watermark (the newest ``date`` loaded for the portfolio) for incremental reads.

Every table and column name goes through the dialect's quoting (:func:`.dialects.quote_identifier`:
``hook.dialect.escape_word`` plus SQLAlchemy's reserved words for the dialect), so a table
``order`` or ``analytics.order`` and the ``rank`` column work on every database;
:func:`validate_table_name` still accepts only 1-3 dot-separated plain identifiers.

Database errors are classified. Only a table the database positively reports as missing
(SQLSTATE ``42P01``/``42S02``/``3F000``, MySQL error 1146, SQLite "no such table"), or one
without the schema's columns, is a :class:`~airflow_provider_coinstats.exceptions.CoinStatsValidationError`
(permanent). Anything else a database call raises (a lock, a lock or statement timeout, a
refused or lost connection, missing privileges) becomes a retryable
:class:`~airflow_provider_coinstats.exceptions.CoinStatsDestinationError` that keeps the
database's own message and is chained from the driver's exception.

Created tables get a primary key on the dataset key. Column types come from
:data:`.dialects.DIALECTS` by ``hook.dialect_name``: decimals get each column's precision and
scale from the schema, MySQL key strings fit InnoDB's 3072-byte index, MySQL timestamps are
``DATETIME(6)`` holding UTC, SQLite stores timestamps as fixed-width ISO-8601 text, which sorts
correctly. ``column_types`` overrides any of them, each value checked as one SQL type.

Example::

    table = SqlTable(hook, "coinstats_transactions", "transactions")
    table.prepare(create=True)
    table.load(rows, portfolio_id=pid)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_coinstats.exceptions import (
    CoinStatsDestinationError,
    CoinStatsError,
    CoinStatsValidationError,
)
from airflow_provider_coinstats.export.columns import DatasetSchema, get_schema, snapshot_schema
from airflow_provider_coinstats.export.dialects import (
    DIALECTS,
    check_sql_type,
    native_upsert_sql,
    quote_all,
    quote_identifier,
    sql_types,
)
from airflow_provider_coinstats.export.sql_bulk import ExecuteMany, RowWriter, bulk_upserter, bulk_writer
from airflow_provider_coinstats.export.values import plain_digits, remember_last

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

#: dataset -> columns whose values select the rows a load replaces (all other datasets upsert).
REPLACE_SCOPE: Final[Mapping[str, tuple[str, ...]]] = {
    "coins": ("portfolio_id",),
    "defi": ("portfolio_id",),
    "value": ("portfolio_id", "currency"),
}

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}")

#: Bind parameters per statement stay under SQLite's historical limit of 999.
_MAX_PARAMS: Final = 900


def validate_table_name(field: str, name: object) -> str:
    """``name`` if it is 1-3 dot-separated plain identifiers; the dialect quotes each part where it must."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise CoinStatsValidationError(
            field, f"must be a table name like coinstats_coins or analytics.coinstats_coins, got {name!r}"
        )
    return name


#: Types sqlite3 binds as they are.
_SQLITE_NATIVE: Final = frozenset({str, int, bool, float, bytes, type(None)})


def _sqlite_value(value: Any) -> Any:
    # sqlite3 binds neither Decimal nor aware datetimes. NUMERIC affinity turns the digit string
    # into the same number; fixed-width ISO text keeps MAX(date) and ORDER BY correct.
    if isinstance(value, Decimal):
        return plain_digits(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


_sqlite_extracted_at: Final = remember_last(_sqlite_value)


def _sqlite_row(row: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    # Once per cell of every row loaded: native types pass with one set lookup. Every schema
    # starts with portfolio_id, extracted_at, and a run's rows share one extracted_at object.
    cells = [
        v if type(v) in _SQLITE_NATIVE else plain_digits(v) if type(v) is Decimal else _sqlite_value(v)
        for v in map(row.__getitem__, names[2:])
    ]
    return (row[names[0]], _sqlite_extracted_at(row[names[1]]), *cells)


def _mysql_value(value: Any) -> Any:
    # DATETIME(6) has no time zone and the drivers would send an aware value's offset as text:
    # every timestamp is stored as naive UTC (and read back as UTC by _parse_timestamp).
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


_mysql_extracted_at: Final = remember_last(_mysql_value)


def _mysql_row(row: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    cells = [v if type(v) is not datetime else _mysql_value(v) for v in map(row.__getitem__, names[2:])]
    return (row[names[0]], _mysql_extracted_at(row[names[1]]), *cells)


#: dialect -> (value adapter, row adapter) for drivers that cannot bind the flatteners' values as they are.
_ValueAdapter = Callable[[Any], Any]
_RowAdapter = Callable[[Mapping[str, Any], Sequence[str]], tuple[Any, ...]]
_ADAPTERS: Final[Mapping[str, tuple[_ValueAdapter, _RowAdapter]]] = {
    "sqlite": (_sqlite_value, _sqlite_row),
    "mysql": (_mysql_value, _mysql_row),
}


def _parse_timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


#: SQLSTATEs meaning "no such table" (PostgreSQL undefined_table, SQL standard / ODBC base table
#: not found as MySQL, SQL Server and Snowflake report it) or "no such schema" (PostgreSQL).
_MISSING_TABLE_SQLSTATES: Final = frozenset({"42P01", "42S02", "3F000"})
#: MySQL/MariaDB "Table doesn't exist", for drivers that give only the error number.
_MYSQL_NO_SUCH_TABLE: Final = 1146


def is_missing_table_error(error: BaseException) -> bool:
    """Whether a driver's exception says the table (or its schema) does not exist; nothing else does.

    Reads the SQLSTATE where the driver gives one (psycopg ``sqlstate``, psycopg2 ``pgcode``, an
    ODBC-style first argument), MySQL's error number, and SQLite's "no such table" message
    (sqlite3 has no finer code than SQLITE_ERROR for it).

    Example::

        is_missing_table_error(sqlite3.OperationalError("no such table: coinstats_coins"))  # True
        is_missing_table_error(sqlite3.OperationalError("database is locked"))  # False
    """
    args = getattr(error, "args", ())
    first = args[0] if args else None
    for state in (getattr(error, "sqlstate", None), getattr(error, "pgcode", None), first):
        if isinstance(state, str) and state.upper() in _MISSING_TABLE_SQLSTATES:
            return True
    if first == _MYSQL_NO_SUCH_TABLE or getattr(error, "errno", None) == _MYSQL_NO_SUCH_TABLE:
        return True
    return type(error).__module__.startswith("sqlite3") and str(error).startswith("no such table")


def _database_message(error: BaseException) -> str:
    # Drivers' messages span lines (psycopg adds hints); one line keeps Airflow's log readable.
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class SqlTable:
    """The table one dataset loads into, behind any common-sql ``DbApiHook``.

    Example::

        from airflow.providers.sqlite.hooks.sqlite import SqliteHook

        table = SqlTable(SqliteHook("warehouse"), "coinstats_coins", "coins")
        table.prepare(create=True)  # creates it, or checks an existing table's columns
        table.load(rows, portfolio_id="p1")  # one transaction: replace p1's holdings
    """

    #: Batches go through the dialect's bulk path (export/sql_bulk.py: PostgreSQL COPY, MySQL
    #: multi-row INSERT); False writes them with executemany (the load benchmark's baseline).
    bulk_writes: bool = True

    def __init__(
        self,
        hook: DbApiHook,
        table: str,
        dataset: str,
        *,
        column_types: Mapping[str, str] | None = None,
        batch_size: int = 1000,
        history: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise CoinStatsValidationError("batch_size", f"must be a positive integer, got {batch_size!r}")
        self.hook = hook
        self.table = validate_table_name("table", table)
        # history: coins/defi/value keep one snapshot per snapshot_date (see columns.snapshot_schema).
        self.schema: DatasetSchema = snapshot_schema(dataset) if history else get_schema(dataset)
        self.batch_size = batch_size
        self.dialect = str(getattr(hook, "dialect_name", "default") or "default").lower()
        overrides = dict(column_types or {})
        for name, sql_type in overrides.items():
            if name not in self.schema.column_names():
                raise CoinStatsValidationError(
                    "column_types", f"{name!r} is not a column of {self.schema.name}; columns: {self._columns_text()}"
                )
            check_sql_type(f"column_types[{name!r}]", sql_type)
        # Refuses a dialect without a type map (unless overrides cover every column) before any request.
        self._column_types = sql_types(self.dialect, self.schema, overrides)
        #: The table and column names as the dialect quotes them (reserved words, e.g. `order`, `rank`).
        self.quoted_table = quote_identifier(hook, self.table)
        self.quoted = quote_all(hook, self.schema.column_names())
        spec = DIALECTS.get(self.dialect)
        #: "native": the dialect's own upsert (ON CONFLICT / REPLACE); else DELETE by key + INSERT.
        self.upsert = spec.upsert if spec is not None else "delete_insert"
        adapters = _ADAPTERS.get(self.dialect)
        self._adapt: _ValueAdapter | None = adapters[0] if adapters else None
        self._adapt_row: _RowAdapter | None = adapters[1] if adapters else None

    def _columns_text(self) -> str:
        return ", ".join(self.schema.column_names())

    # --- structure ------------------------------------------------------------------------------

    def create_table_sql(self) -> str:
        """The CREATE TABLE statement: schema columns in order, NOT NULL where declared, primary key on the key."""
        q = self.quoted
        columns = [
            f"{q[c.name]} {self._column_types[c.name]}{'' if c.nullable else ' NOT NULL'}" for c in self.schema.columns
        ]
        columns.append(f"PRIMARY KEY ({', '.join(q[name] for name in self.schema.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.quoted_table} (\n    " + ",\n    ".join(columns) + "\n)"

    def _failed(self, action: str, error: BaseException) -> CoinStatsDestinationError:
        return CoinStatsDestinationError("table", f"cannot {action} {self.table}: {_database_message(error)}")

    @contextmanager
    def _database(self, action: str) -> Iterator[None]:
        """Database calls inside raise :class:`CoinStatsDestinationError` (retryable), message kept."""
        try:
            yield
        except CoinStatsError:
            raise
        except Exception as error:
            raise self._failed(action, error) from error

    def existing_columns(self) -> list[str] | None:
        """Column names of the table (lower-cased), or ``None`` when the database says it does not exist.

        Any other failure (locked, refused or lost connection, timeout, no privilege) raises
        :class:`CoinStatsDestinationError` with the database's message: it is never taken for a
        missing table.
        """
        with self._database("connect to the database for"):
            conn = self.hook.get_conn()
        try:
            with self._database("read"):
                cursor = conn.cursor()
            try:
                cursor.execute(f"SELECT * FROM {self.quoted_table} WHERE 1 = 0")
                return [str(d[0]).lower() for d in cursor.description or ()]
            except Exception as error:
                # A failed statement poisons the transaction on some databases (PostgreSQL); a
                # rollback that fails too (lost connection) must not hide the first error.
                with suppress(Exception):
                    conn.rollback()
                if is_missing_table_error(error):
                    return None
                raise self._failed("read", error) from error
            finally:
                with suppress(Exception):
                    cursor.close()
        finally:
            with suppress(Exception):
                conn.close()

    def prepare(self, *, create: bool) -> bool:
        """Make sure the table can take this dataset's rows; return whether it was created.

        Runs before any CoinStats request, so a wrong table costs no credits. A missing table
        is created when ``create`` is true; an existing one must have every schema column (extra
        columns, e.g. a ``loaded_at`` with a default, are allowed).
        """
        columns = self.existing_columns()
        created = False
        if columns is None:
            if not create:
                raise CoinStatsValidationError(
                    "table", f"{self.table} does not exist; create it or set create_table=True"
                )
            try:
                with self._database("create"):
                    self.hook.run(self.create_table_sql(), autocommit=True)
                created = True
            except CoinStatsDestinationError:
                # Two tasks creating the table at once (a DAG's first run loading portfolios in
                # parallel): PostgreSQL's CREATE TABLE IF NOT EXISTS can still fail for the loser
                # with a unique violation in its catalog. The winner's table is as good as ours.
                if self.existing_columns() is None:
                    raise
            columns = self.existing_columns()
            if columns is None:
                raise CoinStatsValidationError("table", f"{self.table} could not be read after CREATE TABLE")
        missing = [name for name in self.schema.column_names() if name.lower() not in columns]
        if missing:
            raise CoinStatsValidationError(
                "table",
                f"{self.table} does not match the {self.schema.name} schema: missing column(s) "
                f"{', '.join(missing)}; expected columns: {self._columns_text()}",
            )
        if self.upsert == "native" and not created and not self._keyed_as_the_schema():
            # ON CONFLICT needs a matching unique key, and REPLACE without one would keep duplicates.
            self.upsert = "delete_insert"
        return created

    def _keyed_as_the_schema(self) -> bool:
        """Whether an existing table's primary key is the dataset key (the native upsert relies on it)."""
        parts = self.table.split(".")
        if len(parts) > 2:
            return False
        table, schema = parts[-1], parts[0] if len(parts) == 2 else None
        try:
            with self._database("read the primary key of"):
                if schema is None and self.dialect == "postgresql":
                    # PostgresDialect reads information_schema by schema name; None would match nothing.
                    found = self.hook.get_first("SELECT current_schema()")
                    schema = str(found[0]) if found else None
                keys = self.hook.dialect.get_primary_keys(table, schema)
        except CoinStatsDestinationError:
            return False  # cannot tell: DELETE + INSERT works with any key
        return {str(name).lower() for name in keys or ()} == set(self.schema.key)

    # --- reads ----------------------------------------------------------------------------------

    def watermark(self, portfolio_id: str) -> datetime | None:
        """The newest transaction ``date`` loaded for ``portfolio_id`` (``None`` if none)."""
        if self.schema.name != "transactions":
            raise CoinStatsValidationError("incremental", "watermarks exist for transactions only")
        with self._database("read"):
            value = self.hook.get_first(
                f"SELECT MAX({self.quoted['date']}) FROM {self.quoted_table} "
                f"WHERE {self.quoted['portfolio_id']} = {self.hook.placeholder}",
                (portfolio_id,),
            )
        return _parse_timestamp(value[0] if value else None)

    def count(self, portfolio_id: str) -> int:
        """Rows of ``portfolio_id`` in the table."""
        with self._database("read"):
            value = self.hook.get_first(
                f"SELECT COUNT(*) FROM {self.quoted_table} "
                f"WHERE {self.quoted['portfolio_id']} = {self.hook.placeholder}",
                (portfolio_id,),
            )
        return int(value[0]) if value else 0

    # --- load -----------------------------------------------------------------------------------

    def load(self, rows: Iterable[dict[str, Any]], *, portfolio_id: str, scope: Mapping[str, Any] | None = None) -> int:
        """Write ``rows`` of one portfolio in one transaction; return how many rows were read.

        ``scope`` gives the values of :data:`REPLACE_SCOPE` columns other than ``portfolio_id``
        (``currency`` for ``value``), so replacing works even when the new answer is empty.
        """
        names = self.schema.column_names()
        mark = self.hook.placeholder
        write, delete_keys = self._writer()
        replace_scope = REPLACE_SCOPE.get(self.schema.name)
        if replace_scope is not None and "snapshot_date" in names:
            replace_scope = (*replace_scope, "snapshot_date")  # history: replace that date's snapshot only
        scope_values = {"portfolio_id": portfolio_id, **(scope or {})}
        read = 0
        with self._database("connect to the database for"):
            conn = self.hook.get_conn()
            if self.hook.supports_autocommit:
                self.hook.set_autocommit(conn, False)
            cursor = conn.cursor()
        try:
            if replace_scope is not None:
                where = " AND ".join(f"{self.quoted[c]} = {mark}" for c in replace_scope)
                with self._database("write"):
                    params = [scope_values[c] for c in replace_scope]
                    if self._adapt is not None:
                        params = [self._adapt(value) for value in params]
                    cursor.execute(f"DELETE FROM {self.quoted_table} WHERE {where}", params)
            for count, unique in self._batches(rows, portfolio_id, names):
                with self._database("write"):
                    # Replace loads start from an emptied scope, so only a later batch can repeat a key.
                    if delete_keys and (replace_scope is None or read > 0):
                        self._delete_keys(cursor, list(unique))
                    write(cursor, list(unique.values()))
                read += count
            with self._database("commit"):
                conn.commit()
        except BaseException:
            # A rollback on a lost connection fails too; the original error is the one to report.
            with suppress(Exception):
                conn.rollback()
            raise
        finally:
            with suppress(Exception):
                cursor.close()
            with suppress(Exception):
                conn.close()
        return read

    def _writer(self) -> tuple[RowWriter, bool]:
        """The batch writer, and whether each batch first deletes the keys it writes.

        A native upsert replaces a repeated key itself; DELETE + INSERT goes through the dialect's
        bulk path (:mod:`.sql_bulk`). Identifiers go in as the dialect quotes them.
        """
        columns = [self.quoted[name] for name in self.schema.column_names()]
        if self.upsert == "native":
            key = [self.quoted[name] for name in self.schema.key]
            bulk = bulk_upserter(self.dialect, self.quoted_table, columns, key, self.hook.placeholder)
            if bulk is not None and self.bulk_writes:
                return bulk, False
            return ExecuteMany(native_upsert_sql(self.hook, self.quoted_table, columns, key)), False
        return bulk_writer(self.dialect, self.quoted_table, columns, self.hook.placeholder, bulk=self.bulk_writes), True

    def _values(self, row: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
        if self._adapt_row is None:
            return tuple(map(row.__getitem__, names))
        return self._adapt_row(row, names)

    def _batches(
        self, rows: Iterable[dict[str, Any]], portfolio_id: str, names: Sequence[str]
    ) -> Iterator[tuple[int, dict[tuple[Any, ...], tuple[Any, ...]]]]:
        """Batches of up to ``batch_size`` rows: how many were read, and key -> value tuple, in order.

        Pages can overlap when new transactions arrive mid-export: the last copy of a key wins (in
        the place of the first). Each row becomes its key and its adapted values as it arrives, so
        no batch of row dicts stays alive: the garbage collector's full passes, which scan every
        surviving object, measured 1.5 s of a 100,000-transaction SQLite export before.
        """
        key_names = self.schema.key
        to_values = self._values
        iterator = iter(rows)
        while True:
            by_key: dict[tuple[Any, ...], tuple[Any, ...]] = {}
            count = 0
            # Rows are read outside _database: a CoinStats error from the read keeps its own type.
            for row in islice(iterator, self.batch_size):
                if row["portfolio_id"] != portfolio_id:
                    raise CoinStatsValidationError("rows", f"a load takes one portfolio; got {row['portfolio_id']!r}")
                key = tuple([row[name] for name in key_names])
                try:
                    by_key[key] = to_values(row, names)
                except CoinStatsError:
                    raise
                except Exception as error:  # adapting a value is part of the write, as in _database
                    raise self._failed("write", error) from error
                count += 1
            if not count:
                return
            yield count, by_key

    def _delete_keys(self, cursor: Any, keys: Sequence[Sequence[Any]]) -> None:
        """DELETE the rows whose keys (values in ``schema.key`` order, one portfolio) are ``keys``."""
        mark = self.hook.placeholder
        positions = [i for i, name in enumerate(self.schema.key) if name != "portfolio_id"]
        key = [self.schema.key[i] for i in positions]
        portfolio_at = self.schema.key.index("portfolio_id")
        chunk = max(1, (_MAX_PARAMS - 1) // len(key))
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            if len(key) == 1:
                match = f"{self.quoted[key[0]]} IN ({', '.join([mark] * len(part))})"
            else:
                one = "(" + " AND ".join(f"{self.quoted[name]} = {mark}" for name in key) + ")"
                match = "(" + " OR ".join([one] * len(part)) + ")"
            params: list[Any] = [keys[0][portfolio_at]]
            for values in part:
                params.extend(values[i] for i in positions)
            if self._adapt is not None:
                params = [self._adapt(value) for value in params]
            where = f"{self.quoted['portfolio_id']} = {mark} AND {match}"
            cursor.execute(f"DELETE FROM {self.quoted_table} WHERE {where}", params)
