"""Test set-up: an isolated AIRFLOW_HOME, set before Airflow is imported, and the sandbox fixtures.

Connections come from ``AIRFLOW_CONN_*`` environment variables, the only source a plain pytest
process sees under the Task SDK.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="coinstats-airflow-home-"))
# dag.test() only runs DAGs whose file is inside the DAGs folder: gather the example DAGs and the
# test-only DAGs into one.
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()
for source in [*sorted((ROOT / "example_dags").glob("*.py")), *sorted((ROOT / "tests" / "dags").glob("*.py"))]:
    shutil.copy(source, DAGS_FOLDER / source.name)
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["COINSTATS_EXAMPLE_POKE_INTERVAL"] = "0.3"
# The provider's timing floors (1 s between polls, 10 s before a trigger's first poll) protect real
# deployments; the suite polls a local sandbox every 0.3 s and needs no scheduler race protection
# under dag.test(). tests/sensors/test_timing_floors.py proves the defaults with these removed.
os.environ["AIRFLOW__COINSTATS__MIN_POLL_INTERVAL"] = "0.05"
os.environ["AIRFLOW__COINSTATS__MIN_FIRST_POLL_DELAY"] = "0"
#: Where the example warehouse DAG writes its files (read when the DAG file is parsed).
EXPORT_PATH = AIRFLOW_HOME / "export"
os.environ["COINSTATS_EXAMPLE_EXPORT_PATH"] = str(EXPORT_PATH)

pytest_plugins = ["airflow_provider_coinstats.sandbox.pytest_plugin", "tests.postgres_fixtures", "tests.s3_fixtures"]

#: Retry timing for tests: the same policy, with millisecond backoff so retries do not slow the suite.
FAST_RETRY = {
    "timeout": 5,
    "max_attempts": 5,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "retry_after_max": 5,
}


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


@dataclass
class DagResult:
    """What a ``dag.test()`` run left in the metadata DB."""

    run_id: str
    state: str
    #: (task_id, map_index) -> (state, try_number)
    tasks: dict[tuple[str, int], tuple[str | None, int]]
    #: (task_id, map_index, key) -> value
    xcoms: dict[tuple[str, int, str], Any]

    def state_of(self, task_id: str, map_index: int = -1) -> str | None:
        return self.tasks[(task_id, map_index)][0]

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        return self.xcoms[(task_id, map_index, key)]


_DAGS: dict[str, Any] = {}


def load_dag(dag_id: str) -> Any:
    """The DAG object from the DAGs folder (files imported once per session)."""
    if not _DAGS:
        from airflow.sdk import DAG

        for path in sorted(DAGS_FOLDER.glob("*.py")):
            spec = importlib.util.spec_from_file_location(f"cs_dagfile_{path.stem}", path)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for value in vars(module).values():
                if isinstance(value, DAG):
                    _DAGS[value.dag_id] = value
    return _DAGS[dag_id]


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated SQLite metadata DB in the temp AIRFLOW_HOME."""
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def run_dag(airflow_db: None) -> Callable[..., DagResult]:
    """Run a DAG from the DAGs folder with ``dag.test()`` and read back task states and XComs."""

    def run(dag_id: str, conf: dict[str, Any] | None = None) -> DagResult:
        from airflow.models import TaskInstance
        from airflow.utils.session import create_session

        try:
            from airflow.models.xcom import XComModel as XComRow
        except ImportError:  # Airflow 3.0
            from airflow.models.xcom import BaseXCom as XComRow

        from airflow_provider_coinstats._compat import prepare_dag_test

        dag = load_dag(dag_id)
        prepare_dag_test(dag)
        dag_run = dag.test(run_conf=conf)
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
    """Tests rebind ``coinstats_default`` to other keys; the triggers' per-process cache must not carry over."""
    from airflow_provider_coinstats.triggers import portfolio

    portfolio._settings_cache.clear()
