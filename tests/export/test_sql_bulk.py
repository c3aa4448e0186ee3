"""Bulk writes (export/sql_bulk.py) on real servers: PostgreSQL COPY, MariaDB multi-row INSERT.

Every test writes awkward values (commas, both quotes, newlines, carriage returns, tabs,
backslashes, the text ``\\N``, empty strings, NULLs, 18-decimal-place numbers, timestamps with a
non-UTC offset) and reads them back from the server. PostgreSQL runs both drivers: psycopg 3
(Airflow 3.3's PostgresHook) and psycopg2 (Airflow 3.0's), whatever the venv has installed.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_coinstats.export.sql import SqlTable
from airflow_provider_coinstats.export.sql_bulk import (
    ExecuteMany,
    MultiRowInsert,
    PostgresCopy,
    PostgresCopyUpsert,
    bulk_upserter,
    bulk_writer,
    copy_text,
    insert_statement,
)

AWKWARD_STRINGS = [
    "plain",
    "comma, and 'single' and \"double\" quotes",
    "new\nline and carriage\r\nreturn",
    "tab\there",
    "back\\slash \\N \\t \\\\",
    "\\N",
    "",
    "emoji 🚀 and ümlaut",
    "semicolon; DROP TABLE t; --",
]
IST = timezone(timedelta(hours=5, minutes=30))


def awkward_rows() -> list[tuple[Any, ...]]:
    """(k, s, d, ts, n, b) rows; every awkward string once, NULLs in every nullable column."""
    rows: list[tuple[Any, ...]] = []
    for i, text in enumerate(AWKWARD_STRINGS):
        rows.append(
            (
                f"k{i}",
                text,
                Decimal("123456789012345678.123456789012345678") if i % 2 else Decimal("-0.000000000000000001"),
                datetime(2025, 3, 30, 1, 30, 0, 123456, tzinfo=IST if i % 2 else UTC),
                2**62 + i,
                i % 2 == 0,
            )
        )
    rows.append(("k-null", None, None, None, None, None))
    return rows


COLUMNS = ["k", "s", "d", "ts", "n", "b"]


def _read_back(cursor: Any, table: str) -> dict[str, tuple[Any, ...]]:
    cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY k")
    return {row[0]: tuple(row) for row in cursor.fetchall()}


def _as_utc(row: tuple[Any, ...]) -> tuple[Any, ...]:
    ts = row[3]
    return (*row[:3], None if ts is None else ts.astimezone(UTC), *row[4:])


# --- PostgreSQL -----------------------------------------------------------------------------------


#: psycopg 3 serves Airflow 3.3's PostgresHook, psycopg2 Airflow 3.0's: each venv runs what it has.
PG_DRIVERS = [name for name in ("psycopg", "psycopg2") if importlib.util.find_spec(name)]


@pytest.fixture(params=PG_DRIVERS)
def pg_conn(request: pytest.FixtureRequest, postgres_test_db_uri: str) -> Iterator[Any]:
    """A connection to this test's own PostgreSQL database through one driver, in a non-UTC session."""
    driver = importlib.import_module(request.param)
    conn = driver.connect(postgres_test_db_uri)
    try:
        with conn.cursor() as cur:
            # A session zone other than UTC: stored instants must not depend on it.
            cur.execute("SET TIME ZONE 'America/New_York'")
        conn.commit()
        yield conn
    finally:
        conn.close()


def _pg_table(conn: Any, name: str = "bulk_t", extra: str = "") -> str:
    with conn.cursor() as cur:
        cur.execute(
            f'CREATE TABLE "{name}" (k TEXT PRIMARY KEY, s TEXT, d NUMERIC(38, 18), ts TIMESTAMP WITH TIME ZONE, '
            f"n BIGINT, b BOOLEAN{extra})"
        )
    conn.commit()
    return f'"{name}"'


