"""OpenLineage: what the transfer operators report, in a real dag.test() run and per destination.

The end-to-end test runs the DAG with ``dag.test()`` in a child process
(``tests/transfers/dag_test_child.py``) whose environment configures Airflow's OpenLineage
provider with the ``file`` transport: the listener loads as in a deployment (the suite itself
runs with OpenLineage disabled, see ``tests/conftest.py``), calls
``get_openlineage_facets_on_complete`` and writes every event as one JSON line. The per-destination
tests execute the operators in this process against the sandbox and real databases (SQLite,
PostgreSQL, MariaDB) or moto's S3 server, and call the same method the listener calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_coinstats.export.assets import file_asset
from airflow_provider_coinstats.export.columns import get_schema
from tests.export.helpers import context, file_export, sql_export, table_rows
from tests.helpers import ROOT, dags_folder

WAREHOUSE = "coinstats_test_warehouse"


@pytest.fixture
def sqlite_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE.upper()}", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    return database


def run_with_lineage(portfolio_id: str, export: Path, events: Path) -> dict[str, Any]:
    """``cs_test_lineage`` under ``dag.test()`` in a child process with the file transport; its task states."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW__OPENLINEAGE__DISABLED": "false",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "coinstats-tests",
            # Emission runs beside the task and is cut off after this many seconds: room for a busy machine.
            "AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT": "60",
        }
    )
    conf = json.dumps({"portfolio_id": portfolio_id, "path": str(export)})
    dag_file = dags_folder() / "coinstats_lineage_dags.py"
    command = [sys.executable, "-m", "tests.transfers.dag_test_child", str(dag_file), "cs_test_lineage", conf]
    log = events.with_suffix(".log")
    with log.open("wb") as out:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            child.wait(timeout=240)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise AssertionError(f"dag.test() did not end within 240 s:\n{log.read_text()[-4000:]}") from None
    lines = [line for line in log.read_text().splitlines() if line.startswith('{"state"')]
    assert lines, log.read_text()[-4000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def complete_events(events: Path) -> dict[str, dict[str, Any]]:
    """The COMPLETE event of each task, by task id.

    Child jobs ``<task>.query.<n>`` are left out: under ``dag.test()`` every task runs in one
    process, so the SQL statements Airflow's hook-lineage collector saw in ``load_sql`` are
    reported again at the START of ``export_files`` (in a deployment each task has its own process).
    """
    found = {}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        task = event["job"]["name"].removeprefix("cs_test_lineage.")
        if event["eventType"] == "COMPLETE" and task in ("load_sql", "export_files"):
            found[task] = event
    return found


def as_utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_a_dag_run_emits_inputs_outputs_schema_statistics_and_the_run_facet(
    coinstats_conn: Any,
    portfolio: str,
    sqlite_warehouse: Path,
    airflow_db: None,
    tmp_path: Path,
) -> None:
    namespace, prefix = f"sqlite://{sqlite_warehouse}", "main."
    # An earlier load, so the run's transactions read is incremental and has a watermark to report.
    sql_export(WAREHOUSE, portfolio, ["transactions"]).execute(context())
    watermark = max(as_utc(row["date"]) for row in table_rows(WAREHOUSE, "transactions", portfolio))
    coinstats_conn.state.clear_requests()
    events, export = tmp_path / "events.jsonl", tmp_path / "export"

    result = run_with_lineage(portfolio, export, events)

    assert result["state"] == "success", result
    found = complete_events(events)
    assert set(found) == {"load_sql", "export_files"}, sorted(found)
    api = urlsplit(coinstats_conn.url)
    api_namespace = f"coinstats://{api.hostname}:{api.port}"

    sql = found["load_sql"]
    assert [(i["namespace"], i["name"]) for i in sql["inputs"]] == [
        (api_namespace, f"portfolio/{portfolio}/{d}") for d in ("coins", "transactions")
    ]
    outputs = {o["name"]: o for o in sql["outputs"]}
    assert sorted((o["namespace"], name) for name, o in outputs.items()) == [
        (namespace, f"{prefix}coinstats_{d}") for d in ("coins", "transactions")
    ]
    facet = sql["run"]["facets"]["coinstats_export"]
    assert facet["portfolioId"] == portfolio
    paid = [r for r in coinstats_conn.state.requests() if r.endpoint in ("portfolio_coins", "portfolio_transactions")]
    assert facet["creditsSpent"] == sum(r.credits for r in paid) > 0
    assert facet["creditsSpent"] == sum(d["credits"] for d in facet["datasets"].values())
    for dataset in ("coins", "transactions"):
        output = outputs[f"{prefix}coinstats_{dataset}"]
        assert [f["name"] for f in output["facets"]["schema"]["fields"]] == get_schema(dataset).column_names()
        assert output["outputFacets"]["outputStatistics"]["rowCount"] == facet["datasets"][dataset]["rows"]
    assert facet["datasets"]["coins"]["rows"] == len(table_rows(WAREHOUSE, "coins", portfolio)) > 0
    transactions = facet["datasets"]["transactions"]
    assert as_utc(transactions["incrementalWatermark"]) == watermark
    assert as_utc(transactions["incrementalSince"]) == watermark - timedelta(days=1)

    files = found["export_files"]
    assert [(i["namespace"], i["name"]) for i in files["inputs"]] == [(api_namespace, f"portfolio/{portfolio}/value")]
    (output,) = files["outputs"]
    assert (output["namespace"], output["name"]) == ("file", f"{export}/value")
    (written,) = (export / "value").rglob("*.jsonl")
    statistics = output["outputFacets"]["outputStatistics"]
    assert statistics == {**statistics, "rowCount": 1, "size": written.stat().st_size, "fileCount": 1}
    assert files["run"]["facets"]["coinstats_export"]["datasets"]["value"]["rows"] == 1

    text = events.read_text()
    assert text and coinstats_conn.api_key not in text


def expected_sql_dataset(conn_id: str, table: str) -> tuple[str, str]:
    """(namespace, name) the naming spec gives ``table``, read from the connection's own definition."""
    value = os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]
    if value.startswith("{"):  # the SQLite warehouse: a JSON connection holding the file path
        return f"sqlite://{json.loads(value)['host']}", f"main.{table}"
    uri = urlsplit(value)
    database = uri.path.strip("/")
    if uri.scheme == "postgres":
        return f"postgres://{uri.hostname}:{uri.port}", f"{database}.public.{table}"
    assert uri.scheme == "mysql", value
    return f"mysql://{uri.hostname}:{uri.port}", f"{database}.{table}"


