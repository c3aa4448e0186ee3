"""Pytest fixtures for tests against a real MariaDB server, used through Airflow's ``MySqlHook``.

Enable with ``pytest_plugins = ["tests.mariadb_fixtures"]`` in ``tests/conftest.py``.

The server comes from ``COINSTATS_TEST_MARIADB_URI`` (``.ci/run`` starts one with ``.ci/mariadb.sh``).
Without it the tests skip, unless ``COINSTATS_REQUIRE_MARIADB=1`` (set by CI), where they fail: a CI
run must not pass by skipping them.

Isolation: every test that asks for ``mariadb_conn_id`` gets a database (MySQL's schema) of its own,
created empty and dropped after the test, like ``tests/postgres_fixtures.py`` does for PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.helpers import server_uri

URI_ENV = "COINSTATS_TEST_MARIADB_URI"
REQUIRE_ENV = "COINSTATS_REQUIRE_MARIADB"
#: The Airflow connection id the ``mariadb_conn_id`` fixture defines (via ``AIRFLOW_CONN_<ID>``).
MARIADB_CONN_ID = "coinstats_test_mariadb"
#: Per-test database names start with this, so leftovers of a killed run are easy to spot.
TEST_DB_PREFIX = "coinstats_t_"


@pytest.fixture(scope="session")
def mariadb_uri() -> str:
    """The server's URI from ``COINSTATS_TEST_MARIADB_URI`` (a user allowed to create databases)."""
    return server_uri(URI_ENV, REQUIRE_ENV, "MariaDB", ".ci/mariadb.sh")


def mariadb_admin(uri: str) -> Any:
    """An autocommit mysqlclient connection to the server of ``uri`` (no database selected)."""
    # Imported here: as a conftest plugin this module loads for every test run.
    import MySQLdb

    parts = urlsplit(uri)
    return MySQLdb.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "",
        password=parts.password or "",
        connect_timeout=10,
        autocommit=True,
    )


@pytest.fixture
def mariadb_test_db_uri(mariadb_uri: str) -> Iterator[str]:
    """The URI of a new, empty database for this test only; dropped afterwards."""
    name = f"{TEST_DB_PREFIX}{uuid.uuid4().hex[:16]}"
    admin = mariadb_admin(mariadb_uri)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield urlunsplit(urlsplit(mariadb_uri)._replace(path=f"/{name}"))
    finally:
        try:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            admin.close()


@pytest.fixture
def mariadb_conn_id(mariadb_test_db_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Airflow connection id of type ``mysql`` (``MySqlHook``) for this test's own database."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{MARIADB_CONN_ID.upper()}", mariadb_test_db_uri)
    return MARIADB_CONN_ID