def test_copy_writes_awkward_values_exactly(pg_conn: Any) -> None:
    table = _pg_table(pg_conn, "order")  # a reserved word, quoted by the caller
    rows = awkward_rows()
    with pg_conn.cursor() as cur:
        PostgresCopy(table, COLUMNS)(cur, rows)
    pg_conn.commit()
    with pg_conn.cursor() as cur:
        found = _read_back(cur, table)
    assert found, "nothing read back"
    assert {k: _as_utc(v) for k, v in found.items()} == {row[0]: _as_utc(row) for row in rows}
    assert found["k5"][1] == "\\N" and found["k6"][1] == "" and found["k-null"][1] is None
    assert isinstance(found["k1"][2], Decimal)


def _stages(cursor: Any) -> int:
    cursor.execute("SELECT count(*) FROM pg_class WHERE relname = 'coinstats_bulk_stage'")
    return int(cursor.fetchone()[0])


def test_copy_upsert_replaces_existing_keys_and_adds_new_ones(pg_conn: Any) -> None:
    # loaded_at: a column the load does not fill, NOT NULL with a default (the stage must not copy it).
    table = _pg_table(pg_conn, extra=", loaded_at TIMESTAMPTZ NOT NULL DEFAULT now()")
    first = awkward_rows()
    upsert = PostgresCopyUpsert(table, COLUMNS, ["k"])
    with pg_conn.cursor() as cur:
        upsert(cur, first[:5])
    pg_conn.commit()
    changed = [(k, f"new {s}", d, ts, n, b) for k, s, d, ts, n, b in first[3:5]]
    with pg_conn.cursor() as cur:
        upsert(cur, changed + first[5:7])  # two batches in one transaction: the stage is reused
        upsert(cur, first[7:])
    pg_conn.commit()
    with pg_conn.cursor() as cur:
        found = _read_back(cur, table)
        assert _stages(cur) == 0  # ON COMMIT DROP: nothing left in the (maybe pooled) session
    expected = {row[0]: _as_utc(row) for row in first[:3] + changed + first[5:]}
    assert {k: _as_utc(v) for k, v in found.items()} == expected
    assert found["k3"][1] == "new tab\there"


def test_copy_upsert_rolls_back_with_the_load(pg_conn: Any) -> None:
    table = _pg_table(pg_conn)
    rows = awkward_rows()
    with pg_conn.cursor() as cur:
        PostgresCopyUpsert(table, COLUMNS, ["k"])(cur, rows[:2])
    pg_conn.commit()
    with pg_conn.cursor() as cur:
        PostgresCopyUpsert(table, COLUMNS, ["k"])(cur, [(k, "changed", d, ts, n, b) for k, _s, d, ts, n, b in rows])
    pg_conn.rollback()
    with pg_conn.cursor() as cur:
        found = _read_back(cur, table)
        stages = _stages(cur)
    assert {k: _as_utc(v) for k, v in found.items()} == {row[0]: _as_utc(row) for row in rows[:2]}
    assert stages == 0


def _transaction_rows(portfolio_id: str, keys: list[str], note: str) -> list[dict[str, Any]]:
    from airflow_provider_coinstats.export.columns import get_schema

    rows = []
    for i, key in enumerate(keys):
        row: dict[str, Any] = dict.fromkeys(get_schema("transactions").column_names())
        row.update(
            portfolio_id=portfolio_id,
            extracted_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            row_key=key,
            currency="USD",
            date=datetime(2025, 1, 1, tzinfo=IST) + timedelta(minutes=i),
            count=Decimal("0.000000000000000001"),
            total_worth=Decimal("12345678901234567890.123456789012345678"),
            fee_price=Decimal("0.000000000000000000000001"),
            transfer_count=i,
            note=f"{note} {AWKWARD_STRINGS[i % len(AWKWARD_STRINGS)]}",
        )
        rows.append(row)
    return rows


