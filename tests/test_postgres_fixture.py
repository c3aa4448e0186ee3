"""The Postgres fixtures (tests/postgres_fixtures.py) work through Airflow's PostgresHook on both Airflow lines."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest


def test_hook_reaches_the_server(postgres_conn_id: str) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=postgres_conn_id)
    assert hook.get_records("select 1") == [(1,)]


def test_connection_is_a_postgres_dbapi_connection(postgres_conn_id: str) -> None:
    """Code that looks the connection up generically (as load operators do) gets a PostgresHook."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    try:
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 3.0 has no BaseHook in the Task SDK yet
        from airflow.hooks.base import BaseHook

    conn = BaseHook.get_connection(postgres_conn_id)
    assert conn.conn_type == "postgres"
    hook = conn.get_hook()
    assert isinstance(hook, DbApiHook)
    assert isinstance(hook, PostgresHook)


def test_create_insert_read_back(postgres_conn_id: str, postgres_test_db_uri: str) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=postgres_conn_id)
    # The hook talks to this test's own database, not the shared one in COINSTATS_TEST_POSTGRES_URI.
    assert hook.get_first("select current_database()") == (urlsplit(postgres_test_db_uri).path.lstrip("/"),)
    hook.run("create table coins (id text primary key, price numeric not null)")
    hook.insert_rows("coins", [("bitcoin", 100000.5), ("ethereum", 3000)], target_fields=["id", "price"])
    rows = hook.get_records("select id, price::float from coins order by id")
    assert rows == [("bitcoin", 100000.5), ("ethereum", 3000.0)]


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_starts_with_an_empty_database(postgres_conn_id: str, run: int) -> None:
    """Run twice: the table the first run creates is gone in the second, so tests cannot see each other's data."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=postgres_conn_id)
    assert hook.get_records("select tablename from pg_tables where schemaname = 'public'") == []
    hook.run("create table leftover (n int)")
    hook.run("insert into leftover values (%s)", parameters=(run,))
    assert hook.get_records("select n from leftover") == [(run,)]
