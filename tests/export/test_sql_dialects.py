"""The SQL each dialect gets: quoted identifiers, sized types, the upsert statement, checked types.

Golden SQL per dialect. PostgreSQL, MySQL and SQLite use their real Airflow hooks (the SQL is
built without connecting; the same SQL runs on real servers in ``test_sql_reserved_words.py``).
SQL Server and Snowflake have no provider or server here: a ``DbApiHook`` stands in with the
quote characters their hooks use (MsSqlHook ``[{}]``, SnowflakeHook the default ``"{}"``) and
their ``dialect_name``; their rows are "generated SQL tested, no live server". The expected SQL
follows the vendors' documented syntax: SQL Server DATETIMEOFFSET / NVARCHAR / BIT and a clustered
key of at most 900 bytes; Snowflake TIMESTAMP_TZ and NUMBER(p, s).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_provider_coinstats._compat import AirflowFailException
from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.columns import DATASETS, get_schema
from airflow_provider_coinstats.export.dialects import (
    DIALECTS,
    check_column_types,
    check_sql_type,
    key_lengths,
    reserved_words,
)
from airflow_provider_coinstats.export.sql import SqlTable
from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator
from tests.export.helpers import context
from tests.helpers import dag_file_import_errors

STAND_IN_CONN = "coinstats_test_stand_in"


class StandInHook(DbApiHook):
    """A hook of a database without a provider here: its dialect name and quote characters only."""

    conn_name_attr = "stand_in_conn_id"
    default_conn_name = STAND_IN_CONN

    def __init__(self, dialect: str, quote: str, **extra: Any) -> None:
        super().__init__(escape_word_format=quote, **extra)
        self.__dict__["dialect_name"] = dialect  # a cached_property on DbApiHook


@pytest.fixture
def hooks(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, DbApiHook]:
    """One hook per dialect; nothing connects (SQL generation only)."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    monkeypatch.setenv("AIRFLOW_CONN_GOLDEN_PG", "postgres://u:pw@127.0.0.1:1/db")
    monkeypatch.setenv("AIRFLOW_CONN_GOLDEN_MYSQL", "mysql://u:pw@127.0.0.1:1/db")
    monkeypatch.setenv("AIRFLOW_CONN_GOLDEN_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "g")}))
    monkeypatch.setenv(f"AIRFLOW_CONN_{STAND_IN_CONN.upper()}", json.dumps({"conn_type": "generic"}))
    return {
        "postgresql": PostgresHook(postgres_conn_id="golden_pg"),
        "mysql": MySqlHook(mysql_conn_id="golden_mysql"),
        "sqlite": SqliteHook(sqlite_conn_id="golden_sqlite"),
        "mssql": StandInHook("mssql", "[{}]"),
        "snowflake": StandInHook("snowflake", '"{}"'),
    }


def test_the_real_hooks_report_the_dialects_the_type_maps_are_keyed_by(hooks: dict[str, DbApiHook]) -> None:
    # MySqlHook serves MariaDB too: its dialect name is "mysql".
    assert {name: hooks[name].dialect_name for name in ("postgresql", "mysql", "sqlite")} == {
        "postgresql": "postgresql",
        "mysql": "mysql",
        "sqlite": "sqlite",
    }


# --- golden SQL: the chart dataset into "select"."order" ------------------------------------------------

GOLDEN_CREATE = {
    "postgresql": """CREATE TABLE IF NOT EXISTS "select"."order" (
    portfolio_id TEXT NOT NULL,
    extracted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
    value_usd NUMERIC(38, 18),
    value_btc NUMERIC(38, 24),
    value_eth NUMERIC(38, 24),
    PRIMARY KEY (portfolio_id, timestamp)
)""",
    "mysql": """CREATE TABLE IF NOT EXISTS `select`.`order` (
    portfolio_id VARCHAR(64) NOT NULL,
    extracted_at DATETIME(6) NOT NULL,
    timestamp DATETIME(6) NOT NULL,
    value_usd DECIMAL(38, 18),
    value_btc DECIMAL(38, 24),
    value_eth DECIMAL(38, 24),
    PRIMARY KEY (portfolio_id, timestamp)
)""",
    "sqlite": """CREATE TABLE IF NOT EXISTS "select"."order" (
    portfolio_id TEXT NOT NULL,
    extracted_at TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    value_usd NUMERIC,
    value_btc NUMERIC,
    value_eth NUMERIC,
    PRIMARY KEY (portfolio_id, timestamp)
)""",
    "mssql": """CREATE TABLE IF NOT EXISTS [select].[order] (
    portfolio_id NVARCHAR(64) NOT NULL,
    extracted_at DATETIMEOFFSET(6) NOT NULL,
    timestamp DATETIMEOFFSET(6) NOT NULL,
    value_usd DECIMAL(38, 18),
    value_btc DECIMAL(38, 24),
    value_eth DECIMAL(38, 24),
    PRIMARY KEY (portfolio_id, timestamp)
)""",
    "snowflake": """CREATE TABLE IF NOT EXISTS "select"."order" (
    portfolio_id VARCHAR NOT NULL,
    extracted_at TIMESTAMP_TZ(6) NOT NULL,
    timestamp TIMESTAMP_TZ(6) NOT NULL,
    value_usd NUMBER(38, 18),
    value_btc NUMBER(38, 24),
    value_eth NUMBER(38, 24),
    PRIMARY KEY (portfolio_id, timestamp)
)""",
}


@pytest.mark.parametrize("dialect", list(GOLDEN_CREATE))
def test_create_table_quotes_reserved_words_and_sizes_types_per_dialect(
    hooks: dict[str, DbApiHook], dialect: str
) -> None:
    assert SqlTable(hooks[dialect], "select.order", "chart").create_table_sql() == GOLDEN_CREATE[dialect]


GOLDEN_UPSERT = {
    # common-sql's generate_replace_sql: PostgreSQL's is INSERT ... ON CONFLICT, MySQL's and SQLite's REPLACE INTO.
    "postgresql": 'INSERT INTO "select"."order" (portfolio_id, extracted_at, timestamp, value_usd, value_btc, '
    "value_eth) VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (portfolio_id, timestamp) DO UPDATE SET "
    "extracted_at = excluded.extracted_at, value_usd = excluded.value_usd, value_btc = excluded.value_btc, "
    "value_eth = excluded.value_eth",
    "mysql": "REPLACE INTO `select`.`order` (portfolio_id, extracted_at, timestamp, value_usd, value_btc, "
    "value_eth) VALUES (%s,%s,%s,%s,%s,%s)",
    "sqlite": 'REPLACE INTO "select"."order" (portfolio_id, extracted_at, timestamp, value_usd, value_btc, '
    "value_eth) VALUES (?,?,?,?,?,?)",
}


@pytest.mark.parametrize("dialect", list(GOLDEN_UPSERT))
def test_the_native_upsert_is_common_sqls_statement_with_quoted_names(
    hooks: dict[str, DbApiHook], dialect: str
) -> None:
    from airflow_provider_coinstats.export.dialects import native_upsert_sql

    table = SqlTable(hooks[dialect], "select.order", "chart")
    assert table.upsert == "native"
    columns = [table.quoted[name] for name in table.schema.column_names()]
    key = [table.quoted[name] for name in table.schema.key]
    assert native_upsert_sql(hooks[dialect], table.quoted_table, columns, key) == GOLDEN_UPSERT[dialect]


class RecordingCursor:
    """Records the statements a load sends (SQL generation for dialects without a server here)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.statements.append(sql)

    def executemany(self, sql: str, rows: Any) -> None:
        self.statements.append(sql)


GOLDEN_DELETE_INSERT = {
    "mssql": [
        "DELETE FROM [select].[order] WHERE portfolio_id = %s AND timestamp IN (%s, %s)",
        "INSERT INTO [select].[order] (portfolio_id, extracted_at, timestamp, value_usd, value_btc, value_eth) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
    ],
    "snowflake": [
        'DELETE FROM "select"."order" WHERE portfolio_id = %s AND timestamp IN (%s, %s)',
        'INSERT INTO "select"."order" (portfolio_id, extracted_at, timestamp, value_usd, value_btc, value_eth) '
        "VALUES (%s, %s, %s, %s, %s, %s)",
    ],
}


@pytest.mark.parametrize("dialect", list(GOLDEN_DELETE_INSERT))
def test_dialects_without_a_server_here_upsert_by_delete_and_insert(hooks: dict[str, DbApiHook], dialect: str) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    table = SqlTable(hooks[dialect], "select.order", "chart")
    assert table.upsert == "delete_insert"
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"portfolio_id": "p", "extracted_at": moment, "timestamp": moment.replace(hour=h)}
        | {name: Decimal(1) for name in ("value_usd", "value_btc", "value_eth")}
        for h in (1, 2)
    ]
    cursor = RecordingCursor()
    write, delete_keys = table._writer()
    assert delete_keys
    table._delete_keys(cursor, [tuple(row[name] for name in table.schema.key) for row in rows])
    write(cursor, [table._values(row, table.schema.column_names()) for row in rows])
    assert cursor.statements == GOLDEN_DELETE_INSERT[dialect]


def test_escape_column_names_in_the_connection_quotes_every_identifier(
    hooks: dict[str, DbApiHook], monkeypatch: pytest.MonkeyPatch
) -> None:
    """common-sql's own switch (connection extra ``escape_column_names``) reaches every column."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    monkeypatch.setenv("AIRFLOW_CONN_GOLDEN_PG_ALL", "postgres://u:pw@127.0.0.1:1/db?escape_column_names=true")
    table = SqlTable(PostgresHook(postgres_conn_id="golden_pg_all"), "analytics.coinstats_chart", "chart")
    assert table.create_table_sql() == (
        'CREATE TABLE IF NOT EXISTS "analytics"."coinstats_chart" (\n'
        '    "portfolio_id" TEXT NOT NULL,\n'
        '    "extracted_at" TIMESTAMP WITH TIME ZONE NOT NULL,\n'
        '    "timestamp" TIMESTAMP WITH TIME ZONE NOT NULL,\n'
        '    "value_usd" NUMERIC(38, 18),\n'
        '    "value_btc" NUMERIC(38, 24),\n'
        '    "value_eth" NUMERIC(38, 24),\n'
        '    PRIMARY KEY ("portfolio_id", "timestamp")\n'
        ")"
    )


@pytest.mark.parametrize("dialect", list(GOLDEN_CREATE))
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_every_reserved_column_of_every_dataset_is_quoted(
    hooks: dict[str, DbApiHook], dialect: str, dataset: str
) -> None:
    hook = hooks[dialect]
    table = SqlTable(hook, "order", dataset)
    left, right = hook.escape_word_format.split("{}")
    reserved = reserved_words(dialect) | {w.casefold() for w in hook.reserved_words}
    ddl = table.create_table_sql()
    assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS {left}order{right} (")
    for name in table.schema.column_names():
        quoted = name.casefold() in reserved
        assert table.quoted[name] == (f"{left}{name}{right}" if quoted else name), (dialect, name)
        assert f"\n    {table.quoted[name]} " in ddl
    if dialect == "mysql" and dataset == "coins":
        assert table.quoted["rank"] == "`rank`"  # reserved since MySQL 8.0.2


def test_sql_server_never_gets_timestamp_which_is_rowversion_there(hooks: dict[str, DbApiHook]) -> None:
    for dataset in DATASETS:
        types = SqlTable(hooks["mssql"], "t", dataset)._column_types
        assert not any(t.split("(")[0] == "TIMESTAMP" for t in types.values()), dataset
        assert {types[c.name] for c in get_schema(dataset).columns if c.type == "timestamp"} <= {"DATETIMEOFFSET(6)"}


# --- key sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dialect", "limit"), [("mysql", 3072), ("mssql", 900)])
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_every_primary_key_fits_the_index_limit(dialect: str, limit: int, dataset: str) -> None:
    spec = DIALECTS[dialect]
    schema = get_schema(dataset)
    lengths = key_lengths(spec, schema)
    fixed = spec.fixed_key_bytes or {}
    size = sum(
        lengths[name] * spec.bytes_per_char + 2 if name in lengths else fixed[schema.column(name).type]
        for name in schema.key
    )
    assert size <= limit, (dataset, lengths)
    assert all(length >= 16 for length in lengths.values()), lengths  # still room for real ids


def test_keys_keep_their_preferred_lengths_where_they_fit() -> None:
    assert key_lengths(DIALECTS["mysql"], get_schema("defi")) == {
        "portfolio_id": 64,
        "protocol_id": 128,
        "chain": 64,
        "investment_id": 255,
    }
    shrunk = key_lengths(DIALECTS["mssql"], get_schema("defi"))
    assert all(shrunk[name] < length for name, length in key_lengths(DIALECTS["mysql"], get_schema("defi")).items())


# --- column_types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql_type",
    [
        "TEXT",
        "VARCHAR(255)",
        "NUMERIC(38, 18)",
        "NUMERIC(38,18)",
        "DOUBLE PRECISION",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP(6) WITH TIME ZONE",
        "DATETIME(6)",
        "NVARCHAR(MAX)",
        "TIMESTAMP_TZ(9)",
        "INT UNSIGNED",
        "CHARACTER VARYING(64)",
    ],
)
def test_column_types_accept_one_sql_type(sql_type: str) -> None:
    assert check_sql_type("column_types", sql_type) == sql_type


@pytest.mark.parametrize(
    "sql_type",
    [
        "TEXT, x INT",
        "TEXT); DROP TABLE t; --",
        "TEXT -- comment",
        "TEXT /* x */",
        "VARCHAR(10",
        "TEXT)",
        "VARCHAR('a')",
        'TEXT "x"',
        "NUMERIC(1, 2, 3)",
        "NUMERIC(1)(2)",
        "TEXT NOT NULL",
        "INT DEFAULT 1",
        "TEXT PRIMARY KEY",
        "TEXT  COLLATE",
        "",
        " TEXT",
        "1TEXT",
        "X" * 65,
        None,
        42,
    ],
)
def test_column_types_refuse_anything_but_one_type(sql_type: Any) -> None:
    with pytest.raises(CoinStatsValidationError) as raised:
        check_sql_type("column_types['coins']['symbol']", sql_type)
    message = str(raised.value)
    assert message.startswith("column_types['coins']['symbol']: must be one SQL column type")
    assert "VARCHAR(255)" in message  # says what is expected


def test_an_injected_column_type_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(CoinStatsValidationError, match=r"column_types\['coins'\]\['symbol'\]: must be one SQL"):
        CoinStatsToSqlOperator(
            task_id="t",
            portfolio_id="p",
            datasets=["coins"],
            sql_conn_id="warehouse",
            column_types={"coins": {"symbol": "TEXT, x INT"}},
            outlets=[],
        )


@pytest.mark.parametrize(
    ("column_types", "words"),
    [
        ({"chart": {"value_usd": "TEXT"}}, "names a dataset not exported: 'chart'"),
        ({"coins": {"nope": "TEXT"}}, "'nope' is not a column of coins"),
        ({"coins": "TEXT"}, "coins: must map column -> SQL type"),
        (["coins"], "must map dataset -> {column: SQL type}"),
    ],
)
def test_column_types_name_exported_datasets_and_their_columns(column_types: Any, words: str) -> None:
    with pytest.raises(CoinStatsValidationError, match="column_types") as raised:
        check_column_types(column_types, ["coins"])
    assert words in str(raised.value)


def test_sql_table_checks_column_types_itself(hooks: dict[str, DbApiHook]) -> None:
    with pytest.raises(CoinStatsValidationError, match=r"column_types\['symbol'\]: must be one SQL column type"):
        SqlTable(hooks["sqlite"], "t", "coins", column_types={"symbol": "TEXT, x INT"})
    table = SqlTable(hooks["mysql"], "t", "coins", column_types={"symbol": "VARCHAR(32)", "rank": "INT"})
    ddl = table.create_table_sql()
    assert "\n    symbol VARCHAR(32),\n" in ddl
    assert "\n    `rank` INT,\n" in ddl


# --- other dialects -------------------------------------------------------------------------------------


def test_a_dialect_without_a_type_map_is_refused_naming_the_supported_ones(hooks: dict[str, DbApiHook]) -> None:
    oracle = StandInHook("oracle", '"{}"')
    with pytest.raises(CoinStatsValidationError) as raised:
        SqlTable(oracle, "t", "chart")
    message = str(raised.value)
    assert message.startswith("sql_conn_id: the 'oracle' SQL dialect has no column type map; supported: ")
    for name in ("postgresql", "mysql (and MariaDB)", "sqlite", "mssql", "snowflake"):
        assert name in message
    assert "missing: portfolio_id, extracted_at, timestamp, value_usd, value_btc, value_eth" in message


def test_a_dialect_without_a_type_map_works_when_column_types_cover_every_column(hooks: dict[str, DbApiHook]) -> None:
    oracle = StandInHook("oracle", '"{}"')
    types = {
        "portfolio_id": "VARCHAR2(64)",
        "extracted_at": "TIMESTAMP WITH TIME ZONE",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "value_usd": "NUMBER(38, 18)",
        "value_btc": "NUMBER(38, 24)",
        "value_eth": "NUMBER(38, 24)",
    }
    table = SqlTable(oracle, "order", "chart", column_types=types)
    assert table.upsert == "delete_insert"
    # Oracle reserves ORDER but not TIMESTAMP in SQLAlchemy's list; DATE would be quoted.
    assert table.create_table_sql().startswith('CREATE TABLE IF NOT EXISTS "order" (\n    portfolio_id VARCHAR2(64)')


# --- refused before any request ------------------------------------------------------------------------


def parse_dag_file(tmp_path: Path, column_type: str) -> dict[str, str]:
    """Parse a DAG file whose operator has ``column_type`` for a column; its import errors."""
    return dag_file_import_errors(
        tmp_path / "column_types_parse.py",
        "from datetime import datetime\n"
        "from airflow.sdk import DAG\n"
        "from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator\n"
        "with DAG(dag_id='parse_only', schedule=None, start_date=datetime(2025, 1, 1)):\n"
        "    CoinStatsToSqlOperator(task_id='load', portfolio_id='p', datasets=['coins'], sql_conn_id='w',\n"
        f"                           column_types={{'coins': {{'symbol': {column_type!r}}}}})\n",
    )


def test_an_injected_column_type_fails_the_dag_file_with_zero_requests_sent(
    coinstats_conn: Any, tmp_path: Path
) -> None:
    coinstats_conn.state.clear_requests()
    errors = parse_dag_file(tmp_path, "TEXT, x INT")
    assert len(errors) == 1
    message = next(iter(errors.values()))
    assert "column_types['coins']['symbol']: must be one SQL column type" in message
    assert "got 'TEXT, x INT'" in message
    assert coinstats_conn.state.requests() == []  # zero requests sent
    assert parse_dag_file(tmp_path, "VARCHAR(32)") == {}  # the same file with one type parses
    assert coinstats_conn.state.requests() == []


class OracleNamedSqliteHook:
    """A SQLite hook that reports the ``oracle`` dialect: no Oracle server or provider runs here."""

    def __new__(cls, conn_id: str) -> Any:
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook

        hook = SqliteHook(sqlite_conn_id=conn_id)
        hook.__dict__["dialect_name"] = "oracle"
        return hook


def test_an_unsupported_dialect_fails_the_task_before_any_request(
    coinstats_conn: Any, portfolio: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ORACLE_LIKE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "o.db")}))
    operator = CoinStatsToSqlOperator(
        task_id="load", portfolio_id=portfolio, datasets=["coins"], sql_conn_id="oracle_like", outlets=[]
    )
    monkeypatch.setattr(operator, "get_db_hook", lambda: OracleNamedSqliteHook("oracle_like"))
    coinstats_conn.state.clear_requests()
    # A permanent error: the task fails without retries (AirflowFailException), before any request.
    with pytest.raises(AirflowFailException, match="the 'oracle' SQL dialect has no column type map"):
        operator.execute(context())
    assert coinstats_conn.state.requests() == []
