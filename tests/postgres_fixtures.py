"""Pytest fixtures for tests against a real PostgreSQL server, used through Airflow's ``PostgresHook``.

Enable with ``pytest_plugins = ["tests.postgres_fixtures"]`` in ``tests/conftest.py``.

The server comes from ``COINSTATS_TEST_POSTGRES_URI`` (``.ci/run`` starts one with ``.ci/postgres.sh``).
Without it the tests skip, unless ``COINSTATS_REQUIRE_POSTGRES=1`` (set by CI), where they fail: a CI
run must not pass by skipping them.

Isolation: every test that asks for ``postgres_conn_id`` gets a database of its own, created empty and
dropped (``WITH (FORCE)``, so connections a test left open do not block it) after the test. A whole
database rather than a schema plus ``search_path`` because every client path then sees it unchanged:
``get_conn``, the SQLAlchemy engine, ``get_uri()`` and explicit ``public.`` names, on both provider
lines (psycopg2 on Airflow 3.0, psycopg 3 on 3.3). It also keeps concurrent pytest runs against one
server apart. It costs about 0.1 s per test (``CREATE DATABASE``), paid only by tests that use it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.helpers import server_uri

URI_ENV = "COINSTATS_TEST_POSTGRES_URI"
REQUIRE_ENV = "COINSTATS_REQUIRE_POSTGRES"
#: The Airflow connection id the ``postgres_conn_id`` fixture defines (via ``AIRFLOW_CONN_<ID>``).
POSTGRES_CONN_ID = "coinstats_test_postgres"
#: Per-test database names start with this, so leftovers of a killed run are easy to spot.
TEST_DB_PREFIX = "coinstats_t_"


@pytest.fixture(scope="session")
def postgres_uri() -> str:
    """The server's URI from ``COINSTATS_TEST_POSTGRES_URI`` (a user allowed to create databases)."""
    return server_uri(URI_ENV, REQUIRE_ENV, "PostgreSQL", ".ci/postgres.sh")


def _with_database(uri: str, database: str) -> str:
    """``uri`` pointing at ``database``, its credentials, host and query parameters kept."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _admin_connection(uri: str) -> Any:
    # Imported here, not at module level: as a conftest plugin this module loads for every test run,
    # and must not break the suite where the Postgres test extra is missing.
    import psycopg2

    conn = psycopg2.connect(uri, connect_timeout=10)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    return conn


@pytest.fixture
def postgres_test_db_uri(postgres_uri: str) -> Iterator[str]:
    """The URI of a new, empty database for this test only; dropped afterwards."""
    from psycopg2 import sql

    name = f"{TEST_DB_PREFIX}{uuid.uuid4().hex[:16]}"
    admin = _admin_connection(postgres_uri)
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield _with_database(postgres_uri, name)
    finally:
        try:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            admin.close()


@pytest.fixture
def postgres_conn_id(postgres_test_db_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Airflow connection id of type ``postgres`` for this test's own database (see module docstring).

    Use it as ``PostgresHook(postgres_conn_id=postgres_conn_id)`` or as any operator's ``conn_id``.
    """
    # A plain pytest process resolves connections from AIRFLOW_CONN_* variables; the scheme
    # ``postgres`` is the connection type, so Airflow picks PostgresHook for DbApiHook lookups.
    airflow_uri = urlunsplit(urlsplit(postgres_test_db_uri)._replace(scheme="postgres"))
    monkeypatch.setenv(f"AIRFLOW_CONN_{POSTGRES_CONN_ID.upper()}", airflow_uri)
    return POSTGRES_CONN_ID
