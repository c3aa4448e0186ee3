"""Where a DAG run could leave a secret, as text to search: one copy for every secrets test.

``run_haystacks`` gathers the console, log records, task log files, this run's XCom, rendered
template fields, trigger rows (and next_kwargs), serialized DAG rows and the sandbox's request log;
``leaks`` says which secret was found where, with the text around it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import airflow
from packaging.version import Version

from tests.helpers import airflow_home, load_dag

AIRFLOW_3_0 = Version(airflow.__version__) < Version("3.1")


def database_haystacks(dag_id: str, run_id: str, skip_xcom_of: Collection[str] = ()) -> dict[str, str]:
    """XCom (except the tasks in ``skip_xcom_of``), rendered fields, trigger and serialized DAG rows of this run."""
    from airflow.models import TaskInstance
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel as XComRow
    except ImportError:  # Airflow 3.0
        from airflow.models.xcom import BaseXCom as XComRow

    def dump(value: Any) -> str:
        return json.dumps(value, default=str, sort_keys=True)

    with create_session() as session:
        xcoms = [
            dump([x.task_id, x.map_index, x.key, x.value])
            for x in session.query(XComRow).filter(XComRow.dag_id == dag_id, XComRow.run_id == run_id)
            if x.task_id not in skip_xcom_of
        ]
        rtif = [
            dump([r.task_id, r.map_index, r.rendered_fields])
            for r in session.query(RenderedTaskInstanceFields).filter(
                RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run_id
            )
        ]
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        triggers = [dump([t.classpath, t.kwargs]) for t in session.query(Trigger)]
        triggers += [dump(ti.next_kwargs) for ti in tis if ti.next_kwargs]
        dag_rows = session.query(SerializedDagModel).filter(SerializedDagModel.dag_id == dag_id)
        serialized = [dump(row.data) for row in dag_rows]
    if not serialized:
        # Airflow 3.0's dag.test() serializes the DAG in memory only (the DAG processor writes the
        # row in a deployment): search what that row would hold.
        from airflow.serialization.serialized_objects import SerializedDAG

        serialized = [dump(SerializedDAG.to_dict(load_dag(dag_id)))]
    return {
        "xcom rows": "\n".join(xcoms),
        "rendered template fields": "\n".join(rtif),
        "trigger rows": "\n".join(triggers),
        "serialized DAG rows": "\n".join(serialized),
    }


def log_files() -> str:
    """Every task log file under the test AIRFLOW_HOME."""
    return "\n".join(p.read_text(errors="replace") for p in Path(airflow_home()).rglob("*.log") if p.is_file())


def console_text(captured: str) -> str:
    """The captured console, without Airflow 3.0's in-process comms lines that echo MaskSecret values.

    Airflow 3.0's dag.test() comms debug-log every message a task sends, including each
    MaskSecret request, value and all. Only the in-process test comms do this (a deployment's
    supervisor omits that body), and 3.1 dropped it; everything else on the console is searched.
    """
    if not AIRFLOW_3_0:
        return captured
    return "\n".join(line for line in captured.splitlines() if "MaskSecret(value=" not in line)


def run_haystacks(
    dag_id: str,
    run_id: str,
    *,
    console: str,
    log_records: str,
    sandbox_requests: Iterable[Any],
    skip_xcom_of: Collection[str] = (),
) -> dict[str, str]:
    """Every place a run of ``dag_id`` could have written a secret, by name."""
    return {
        "console": console_text(console),
        "log records": log_records,
        "log files": log_files(),
        **database_haystacks(dag_id, run_id, skip_xcom_of),
        "sandbox request log": json.dumps([r.to_dict() for r in sandbox_requests]),
    }


def leaks(secrets: Iterable[str], haystacks: Mapping[str, str]) -> list[str]:
    """``"<secret> in <where>: ...context..."`` for every secret found in a haystack."""
    return [
        f"{secret} in {where}: ...{text[max(0, text.index(secret) - 300) : text.index(secret) + 60]}"
        for where, text in haystacks.items()
        for secret in sorted(secrets)
        if secret in text
    ]
