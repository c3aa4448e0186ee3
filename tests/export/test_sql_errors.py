"""Database errors are classified: only a missing table or columns is permanent; the rest is retryable.

Every failure is real: SQLite files locked by a second connection, a PostgreSQL server holding a
table lock, terminating a load's session, refusing a connection on a closed port. Retryable means
:class:`CoinStatsDestinationError`, which is not in ``PERMANENT_ERRORS``, so Airflow task retries
apply; it keeps the database's own message and chains the driver's exception.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_coinstats.exceptions import PERMANENT_ERRORS, CoinStatsDestinationError
from airflow_provider_coinstats.export.sql import SqlTable, is_missing_table_error
from tests.export.helpers import context, data_requests, db_hook, expected_rows, sql_export, table_rows

WAREHOUSE = "coinstats_test_warehouse"


def assert_retryable(error: CoinStatsDestinationError, message: str) -> None:
    assert not isinstance(error, PERMANENT_ERRORS)
    assert error.__cause__ is not None  # the driver's own exception, chained
    assert message in str(error)
    assert message in " ".join(str(error.__cause__).split())  # the driver's message, on one line


@pytest.fixture
def sqlite_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``coinstats_test_warehouse``: a SQLite file of this test's own."""
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE.upper()}", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    return database


@pytest.fixture
def exclusive_lock(sqlite_warehouse: Path) -> Iterator[sqlite3.Connection]:
    """A second connection holding ``BEGIN EXCLUSIVE`` on the warehouse: nobody else reads or writes."""
    holder = sqlite3.connect(sqlite_warehouse, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield holder
    holder.rollback()
    holder.close()


def postgres_conn(monkeypatch: pytest.MonkeyPatch, uri: str, **extra: str) -> str:
    """``coinstats_test_warehouse`` as a postgres connection to ``uri``, with driver options in ``extra``."""
    parts = urlsplit(uri)
    connection = {
        "conn_type": "postgres",
        "host": parts.hostname,
        "port": parts.port,
        "login": parts.username,
        "password": parts.password,
        "schema": parts.path.lstrip("/"),
        "extra": extra,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE.upper()}", json.dumps(connection))
    return WAREHOUSE


# --- SQLite --------------------------------------------------------------------------------------------


def test_a_load_into_a_locked_sqlite_database_fails_retryably(
    coinstats_conn: Any, portfolio: str, sqlite_warehouse: Path
) -> None:
    table = SqlTable(db_hook(WAREHOUSE), "coinstats_coins", "coins")
    table.prepare(create=True)
    rows = expected_rows("coins", portfolio)
    holder = sqlite3.connect(sqlite_warehouse, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CoinStatsDestinationError) as raised:
            table.load(rows, portfolio_id=portfolio)
    finally:
        holder.rollback()
        holder.close()
    assert_retryable(raised.value, "database is locked")
    assert str(raised.value).startswith("table: cannot write coinstats_coins: OperationalError: database is locked")
    assert table.load(rows, portfolio_id=portfolio) == len(rows)  # once the lock is gone, the same load works


def test_a_locked_sqlite_table_is_not_reported_missing(
    coinstats_conn: Any, portfolio: str, exclusive_lock: sqlite3.Connection
) -> None:
    with pytest.raises(CoinStatsDestinationError) as raised:
        sql_export(WAREHOUSE, portfolio, ["coins"]).execute(context())
    assert_retryable(raised.value, "database is locked")
    assert "does not exist" not in str(raised.value)
    assert data_requests(coinstats_conn) == []


def test_missing_tables_are_recognised_by_what_the_driver_says(sqlite_warehouse: Path) -> None:
    database = sqlite3.connect(sqlite_warehouse)
    with pytest.raises(sqlite3.OperationalError) as missing:
        database.execute("SELECT * FROM nowhere")
    database.close()
    assert is_missing_table_error(missing.value)
    assert not is_missing_table_error(sqlite3.OperationalError("database is locked"))
    assert not is_missing_table_error(sqlite3.OperationalError("no such column: nowhere"))


# --- PostgreSQL ----------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_postgres_connection_fails_retryably_before_any_request(
    coinstats_conn: Any, portfolio: str, postgres_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = urlsplit(postgres_uri)._replace(netloc=f"coinstats:secret@127.0.0.1:{closed_port()}").geturl()
    conn_id = postgres_conn(monkeypatch, refused, connect_timeout="5")
    with pytest.raises(CoinStatsDestinationError) as raised:
        sql_export(conn_id, portfolio, ["coins"]).execute(context())
    assert_retryable(raised.value, "refused")
    assert "secret" not in str(raised.value)
    assert data_requests(coinstats_conn) == []


@contextmanager
def table_locked(database_uri: str, table: str) -> Iterator[None]:
    """Another session holds ``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` on ``table`` inside the block."""
    import psycopg2

    holder = psycopg2.connect(database_uri)
    try:
        with holder.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.parametrize("step", ["prepare", "load"])
def test_a_postgres_lock_timeout_fails_retryably_with_the_server_message(
    coinstats_conn: Any, portfolio: str, postgres_test_db_uri: str, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    conn_id = postgres_conn(monkeypatch, postgres_test_db_uri, options="-c lock_timeout=300")
    table = SqlTable(db_hook(conn_id), "coinstats_coins", "coins")
    table.prepare(create=True)
    rows = expected_rows("coins", portfolio)
    coinstats_conn.state.clear_requests()

    def attempt() -> None:
        if step == "prepare":
            sql_export(conn_id, portfolio, ["coins"]).execute(context())
        else:
            table.load(rows, portfolio_id=portfolio)

    with table_locked(postgres_test_db_uri, "coinstats_coins"), pytest.raises(CoinStatsDestinationError) as raised:
        attempt()
    assert_retryable(raised.value, "canceling statement due to lock timeout")
    if step == "prepare":
        assert "does not exist" not in str(raised.value)
        assert data_requests(coinstats_conn) == []


def test_a_postgres_session_lost_mid_load_fails_retryably_and_keeps_its_message(
    coinstats_conn: Any, portfolio: str, postgres_test_db_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    conn_id = postgres_conn(monkeypatch, postgres_test_db_uri)
    table = SqlTable(db_hook(conn_id), "coinstats_coins", "coins", batch_size=1)
    table.prepare(create=True)
    rows = expected_rows("coins", portfolio)
    assert len(rows) >= 2

    def session_ends_after_the_first_batch() -> Iterator[dict[str, Any]]:
        yield rows[0]
        admin = psycopg2.connect(postgres_test_db_uri)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        admin.close()
        yield from rows[1:]

    with pytest.raises(CoinStatsDestinationError) as raised:
        table.load(session_ends_after_the_first_batch(), portfolio_id=portfolio)
    # The rollback on the dead session fails too; that must not replace the first error's message
    # (psycopg 3 reports the termination, psycopg2 the closed connection).
    lost = " ".join(str(raised.value.__cause__).split())
    assert "terminating connection" in lost or "server closed the connection" in lost
    assert_retryable(raised.value, lost)
    assert table_rows(conn_id, "coins", portfolio) == []


# --- inside Airflow: retries apply, or not -------------------------------------------------------------


def test_the_task_retries_on_a_locked_database_without_spending_credits(
    coinstats_conn: Any, portfolio: str, run_dag: Any, exclusive_lock: sqlite3.Connection
) -> None:
    # retries=1, create_table=False: the lock must not pass for a missing table (no retries).
    result = run_dag("cs_test_export_no_create", conf={"portfolio_id": portfolio})
    assert result.tasks[("load", -1)] == ("failed", 2)
    assert coinstats_conn.state.requests() == []


def test_the_task_fails_without_retries_on_a_missing_table(
    coinstats_conn: Any, portfolio: str, run_dag: Any, sqlite_warehouse: Path
) -> None:
    result = run_dag("cs_test_export_no_create", conf={"portfolio_id": portfolio})  # retries=1, create_table=False
    assert result.tasks[("load", -1)] == ("failed", 1)
    assert coinstats_conn.state.requests() == []
    tables = sqlite3.connect(sqlite_warehouse).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []
