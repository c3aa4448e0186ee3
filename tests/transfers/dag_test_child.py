"""Run one DAG with ``dag.test()`` in this process, then print its task states as one JSON line.

The child process of the kill tests: Airflow's task runner installs its SIGTERM handler in the
process that runs the task, so the test signals this process. It inherits the parent test's
environment: ``AIRFLOW_HOME`` with a migrated metadata DB, the DAGs folder and the connections.

Usage::

    python -m tests.transfers.dag_test_child <dag file> <dag id> '<run conf as JSON>'
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path


def main(dag_file: str, dag_id: str, conf: str) -> None:
    from airflow.models import TaskInstance
    from airflow.sdk import DAG
    from airflow.utils.session import create_session

    from airflow_provider_coinstats._compat import prepare_dag_test

    spec = importlib.util.spec_from_file_location(f"cs_dagfile_{Path(dag_file).stem}", dag_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (dag,) = [v for v in vars(module).values() if isinstance(v, DAG) and v.dag_id == dag_id]
    prepare_dag_test(dag)
    dag_run = dag.test(run_conf=json.loads(conf))
    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run.run_id)
        tasks = {ti.task_id: [ti.state, ti.try_number] for ti in tis}
    print(json.dumps({"state": str(dag_run.state), "tasks": tasks}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
    sys.stdout.flush()
    sys.stderr.flush()
    # A real task process ends the same way: the supervisor's _fork_main (airflow/sdk/execution_time/
    # supervisor.py) "always exits via os._exit()". A normal exit would add seconds of garbage
    # collection over Airflow's heap (interpreter finalization) to the time measured.
    os._exit(0)
