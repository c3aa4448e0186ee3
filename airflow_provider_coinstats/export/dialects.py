"""What the SQL writer needs to know per database: quoting, column types, and the upsert statement.

Identifiers go through common-sql's dialect layer (``hook.dialect.escape_word``, which quotes a
reserved word or a name that is not a plain identifier, in the hook's own quote characters). Its
reserved-word list comes from a module-level list of SQLAlchemy's dialect, which SQLite lacks
entirely (``order`` is not quoted there), so :func:`quote_identifier` also quotes the words
SQLAlchemy's identifier preparer reserves for the dialect (for ``mysql``: MySQL's and MariaDB's)
plus the ANSI SQL reserved words. Names stay unquoted otherwise, so a table created unquoted by
an earlier version, or queried by hand, keeps its case-folding rules.

=============  ===================================  =======================  ==================
dialect        key strings / other strings          decimals / timestamps    upsert statement
=============  ===================================  =======================  ==================
postgresql     TEXT / TEXT                          NUMERIC(p, s) /          INSERT ... ON
                                                    TIMESTAMP WITH TIME ZONE CONFLICT DO UPDATE
mysql          VARCHAR(n), the whole key within     DECIMAL(p, s) /          REPLACE INTO
(MariaDB)      InnoDB's 3072 bytes (utf8mb4) / TEXT DATETIME(6) in UTC
sqlite         TEXT / TEXT                          NUMERIC / ISO-8601 TEXT  REPLACE INTO
mssql          NVARCHAR(n), the key within the      DECIMAL(p, s) /          DELETE + INSERT
               clustered index's 900 bytes /        DATETIMEOFFSET(6)
               NVARCHAR(MAX)
snowflake      VARCHAR / VARCHAR                    NUMBER(p, s) /           DELETE + INSERT
                                                    TIMESTAMP_TZ(6)
=============  ===================================  =======================  ==================

``p, s`` are each decimal column's precision and scale from the schema
(:mod:`~airflow_provider_coinstats.export.columns`). Any other dialect is refused before the
first CoinStats request unless ``column_types`` gives a type for every column.

Upserts: each dialect uses what measured faster: 20,000 transactions upserted over a table
already holding them, one transaction, 1,000-row batches, strategies interleaved round by round,
median of 7 (2 cores shared with other work, so absolute times are loose; the order held in
every round set):

==============  =======================================  =========================================
database        native upsert                            DELETE by key + INSERT
==============  =======================================  =========================================
PostgreSQL 15   ON CONFLICT 2.14 s (from a COPY stage;   3.30 s (COPY); 3.81 s (executemany)
                2.52 s through executemany)
MariaDB 10.11   REPLACE INTO 3.50 s                      4.61 s
SQLite          REPLACE INTO 1.44 s                      2.05 s
==============  =======================================  =========================================

Dialects without a server here keep the portable DELETE + INSERT. A native upsert also needs the
table's primary key to be the dataset key (see :meth:`.sql.SqlTable.prepare`).

Example::

    quote_identifier(hook, "analytics.order")  # 'analytics."order"' on PostgreSQL
    sql_types(hook.dialect_name, get_schema("coins"), {})["coin_id"]  # 'VARCHAR(255)' on MySQL
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.columns import Column, DatasetSchema, get_schema

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

Upsert = Literal["native", "delete_insert"]


@dataclass(frozen=True)
class DialectTypes:
    """The SQL types and upsert statement of one dialect.

    ``key_string`` and ``decimal`` are formats: ``{length}``, and ``{precision}``/``{scale}``.
    ``key_bytes`` is the database's limit on a primary key's size, ``None`` without one.

    Example::

        DIALECTS["mysql"].decimal.format(precision=38, scale=18)  # 'DECIMAL(38, 18)'
    """

    string: str
    key_string: str
    decimal: str
    integer: str
    boolean: str
    timestamp: str
    upsert: Upsert = "delete_insert"
    key_bytes: int | None = None
    bytes_per_char: int = 4
    #: Index bytes of the key's non-string columns, by column type.
    fixed_key_bytes: Mapping[str, int] | None = None


DIALECTS: Final[Mapping[str, DialectTypes]] = {
    "postgresql": DialectTypes(
        string="TEXT",
        key_string="TEXT",
        decimal="NUMERIC({precision}, {scale})",
        integer="BIGINT",
        boolean="BOOLEAN",
        timestamp="TIMESTAMP WITH TIME ZONE",
        upsert="native",
    ),
    # MariaDB is served by MySqlHook, whose dialect_name is "mysql".
    "mysql": DialectTypes(
        string="TEXT",
        key_string="VARCHAR({length})",
        decimal="DECIMAL({precision}, {scale})",
        integer="BIGINT",
        boolean="BOOLEAN",
        timestamp="DATETIME(6)",
        upsert="native",
        # InnoDB (DYNAMIC rows): 3072 bytes per index; utf8mb4 reserves 4 bytes a character.
        key_bytes=3072,
        bytes_per_char=4,
        fixed_key_bytes={"timestamp": 8, "integer": 8},
    ),
    "sqlite": DialectTypes(
        string="TEXT",
        key_string="TEXT",
        decimal="NUMERIC",
        integer="INTEGER",
        boolean="BOOLEAN",
        # Fixed-width ISO-8601 text sorts correctly, so MAX(date) is the newest.
        timestamp="TEXT",
        upsert="native",
    ),
    # SQL Server's TIMESTAMP is rowversion, never a point in time.
    "mssql": DialectTypes(
        string="NVARCHAR(MAX)",
        key_string="NVARCHAR({length})",
        decimal="DECIMAL({precision}, {scale})",
        integer="BIGINT",
        boolean="BIT",
        timestamp="DATETIMEOFFSET(6)",
        # A clustered index key (the primary key's default) holds at most 900 bytes; NVARCHAR is UTF-16.
        key_bytes=900,
        bytes_per_char=2,
        fixed_key_bytes={"timestamp": 10, "integer": 8},
    ),
    "snowflake": DialectTypes(
        string="VARCHAR",
        key_string="VARCHAR",
        decimal="NUMBER({precision}, {scale})",
        integer="NUMBER(19, 0)",
        boolean="BOOLEAN",
        timestamp="TIMESTAMP_TZ(6)",
    ),
}

#: Preferred lengths of string key columns; a key that would pass the dialect's limit shrinks them all alike.
KEY_LENGTHS: Final[Mapping[str, int]] = {
    "portfolio_id": 64,
    "currency": 16,
    "row_key": 64,
    "coin_id": 255,
    "symbol": 64,
    "protocol_id": 128,
    "chain": 64,
    "investment_id": 255,
}
_DEFAULT_KEY_LENGTH: Final = 255
#: Bytes a VARCHAR key part takes beyond its characters (its length prefix).
_LENGTH_PREFIX: Final = 2


def supported_dialects() -> str:
    """The dialects with a type map, for messages."""
    return ", ".join(f"{name} (and MariaDB)" if name == "mysql" else name for name in DIALECTS)


def key_lengths(dialect: DialectTypes, schema: DatasetSchema) -> dict[str, int]:
    """Character lengths of the string key columns of ``schema``, within ``dialect.key_bytes``.

    Example::

        key_lengths(DIALECTS["mssql"], get_schema("defi"))  # shrunk to fit 900 bytes
    """
    strings = [schema.column(name) for name in schema.key if schema.column(name).type == "string"]
    wanted = {c.name: KEY_LENGTHS.get(c.name, _DEFAULT_KEY_LENGTH) for c in strings}
    if dialect.key_bytes is None or not wanted:
        return wanted
    fixed = sum((dialect.fixed_key_bytes or {}).get(schema.column(n).type, 8) for n in schema.key if n not in wanted)
    budget = (dialect.key_bytes - fixed - _LENGTH_PREFIX * len(wanted)) // dialect.bytes_per_char
    total = sum(wanted.values())
    if total <= budget:
        return wanted
    # Proportional shrink, rounded down, so the sum stays within the budget.
    return {name: max(1, length * budget // total) for name, length in wanted.items()}


def _column_type(dialect: DialectTypes, column: Column, lengths: Mapping[str, int]) -> str:
    if column.name in lengths:
        return dialect.key_string.format(length=lengths[column.name])
    if column.type == "decimal":
        return dialect.decimal.format(precision=column.precision, scale=column.scale)
    return str(getattr(dialect, column.type))


def sql_types(dialect_name: str, schema: DatasetSchema, overrides: Mapping[str, str]) -> dict[str, str]:
    """Column name -> SQL type for CREATE TABLE: the dialect's map, then ``overrides`` (``column_types``).

    A dialect without a map is refused unless ``overrides`` covers every column. ``overrides``
    must already be checked by :func:`check_column_types`.
    """
    dialect = DIALECTS.get(dialect_name)
    if dialect is None:
        missing = [name for name in schema.column_names() if name not in overrides]
        if missing:
            raise CoinStatsValidationError(
                "sql_conn_id",
                f"the {dialect_name!r} SQL dialect has no column type map; supported: {supported_dialects()}. "
                f"For another database give column_types for every {schema.name} column "
                f"(missing: {', '.join(missing)})",
            )
        return {name: overrides[name] for name in schema.column_names()}
    lengths = key_lengths(dialect, schema)
    types = {c.name: _column_type(dialect, c, lengths) for c in schema.columns}
    types.update(overrides)
    return types


# --- column_types -----------------------------------------------------------------------------------

_WORD: Final = r"[A-Za-z][A-Za-z0-9_]*"
_ARGUMENTS: Final = r"\((?:[0-9]+|MAX)(?:, ?[0-9]+)?\)"
#: One type: words, at most one argument list, more words (DOUBLE PRECISION, NUMERIC(38, 18),
#: TIMESTAMP(6) WITH TIME ZONE, NVARCHAR(MAX), INT UNSIGNED).
_SQL_TYPE: Final = re.compile(rf"{_WORD}(?: {_WORD})*(?: ?{_ARGUMENTS})?(?: {_WORD})*", re.IGNORECASE)
#: Words that would turn a type into a column constraint or a default.
_NOT_TYPE_WORDS: Final = frozenset(
    {"not", "null", "default", "primary", "key", "unique", "references", "check", "constraint", "generated", "as"}
)
_MAX_TYPE_LENGTH: Final = 64


def check_sql_type(field: str, value: object) -> str:
    """``value`` if it is one SQL column type by a strict grammar (it is pasted into CREATE TABLE).

    Example::

        check_sql_type("column_types", "NUMERIC(38, 18)")  # 'NUMERIC(38, 18)'
        check_sql_type("column_types", "TEXT, x INT")  # CoinStatsValidationError
    """
    text = value if isinstance(value, str) else ""
    words = {word.lower() for word in re.findall(r"[A-Za-z_]+", text)}
    if len(text) > _MAX_TYPE_LENGTH or not _SQL_TYPE.fullmatch(text) or words & _NOT_TYPE_WORDS:
        raise CoinStatsValidationError(
            field,
            f"must be one SQL column type: words, optionally one (n) or (p, s), like TEXT, VARCHAR(255), "
            f"NUMERIC(38, 18), DOUBLE PRECISION or TIMESTAMP WITH TIME ZONE (letters, digits, _, single "
            f"spaces, at most {_MAX_TYPE_LENGTH} characters, no constraints or defaults); got {value!r}",
        )
    return text


def check_column_types(column_types: object, datasets: Sequence[str]) -> dict[str, dict[str, str]]:
    """``column_types`` ({dataset: {column: SQL type}}) checked when the DAG is parsed.

    Every dataset must be exported, every column one of its schema's, every type one SQL type
    (:func:`check_sql_type`).

    Example::

        check_column_types({"coins": {"symbol": "VARCHAR(32)"}}, ["coins"])
    """
    if column_types is None:
        return {}
    if not isinstance(column_types, Mapping):
        raise CoinStatsValidationError("column_types", "must map dataset -> {column: SQL type}")
    checked: dict[str, dict[str, str]] = {}
    for dataset, types in column_types.items():
        if dataset not in datasets:
            raise CoinStatsValidationError("column_types", f"names a dataset not exported: {dataset!r}")
        if not isinstance(types, Mapping):
            raise CoinStatsValidationError("column_types", f"{dataset}: must map column -> SQL type")
        schema = get_schema(dataset)
        names = schema.column_names()
        for name, sql_type in types.items():
            if name not in names:
                raise CoinStatsValidationError(
                    "column_types", f"{name!r} is not a column of {dataset}; columns: {', '.join(names)}"
                )
            check_sql_type(f"column_types[{dataset!r}][{name!r}]", sql_type)
        checked[dataset] = dict(types)
    return checked


# --- identifiers ------------------------------------------------------------------------------------


@cache
def reserved_words(dialect_name: str) -> frozenset[str]:
    """Words quoted beyond common-sql's list: SQLAlchemy's preparer's for the dialect, plus ANSI SQL's."""
    from sqlalchemy.dialects import registry
    from sqlalchemy.sql.compiler import RESERVED_WORDS

    words = set(RESERVED_WORDS)
    # MySqlHook serves MariaDB too, whose list differs.
    for name in ("mysql", "mariadb") if dialect_name == "mysql" else (dialect_name,):
        try:
            words |= set(registry.load(name).preparer.reserved_words)
        except Exception:  # a dialect SQLAlchemy does not know (e.g. snowflake without its package)
            continue
    return frozenset(word.casefold() for word in words)


def quote_identifier(hook: DbApiHook, name: str) -> str:
    """``name`` (1-3 dot-separated identifiers) with each part quoted where the dialect needs it.

    Example::

        quote_identifier(SqliteHook(), "order")  # '"order"'
        quote_identifier(MySqlHook(), "rank")  # '`rank`'
    """
    dialect = hook.dialect
    extra = reserved_words(str(hook.dialect_name))
    parts = []
    for part in name.split("."):
        quoted = dialect.escape_word(part)
        if quoted == part and part.casefold() in extra:
            quoted = dialect.escape_word_format.format(part)
        parts.append(quoted)
    return ".".join(parts)


def quote_all(hook: DbApiHook, names: Sequence[str]) -> dict[str, str]:
    """Name -> quoted name for each of ``names``."""
    return {name: quote_identifier(hook, name) for name in names}


def native_upsert_sql(hook: DbApiHook, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """The dialect's own upsert (common-sql's ``generate_replace_sql``) of quoted ``columns`` on quoted ``key``.

    PostgreSQL: ``INSERT ... ON CONFLICT (key) DO UPDATE``; MySQL: ``REPLACE INTO``. Names
    arrive quoted; ``escape_word`` leaves a quoted word as it is.
    """
    values: list[Any] = list(columns)
    return str(hook.dialect.generate_replace_sql(table, values, list(columns), replace_index=list(key)))