def test_sql_outputs_follow_the_naming_spec_on_every_database(
    coinstats_conn: Any, portfolio: str, warehouse: str
) -> None:
    sql_export(warehouse, portfolio, ["transactions"]).execute(context())  # the watermark's source
    newest = max(as_utc(row["date"]) for row in table_rows(warehouse, "transactions", portfolio))
    operator = sql_export(warehouse, portfolio, ["coins", "transactions"])
    summary = operator.execute(context())
    coinstats_conn.state.clear_requests()

    lineage = operator.get_openlineage_facets_on_complete(None)

    assert coinstats_conn.state.requests() == []  # lineage sends no request of its own
    assert [(o.namespace, o.name) for o in lineage.outputs] == [
        expected_sql_dataset(warehouse, f"coinstats_{d}") for d in ("coins", "transactions")
    ]
    for output, dataset in zip(lineage.outputs, ("coins", "transactions"), strict=True):
        assert output.outputFacets["outputStatistics"].rowCount == summary["datasets"][dataset]["rows"]
        assert [f.name for f in output.facets["schema"].fields] == get_schema(dataset).column_names()
    facet = lineage.run_facets["coinstats_export"]
    assert facet.creditsSpent == summary["credits_spent"] > 0
    assert as_utc(facet.datasets["transactions"]["incrementalWatermark"]) == newest


def test_history_tables_report_the_snapshot_column_and_date(
    coinstats_conn: Any, portfolio: str, warehouse: str
) -> None:
    operator = sql_export(warehouse, portfolio, ["value"], history=True)
    now = datetime.now(UTC)
    run = context() | {"logical_date": now}
    run["dag_run"].run_after = now
    summary = operator.execute(run)
    lineage = operator.get_openlineage_facets_on_complete(None)
    (output,) = lineage.outputs
    assert [f.name for f in output.facets["schema"].fields][:3] == ["portfolio_id", "extracted_at", "snapshot_date"]
    snapshot = lineage.run_facets["coinstats_export"].datasets["value"]["snapshotDate"]
    assert snapshot == summary["datasets"]["value"]["snapshot_date"] is not None


@pytest.mark.parametrize("where", ["local", "s3"])
def test_file_outputs_are_named_as_airflow_translates_their_asset(
    coinstats_conn: Any, portfolio: str, tmp_path: Path, request: pytest.FixtureRequest, where: str
) -> None:
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        operator = file_export(f"s3://{bucket}/exports", portfolio, ["coins"], storage_conn_id="coinstats_test_s3")
        expected = (f"s3://{bucket}", "exports/coins")
    else:
        operator = file_export(tmp_path / "exports", portfolio, ["coins"])
        expected = ("file", f"{tmp_path}/exports/coins")
    summary = operator.execute(context())

    lineage = operator.get_openlineage_facets_on_complete(None)

    (output,) = lineage.outputs
    assert (output.namespace, output.name) == expected
    # The same dataset Airflow's OpenLineage provider makes of the task's Asset (its outlet).
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    translated = translate_airflow_asset(file_asset(operator.path, "coins"), None)
    assert (translated.namespace, translated.name) == expected
    result = summary["datasets"]["coins"]
    statistics = output.outputFacets["outputStatistics"]
    assert (statistics.rowCount, statistics.size, statistics.fileCount) == (result["rows"], result["bytes"], 1)
    assert statistics.size > 0


def test_an_export_that_did_not_finish_reports_no_lineage(coinstats_conn: Any, portfolio: str, warehouse: str) -> None:
    assert sql_export(warehouse, portfolio, ["coins"]).get_openlineage_facets_on_complete(None) is None
