"""The MariaDB fixtures (tests/mariadb_fixtures.py) work through Airflow's MySqlHook on both Airflow lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_connection_is_a_mysql_hook_on_this_tests_own_database(
    mariadb_conn_id: str, mariadb_test_db_uri: str
) -> None:
    """Code that looks the connection up generically (as the load operator does) gets a MySqlHook."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    from airflow_provider_coinstats._compat import BaseHook

    hook = BaseHook.get_connection(mariadb_conn_id).get_hook()
    assert isinstance(hook, DbApiHook)
    assert isinstance(hook, MySqlHook)
    assert hook.dialect_name == "mysql"  # MariaDB is served by the mysql dialect
    assert hook.get_first("SELECT DATABASE()") == (urlsplit(mariadb_test_db_uri).path.lstrip("/"),)
    assert "mariadb" in str(hook.get_first("SELECT VERSION()")[0]).lower()


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_starts_with_an_empty_database(mariadb_conn_id: str, run: int) -> None:
    """Run twice: the table the first run creates is gone in the second."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    hook = MySqlHook(mysql_conn_id=mariadb_conn_id)
    assert hook.get_records("SHOW TABLES") == ()
    hook.run("CREATE TABLE leftover (n INT)")
    hook.run("INSERT INTO leftover VALUES (%s)", parameters=(run,))
    assert hook.get_records("SELECT n FROM leftover") == ((run,),)


@pytest.mark.parametrize(("require", "outcome"), [("1", "error"), ("", "skipped")])
def test_without_a_server_the_tests_skip_unless_required(tmp_path: Path, require: str, outcome: str) -> None:
    """CI sets COINSTATS_REQUIRE_MARIADB=1: a missing server then fails the run instead of skipping."""
    env = {k: v for k, v in os.environ.items() if k not in ("COINSTATS_TEST_MARIADB_URI", "PYTEST_ADDOPTS")}
    env["COINSTATS_REQUIRE_MARIADB"] = require
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "own_database", __file__]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert f"1 {outcome}" in result.stdout, result.stdout[-2000:]  # a fixture failure is an error
    if outcome == "error":
        assert "COINSTATS_REQUIRE_MARIADB=1 but COINSTATS_TEST_MARIADB_URI is not set" in result.stdout