def _load_and_read(hook: Any, bulk: bool) -> list[tuple[Any, ...]]:
    table = SqlTable(hook, "order", "transactions", batch_size=3)
    table.prepare(create=True)
    table.bulk_writes = bulk
    # k1 repeats inside the first batch and k2 in a later one: the last copy of each key wins.
    first = _transaction_rows("p1", ["k1", "k2", "k1", "k3", "k4", "k2", "k5"], "first")
    assert table.load(first, portfolio_id="p1") == 7
    # A rerun over the same keys replaces them, one new key is added.
    assert table.load(_transaction_rows("p1", ["k4", "k6"], "rerun"), portfolio_id="p1") == 2
    got = hook.get_records(
        f"SELECT row_key, note, count, total_worth, fee_price, date, transfer_count FROM {table.quoted_table} "
        "ORDER BY row_key"
    )
    return [tuple(r) for r in got]


def _expected_load() -> list[tuple[Any, ...]]:
    by_key: dict[str, dict[str, Any]] = {}
    for row in _transaction_rows("p1", ["k1", "k2", "k1", "k3", "k4", "k2", "k5"], "first") + _transaction_rows(
        "p1", ["k4", "k6"], "rerun"
    ):
        by_key[row["row_key"]] = row
    return [
        (k, r["note"], r["count"], r["total_worth"], r["fee_price"], r["date"], r["transfer_count"])
        for k, r in sorted(by_key.items())
    ]


#: Records the statement behind every INSERT into "order" (current_query() is the client's statement).
_STATEMENT_LOG = [
    "CREATE TABLE statement_log (q TEXT)",
    "CREATE FUNCTION log_statement() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN INSERT INTO statement_log VALUES (current_query()); RETURN NULL; END $$",
    'CREATE TRIGGER log_insert AFTER INSERT ON "order" FOR EACH STATEMENT EXECUTE FUNCTION log_statement()',
]


def test_sql_table_loads_through_copy_on_postgres_with_the_last_copy_winning(postgres_conn_id: str) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=postgres_conn_id)
    SqlTable(hook, "order", "transactions").prepare(create=True)
    hook.run(_STATEMENT_LOG, autocommit=True)
    found = _load_and_read(hook, bulk=True)
    assert found == _expected_load()
    assert found[0][:2] == ("k1", "first new\nline and carriage\r\nreturn")  # k1's second copy
    statements = [q for (q,) in hook.get_records("SELECT q FROM statement_log")]
    # One INSERT ... SELECT from the COPY stage per batch: 3 batches of the first load, 1 of the rerun.
    assert len(statements) == 4
    assert all("FROM coinstats_bulk_stage ON CONFLICT" in q for q in statements), statements


def test_copy_and_executemany_loads_agree_on_postgres(postgres_conn_id: str) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=postgres_conn_id)
    with_copy = _load_and_read(hook, bulk=True)
    hook.run('DROP TABLE "order"', autocommit=True)
    assert with_copy and with_copy == _load_and_read(hook, bulk=False)


# --- MariaDB --------------------------------------------------------------------------------------


@pytest.fixture
def maria_conn(mariadb_conn_id: str) -> Iterator[Any]:
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    conn = MySqlHook(mysql_conn_id=mariadb_conn_id).get_conn()
    try:
        cur = conn.cursor()
        cur.execute(
            "CREATE TABLE `order` (k VARCHAR(64) PRIMARY KEY, s LONGTEXT, d DECIMAL(38, 18), ts DATETIME(6), "
            "n BIGINT, b BOOLEAN)"
        )
        conn.commit()
        yield conn
    finally:
        conn.close()


def _maria_rows() -> list[tuple[Any, ...]]:
    # SqlTable adapts timestamps to naive UTC for DATETIME(6); the writer gets adapted tuples.
    return [
        (k, s, d, None if ts is None else ts.astimezone(UTC).replace(tzinfo=None), n, b)
        for k, s, d, ts, n, b in awkward_rows()
    ]


def _maria_read(conn: Any) -> dict[str, tuple[Any, ...]]:
    cur = conn.cursor()
    found = _read_back(cur, "`order`")
    # BOOLEAN is TINYINT(1) in MariaDB: 1/0 back.
    return {k: (*v[:5], None if v[5] is None else bool(v[5])) for k, v in found.items()}


