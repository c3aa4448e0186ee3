"""Exports stop at once: a failed write buys no more pages, and a SIGTERM ends the task within 2 s.

Everything runs against the sandbox over HTTP with its fault injection, a real SQLite warehouse,
and (for the kill) Airflow's own task runner in a child process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.exceptions import CoinStatsDestinationError
from airflow_provider_coinstats.export.pages import DEFAULT_PAGES_IN_FLIGHT
from airflow_provider_coinstats.export.sql import SqlTable
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from tests.export.helpers import context, db_hook, sql_export, table_rows
from tests.helpers import ROOT, connect_wallet, dags_folder

WAREHOUSE = "coinstats_test_warehouse"
#: The read-ahead depth of extract_rows (pages buffered ahead of the consumer).
#: Pages that may be in flight besides the one being consumed when a write fails.
DEPTH = DEFAULT_PAGES_IN_FLIGHT - 1


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def read_ahead_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "coinstats-read-ahead"}


@pytest.fixture
def wallet(coinstats_conn: Any) -> str:
    return connect_wallet(coinstats_conn)


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``coinstats_test_warehouse``: a SQLite file of this test's own."""
    database = tmp_path / "warehouse.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE.upper()}", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    return database


def test_a_failed_write_stops_the_read_ahead_before_its_next_page(
    coinstats_conn: Any, wallet: str, warehouse: Path
) -> None:
    # 30 pages to read; the first write (a batch of 10 pages) is refused by the database itself.
    coinstats_conn.state.set_transaction_count(wallet, 3000)
    db_hook(WAREHOUSE).run(
        [
            SqlTable(db_hook(WAREHOUSE), "coinstats_transactions", "transactions").create_table_sql(),
            "CREATE TRIGGER refuse BEFORE INSERT ON coinstats_transactions "
            "BEGIN SELECT RAISE(ABORT, 'warehouse refuses rows'); END",
        ]
    )
    # Pages take longer than the consumer needs for one, so at the failure the read-ahead queue
    # is empty and exactly one page is in flight: what comes after is what the failure bought.
    coinstats_conn.state.configure(latency=0.2)
    before = read_ahead_threads()

    with pytest.raises(CoinStatsDestinationError) as raised:
        sql_export(WAREHOUSE, wallet, ["transactions"], batch_size=1000).execute(context())

    # The producer ends after the page it was reading (it is a daemon; nobody joins it). The
    # exception is still held here, as Airflow's task runner holds it (context["exception"])
    # while callbacks run: the stop must not depend on the failed load being garbage-collected.
    wait_for(lambda: not (read_ahead_threads() - before), 5, "the read-ahead thread to end")
    pages = coinstats_conn.state.requests(endpoint="portfolio_transactions")
    consumed = 1000 // 100
    assert len(pages) - consumed <= DEPTH, [r.query.get("page") for r in pages]
    assert "warehouse refuses rows" in str(raised.value)
    assert table_rows(WAREHOUSE, "transactions", wallet) == []


def test_the_connection_is_read_in_the_task_thread(
    coinstats_conn: Any, wallet: str, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3.0's task SDK reads connections over one unlocked socket: only the task's thread may.

    ``get_connection`` is wrapped (and still called) to record the thread of each lookup.
    """
    threads: list[str] = []
    original = CoinStatsHook.get_connection.__func__  # type: ignore[attr-defined]

    def spy(cls: type[CoinStatsHook], conn_id: str) -> Any:
        threads.append(threading.current_thread().name)
        return original(cls, conn_id)

    monkeypatch.setattr(CoinStatsHook, "get_connection", classmethod(spy))
    sql_export(WAREHOUSE, wallet, ["coins", "value", "transactions"]).execute(context())
    assert threads == [threading.current_thread().name]


# --- SIGTERM ---------------------------------------------------------------------------------------


def run_dag_in_child(dag_id: str, portfolio_id: str, log: Path) -> subprocess.Popen[bytes]:
    """``dag.test()`` of ``dag_id`` in a child process: the task runs under Airflow's own task runner."""
    dag_file = dags_folder() / "coinstats_export_test_dags.py"
    command = [sys.executable, "-m", "tests.transfers.dag_test_child", str(dag_file), dag_id]
    command.append(json.dumps({"portfolio_id": portfolio_id}))
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


@pytest.mark.parametrize(
    ("dataset", "endpoint", "pages_before_the_hang"),
    [("transactions", "portfolio_transactions", 2), ("value", "portfolio_value", 0)],
)
def test_sigterm_ends_the_export_within_2_s_while_a_read_hangs(
    coinstats_conn: Any,
    wallet: str,
    warehouse: Path,
    airflow_db: None,
    tmp_path: Path,
    dataset: str,
    endpoint: str,
    pages_before_the_hang: int,
) -> None:
    """A SIGTERM to the task process while CoinStats holds a read for 60 s.

    The task runs in ``dag.test()`` in a child process, so Airflow's task runner installs its own
    SIGTERM handler there: ``_run_task_and_map_outcome`` in ``airflow/sdk/execution_time/task_runner.py``
    (3.0.6 and 3.3.2) sets ``signal.signal(SIGTERM, _on_term)``, and ``_on_term`` only calls
    ``ti.task.on_kill()`` and returns: the task must end by itself. The supervisor of a real
    deployment sends SIGKILL 5 s after its SIGTERM; this test asks for 2 s.
    """
    coinstats_conn.state.set_transaction_count(wallet, 250)
    sql_export(WAREHOUSE, wallet, [dataset]).execute(context())  # the table as it was before the run
    before = table_rows(WAREHOUSE, dataset, wallet)
    assert before
    coinstats_conn.state.append_transactions(wallet, 1000)  # ten new pages for the incremental read
    # Faults apply in order: the first pages pass (a zero-delay "slow"), then one read hangs 60 s.
    if pages_before_the_hang:
        coinstats_conn.state.add_fault(Fault("slow", endpoint=endpoint, delay=0, times=pages_before_the_hang))
    coinstats_conn.state.add_fault(Fault("slow", endpoint=endpoint, delay=60, times=1))
    coinstats_conn.state.clear_requests()

    log = tmp_path / "child.log"
    child = run_dag_in_child(f"cs_test_export_kill_{dataset}", wallet, log)
    try:
        # The hanging request has arrived once its fault is used up (the log records a request
        # only when it is answered).
        wait_for(
            lambda: not coinstats_conn.state.faults() or child.poll() is not None,
            120,
            "the hanging CoinStats request",
        )
        assert child.poll() is None, log.read_text()
        killed_at = time.monotonic()
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the task process was still running 10 s after SIGTERM:\n{log.read_text()[-3000:]}")
        took = time.monotonic() - killed_at
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    output = log.read_text()
    assert took < 2.0, output[-3000:]
    assert child.returncode == 0, output[-3000:]
    result = json.loads(output.strip().splitlines()[-1])
    assert result["tasks"]["load"][0] == "failed"
    assert "CoinStatsExportCancelledError" in output
    # Nothing of the interrupted run was committed, and nothing was read after the kill beyond the
    # pages already requested beside the hanging one (the export keeps up to DEFAULT_PAGES_IN_FLIGHT).
    assert table_rows(WAREHOUSE, dataset, wallet) == before
    answered = len(coinstats_conn.state.requests(endpoint=endpoint))
    assert pages_before_the_hang <= answered <= pages_before_the_hang + DEFAULT_PAGES_IN_FLIGHT - 1
