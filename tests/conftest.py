"""Fixtures: the sandbox, the ``coinstats_default`` connection, a migrated Airflow DB and ``run_dag``.

The isolated AIRFLOW_HOME is made in :func:`pytest_configure`, before any test module imports
Airflow; shared constants and helpers live in :mod:`tests.helpers`.

Connections come from ``AIRFLOW_CONN_*`` environment variables, the only source a plain pytest
process sees under the Task SDK.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FAST_RETRY, ROOT, DagResult, load_dag

pytest_plugins = [
    "airflow_provider_coinstats.sandbox.pytest_plugin",
    "tests.postgres_fixtures",
    "tests.mariadb_fixtures",
    "tests.s3_fixtures",
]


def pytest_configure(config: pytest.Config) -> None:
    """An isolated AIRFLOW_HOME with a DAGs folder, set before any test module imports Airflow."""
    home = Path(tempfile.mkdtemp(prefix="coinstats-airflow-home-"))
    # dag.test() only runs DAGs whose file is inside the DAGs folder: gather the example DAGs and
    # the test-only DAGs into one.
    dags = home / "dags"
    dags.mkdir()
    for source in [*sorted((ROOT / "example_dags").glob("*.py")), *sorted((ROOT / "tests" / "dags").glob("*.py"))]:
        shutil.copy(source, dags / source.name)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "COINSTATS_EXAMPLE_POKE_INTERVAL": "0.3",
            # The provider's timing floors (1 s between polls, 10 s before a trigger's first poll)
            # protect real deployments; the suite polls a local sandbox every 0.3 s and needs no
            # scheduler-race protection under dag.test(). tests/sensors/test_timing_floors.py
            # proves the defaults with these removed.
            "AIRFLOW__COINSTATS__MIN_POLL_INTERVAL": "0.05",
            "AIRFLOW__COINSTATS__MIN_FIRST_POLL_DELAY": "0",
            # OpenLineage is off unless a test turns it on (tests/transfers/test_lineage.py): without
            # this, a developer's OPENLINEAGE_URL or openlineage.yml would make every dag.test() emit.
            "AIRFLOW__OPENLINEAGE__DISABLED": "true",
            # Where the example warehouse DAG writes its files (read when the DAG file is parsed).
            "COINSTATS_EXAMPLE_EXPORT_PATH": str(home / "export"),
        }
    )


@pytest.fixture
def sandbox(coinstats_sandbox: Any) -> Any:
    """The reset sandbox, for tests that drive it over raw HTTP."""
    return coinstats_sandbox


@pytest.fixture
def http(sandbox: Any) -> Iterator[Any]:
    """A requests session carrying the sandbox's API key."""
    import requests

    session = requests.Session()
    session.headers["X-API-KEY"] = sandbox.api_key
    yield session
    session.close()


@pytest.fixture
def coinstats_conn(coinstats_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox, reset, with ``coinstats_default`` pointing at it."""
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_sandbox.airflow_connection(extra=FAST_RETRY))
    return coinstats_sandbox


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated SQLite metadata DB in the temp AIRFLOW_HOME."""
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def run_dag(airflow_db: None) -> Callable[..., DagResult]:
    """Run a DAG from the DAGs folder with ``dag.test()`` and read back task states and XComs."""

    def run(dag_id: str, conf: dict[str, Any] | None = None, **test_kwargs: Any) -> DagResult:
        from airflow.models import TaskInstance
        from airflow.utils.session import create_session

        try:
            from airflow.models.xcom import XComModel as XComRow
        except ImportError:  # Airflow 3.0
            from airflow.models.xcom import BaseXCom as XComRow

        from airflow_provider_coinstats._compat import prepare_dag_test

        dag = load_dag(dag_id)
        prepare_dag_test(dag)
        dag_run = dag.test(run_conf=conf, **test_kwargs)  # e.g. logical_date=...
        with create_session() as session:
            tis = session.query(TaskInstance).filter(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run.run_id
            )
            tasks = {(ti.task_id, ti.map_index): (ti.state, ti.try_number) for ti in tis}
            rows = session.query(XComRow).filter(XComRow.dag_id == dag_id, XComRow.run_id == dag_run.run_id)
            xcoms = {(x.task_id, x.map_index, x.key): x.value for x in rows}
        return DagResult(dag_run.run_id, str(dag_run.state), tasks, xcoms)

    return run


@pytest.fixture(autouse=True)
def _fresh_trigger_settings() -> None:
    """Tests rebind ``coinstats_default`` to other keys; the async hook's per-process cache must not carry over."""
    from airflow_provider_coinstats.hooks import coinstats_async

    coinstats_async._settings_cache.clear()
