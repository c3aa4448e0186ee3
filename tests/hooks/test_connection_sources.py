"""The async hook finds ``coinstats_default`` wherever users keep it, proven by a deferrable sensor run.

Each test keeps the connection in one place only (the ``AIRFLOW_CONN_*`` variable is removed for
the other two) and runs the deferrable sensor DAG with a real ``dag.test()``: the worker connects
and pokes (409), defers, and the trigger, run by Airflow in this process, must read the same
connection to poll on (409, then data). Witnesses: the DAG run's state and XCom, and the
sandbox's request log, where only the trigger can have made the last two polls.

Under ``dag.test()`` on Airflow 3.3.2 the trigger's async lookup never reaches the metastore
(the in-process supervisor has no ``asend``); before the fix the metastore run failed with
"The conn_id `coinstats_default` isn't defined". The secrets backend is Airflow's own
``LocalFilesystemBackend``, configured through ``AIRFLOW__SECRETS__BACKEND[_KWARGS]`` as a
deployment would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FAST_RETRY, statuses

CONN_ENV = "AIRFLOW_CONN_COINSTATS_DEFAULT"


def _forget_secrets_backends() -> None:
    """Airflow 3.1+ builds a configured secrets backend once per process; 3.0 re-reads its config."""
    try:
        from airflow.sdk.configuration import clear_secrets_backends_cache
    except ImportError:
        return
    clear_secrets_backends_cache()


def _connection_fields(server: Any) -> dict[str, Any]:
    fields: dict[str, Any] = json.loads(server.airflow_connection(extra=FAST_RETRY))
    return fields


@pytest.fixture
def in_metastore(coinstats_sandbox: Any, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``coinstats_default`` as a row of the metastore's connection table (as the UI or CLI creates it)."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    monkeypatch.delenv(CONN_ENV, raising=False)
    fields = _connection_fields(coinstats_sandbox)
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == "coinstats_default").delete()
        session.add(
            Connection(
                conn_id="coinstats_default",
                conn_type=fields["conn_type"],
                host=fields["host"],
                password=fields["password"],
                extra=json.dumps(fields["extra"]),
            )
        )
    yield coinstats_sandbox
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == "coinstats_default").delete()


@pytest.fixture
def in_secrets_backend(coinstats_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``coinstats_default`` in a connections file read by Airflow's ``LocalFilesystemBackend``."""
    monkeypatch.delenv(CONN_ENV, raising=False)
    fields = _connection_fields(coinstats_sandbox)
    fields["extra_dejson"] = fields.pop("extra")
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({"coinstats_default": fields}))
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "airflow.secrets.local_filesystem.LocalFilesystemBackend")
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps({"connections_file_path": str(path)}))
    _forget_secrets_backends()
    yield coinstats_sandbox
    monkeypatch.delenv("AIRFLOW__SECRETS__BACKEND")
    _forget_secrets_backends()


@pytest.fixture
def in_env(coinstats_conn: Any) -> Any:
    """``coinstats_default`` as an ``AIRFLOW_CONN_COINSTATS_DEFAULT`` variable (the suite's default)."""
    return coinstats_conn


def _run_deferrable_sensor(server: Any, run_dag: Callable[..., Any]) -> None:
    server.state.configure(sync_polls=2)

    result = run_dag("cs_test_deferrable")

    assert result.state == "success", result.tasks
    assert result.xcom("wait_for_sync") == result.xcom("connect_wallet")
    # The worker's poke, then the trigger's two polls: the trigger read the connection.
    assert statuses(server, "portfolio_transactions") == [409, 409, 200]


def test_connection_from_an_environment_variable(in_env: Any, run_dag: Any) -> None:
    _run_deferrable_sensor(in_env, run_dag)


def test_connection_from_the_metastore(in_metastore: Any, run_dag: Any) -> None:
    import os

    assert CONN_ENV not in os.environ
    _run_deferrable_sensor(in_metastore, run_dag)


def test_connection_from_a_secrets_backend(in_secrets_backend: Any, run_dag: Any) -> None:
    import os

    assert CONN_ENV not in os.environ
    _run_deferrable_sensor(in_secrets_backend, run_dag)