def _session_status(conn: Any, name: str) -> int:
    cur = conn.cursor()
    cur.execute(f"SHOW SESSION STATUS LIKE '{name}'")
    return int(cur.fetchone()[1])


def test_multi_row_insert_writes_awkward_values_exactly_in_one_statement(maria_conn: Any) -> None:
    rows = _maria_rows()
    before = _session_status(maria_conn, "Com_insert")
    MultiRowInsert("`order`", COLUMNS, "%s")(maria_conn.cursor(), rows)
    statements = _session_status(maria_conn, "Com_insert") - before
    maria_conn.commit()
    found = _maria_read(maria_conn)
    assert found == {row[0]: row for row in rows}
    assert found["k5"][1] == "\\N" and found["k-null"] == ("k-null", None, None, None, None, None)
    assert statements == 1


def test_multi_row_insert_stays_under_max_allowed_packet(maria_conn: Any) -> None:
    cur = maria_conn.cursor()
    cur.execute("SELECT @@max_allowed_packet")
    packet = int(cur.fetchone()[0])
    # Quotes double when escaped: 24 rows of a quarter packet of quotes are 12 packets of SQL.
    big = "'" * (packet // 4)
    rows = [(f"k{i:02d}", big, Decimal(i), None, i, None) for i in range(24)]
    before = _session_status(maria_conn, "Com_insert")
    MultiRowInsert("`order`", COLUMNS, "%s")(cur, rows)
    statements = _session_status(maria_conn, "Com_insert") - before
    maria_conn.commit()
    cur.execute("SELECT COUNT(*), MIN(LENGTH(s)), MAX(LENGTH(s)), SUM(s = %s) FROM `order`", (big,))
    assert cur.fetchone() == (24, len(big), len(big), 24)
    assert 12 <= statements <= 24


def test_mariadb_executemany_already_sends_multi_row_statements(maria_conn: Any) -> None:
    """Why MySQL registers no bulk writer: the driver's executemany (mysqlclient) batches itself."""
    rows = [(f"k{i:04d}", f"text, 'quoted' {i}\n", Decimal(i) / 7, None, i, True) for i in range(1000)]
    rows = [(k, s, d.quantize(Decimal("1E-18")), ts, n, b) for k, s, d, ts, n, b in rows]
    write = bulk_writer("mysql", "`order`", COLUMNS, "%s")
    assert isinstance(write, ExecuteMany)
    before = _session_status(maria_conn, "Com_insert")
    write(maria_conn.cursor(), rows)
    statements = _session_status(maria_conn, "Com_insert") - before
    maria_conn.commit()
    assert _maria_read(maria_conn) == {row[0]: row for row in rows}
    assert 1 <= statements <= 20  # 1,000 rows in 64 KiB statements


# --- pure functions -------------------------------------------------------------------------------


def test_copy_text_never_writes_a_float_or_an_unescaped_separator() -> None:
    assert copy_text(Decimal("1E-18")) == "0.000000000000000001"
    assert copy_text(Decimal("1.10E+3")) == "1100"
    assert copy_text("a\tb\nc\\N\r") == "a\\tb\\nc\\\\N\\r"
    assert copy_text(None) == "\\N"
    assert copy_text(False) == "f"
    assert copy_text(datetime(2025, 1, 1, 5, 30, tzinfo=IST)) == "2025-01-01T05:30:00+05:30"


def test_writers_build_statements_from_quoted_names_as_given() -> None:
    assert (
        insert_statement('"order"', ['"rank"', "b"], "?", rows=2)
        == 'INSERT INTO "order" ("rank", b) VALUES (?, ?), (?, ?)'
    )
    assert PostgresCopy('"order"', ['"rank"']).statement == 'COPY "order" ("rank") FROM STDIN'
    assert bulk_upserter("sqlite", '"t"', ["a"], ["a"], "?") is None
    assert isinstance(bulk_writer("postgresql", '"t"', ["a"], "%s", bulk=False), ExecuteMany)
