"""``make demo``: the warehouse pipeline end to end, against the local sandbox or the real API.

By default it starts the CoinStats sandbox on a free loopback port, migrates a throwaway Airflow
home and runs ``example_dags/coinstats_warehouse_pipeline.py`` with ``dag.test()``: connect a
wallet and an exchange account, wait in the triggerer until both have synced (the sandbox answers
409 three times first), then load holdings, value and transactions into a SQLite warehouse file
and JSON Lines files. It prints rows per table, the files, credits spent and the calls made.
Task logs go to a file in the Airflow home, not to the console.

With ``COINSTATS_API_KEY`` set, the same DAG runs against the real CoinStats API instead (credits
are spent on your plan; the sandbox run spends 148 for both branches). The exchange branch then needs your own
exchange credentials in ``AIRFLOW_CONN_COINSTATS_EXAMPLE_EXCHANGE`` (login = API key, password =
secret); without it only the wallet branch runs. ``COINSTATS_DEMO_ADDRESS`` and
``COINSTATS_DEMO_BLOCKCHAIN`` choose the wallet.

Run: ``python -m airflow_provider_coinstats.demo`` from a checkout (it needs ``example_dags/``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DAG_FILE = "coinstats_warehouse_pipeline.py"
DAG_ID = "coinstats_warehouse_pipeline"
DATASETS = ("coins", "value", "transactions")
EXCHANGE_CONN_ENV = "AIRFLOW_CONN_COINSTATS_EXAMPLE_EXCHANGE"


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors included) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main() -> int:
    source = Path(__file__).resolve().parent.parent / "example_dags" / DAG_FILE
    if not source.exists():
        print(f"cannot find {source}: run the demo from a checkout of airflow-provider-coinstats", file=sys.stderr)
        return 2
    home = Path(tempfile.mkdtemp(prefix="coinstats-demo-"))
    (home / "dags").mkdir()
    shutil.copy(source, home / "dags" / DAG_FILE)
    warehouse = home / "warehouse.db"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "COINSTATS_EXAMPLE_POKE_INTERVAL": "1",
            "COINSTATS_EXAMPLE_EXPORT_PATH": str(home / "export"),
            "AIRFLOW_CONN_COINSTATS_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
        }
    )
    # dag.test() runs triggers in-process, with no scheduler whose defer/resume race the first-poll
    # minimum guards against (see airflow_provider_coinstats.config), so the demo need not wait 10 s.
    os.environ.setdefault("AIRFLOW__COINSTATS__MIN_FIRST_POLL_DELAY", "1")
    api_key = os.environ.get("COINSTATS_API_KEY", "").strip()
    if api_key:
        os.environ["AIRFLOW_CONN_COINSTATS_DEFAULT"] = json.dumps({"conn_type": "coinstats", "password": api_key})
        print(f"{'CoinStats API':<30}: https://openapiv1.coinstats.app (COINSTATS_API_KEY; credits are real)")
        return run(home, warehouse, server=None)

    from airflow_provider_coinstats.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(sync_polls=3)) as server:
        os.environ["AIRFLOW_CONN_COINSTATS_DEFAULT"] = server.airflow_connection()
        # The sandbox accepts any exchange credentials; they stay in this connection, never in logs or XCom.
        os.environ.setdefault(
            EXCHANGE_CONN_ENV, json.dumps({"conn_type": "generic", "login": "demo-api-key", "password": "demo-secret"})
        )
        print(f"{'CoinStats sandbox':<30}: {server.url}")
        return run(home, warehouse, server=server)


def run(home: Path, warehouse: Path, server: Any) -> int:
    print(f"{'Airflow home':<30}: {home}")
    log_file = home / "demo.log"
    started = time.monotonic()
    with output_to(log_file):
        from airflow.utils import db

        from airflow_provider_coinstats._compat import prepare_dag_test
        from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

        db.resetdb()
        spec = importlib.util.spec_from_file_location("coinstats_demo_dag", home / "dags" / DAG_FILE)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dag = module.dag
        if EXCHANGE_CONN_ENV not in os.environ:
            dag = dag.partial_subset(task_ids=["connect_wallet", "load_wallet_tables", "export_wallet_files"])
        params = {
            "address": os.environ.get("COINSTATS_DEMO_ADDRESS", dag.params["address"]),
            "blockchain": os.environ.get("COINSTATS_DEMO_BLOCKCHAIN", dag.params["blockchain"]),
        }
        credits_before = used_credits(CoinStatsHook())
        prepare_dag_test(dag)
        dag_run = dag.test(run_conf=params)
        credits = used_credits(CoinStatsHook()) - credits_before
    elapsed = time.monotonic() - started
    report(read_xcoms(DAG_ID, dag_run.run_id), str(dag_run.state), elapsed, log_file, warehouse, credits, server)
    return 0 if str(dag_run.state) == "success" else 1


def used_credits(hook: Any) -> int:
    try:
        return int(hook.get_usage_credits().get("usedCredits") or 0)
    finally:
        hook.close()


def read_xcoms(dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel as XComRow
    except ImportError:  # Airflow 3.0
        from airflow.models.xcom import BaseXCom as XComRow  # type: ignore[no-redef]
    with create_session() as session:
        rows = session.query(XComRow).filter(XComRow.dag_id == dag_id, XComRow.run_id == run_id)
        return {(x.task_id, x.key): x.value for x in rows}


def report(
    xcoms: dict[tuple[str, str], Any],
    state: str,
    elapsed: float,
    log_file: Path,
    warehouse: Path,
    credits: int,
    server: Any,
) -> None:
    print(f"{'DAG run':<30}: {DAG_ID} -> {state} in {elapsed:.1f} s (task logs: {log_file})")
    for name in ("wallet", "exchange"):
        portfolio_id = xcoms.get((f"connect_{name}", "return_value"))
        if portfolio_id is not None:
            status = xcoms.get((f"connect_{name}", "connection_status"))
            print(f"{name + ' portfolio':<30}: {portfolio_id} ({status})")
    if server is not None:
        polls = [r.status for r in server.state.requests(endpoint="portfolio_transactions")]
        print(f"{'sync wait':<30}: {polls.count(409)} x 409 'Transactions not synced' across both portfolios")
    if warehouse.exists():
        db = sqlite3.connect(warehouse)
        try:
            for dataset in DATASETS:
                table = f"coinstats_{dataset}"
                rows = db.execute(f"SELECT portfolio_id, COUNT(*) FROM {table} GROUP BY portfolio_id").fetchall()
                per_portfolio = ", ".join(f"{pid[:8]}…: {n}" for pid, n in rows)
                print(f"{'table ' + table:<30}: {sum(n for _, n in rows)} rows ({per_portfolio})")
            value = db.execute("SELECT SUM(total_value) FROM coinstats_value WHERE currency = 'USD'").fetchone()[0]
            print(f"{'total value':<30}: {float(value or 0):,.2f} USD")
        finally:
            db.close()
        print(f"{'SQLite warehouse':<30}: {warehouse}")
    files = [
        (dataset, summary["datasets"][dataset])
        for (task_id, key), summary in sorted(xcoms.items())
        if task_id.startswith("export_") and key == "return_value"
        for dataset in summary["datasets"]
    ]
    for dataset, result in files:
        print(f"{'file ' + dataset:<30}: {result['rows']} rows -> {result['location']}")
    print(f"{'credits spent':<30}: {credits} (GET /usage/credits before and after)")
    if server is not None:
        calls: dict[str, int] = {}
        for record in server.state.requests():
            calls[str(record.endpoint)] = calls.get(str(record.endpoint), 0) + 1
        print(f"{'requests':<30}: " + ", ".join(f"{name} x{count}" for name, count in sorted(calls.items())))


if __name__ == "__main__":
    raise SystemExit(main())
