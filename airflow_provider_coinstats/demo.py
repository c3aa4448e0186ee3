"""``make demo``: the wallet pipeline DAG end to end against the local CoinStats sandbox.

Starts the sandbox on a free loopback port, points ``coinstats_default`` at it, migrates a
throwaway Airflow home, runs ``example_dags/coinstats_wallet_pipeline.py`` with ``dag.test()``
(connect a wallet, wait through the 409s until it has synced, read holdings and value) and prints
what a user wants to see. Task logs go to a file in the Airflow home, not to the console.

Run: ``python -m airflow_provider_coinstats.demo`` from a checkout (it needs ``example_dags/``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DAG_FILE = "coinstats_wallet_pipeline.py"
DAG_ID = "coinstats_wallet_pipeline"


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
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "COINSTATS_EXAMPLE_POKE_INTERVAL": "1",
        }
    )
    log_file = home / "demo.log"

    from airflow_provider_coinstats.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(sync_polls=3)) as server:
        os.environ["AIRFLOW_CONN_COINSTATS_DEFAULT"] = server.airflow_connection()
        print(f"CoinStats sandbox      : {server.url}")
        print(f"Airflow home           : {home}")
        started = time.monotonic()
        with output_to(log_file):
            from airflow.utils import db

            db.resetdb()
            spec = importlib.util.spec_from_file_location("coinstats_demo_dag", home / "dags" / DAG_FILE)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            dag_run = module.dag.test()
        elapsed = time.monotonic() - started
        results = read_xcoms(DAG_ID, dag_run.run_id)
        report(server, results, str(dag_run.state), elapsed, log_file)
        return 0 if str(dag_run.state) == "success" else 1


def read_xcoms(dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel as XComRow
    except ImportError:  # Airflow 3.0
        from airflow.models.xcom import BaseXCom as XComRow  # type: ignore[no-redef]
    with create_session() as session:
        rows = session.query(XComRow).filter(XComRow.dag_id == dag_id, XComRow.run_id == run_id)
        return {(x.task_id, x.key): x.value for x in rows}


def report(server: Any, xcoms: dict[tuple[str, str], Any], state: str, elapsed: float, log_file: Path) -> None:
    portfolio_id = xcoms.get(("connect_wallet", "return_value"))
    polls = [r.status for r in server.state.requests(endpoint="portfolio_transactions")]
    holdings = xcoms.get(("read_holdings", "return_value")) or {}
    print(f"DAG run                : {DAG_ID} -> {state} in {elapsed:.1f} s (task logs: {log_file})")
    print(f"portfolio              : {portfolio_id} ({xcoms.get(('connect_wallet', 'connection_status'))})")
    print(f"sync wait              : {polls.count(409)} x 409 'Transactions not synced', then {polls[-1:]}")
    if holdings:
        print(
            f"holdings               : {holdings.get('coins')} coins, top {', '.join(holdings.get('top_symbols', []))}"
        )
        print(f"total value            : {holdings.get('total_value_usd') or 0:,.2f} USD")
    print(f"credits spent          : {server.state.credits_used()} (sandbox ledger, documented costs)")
    calls: dict[str, int] = {}
    for record in server.state.requests():
        calls[str(record.endpoint)] = calls.get(str(record.endpoint), 0) + 1
    print("requests               : " + ", ".join(f"{name} x{count}" for name, count in sorted(calls.items())))


if __name__ == "__main__":
    raise SystemExit(main())
