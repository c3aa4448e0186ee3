"""(e) Load 100,000 transactions into SQLite, PostgreSQL and MariaDB: executemany against the bulk path.

Baseline, measured in the same run: the bare paginated read of the same 100,000 transactions from
the sandbox (a ``requests`` loop that fetches and parses every page, nothing else; the sandbox runs
in its own process). Goal: load throughput >= 0.8x the bare read.

Per database, :meth:`SqlTable.load` of the 100,000 rows already read (the database write alone),
into an empty table ("first load") and again over the same keys ("rerun"): with
``bulk_writes=False`` (the driver's ``executemany`` of the dialect's statement) against each bulk
candidate of :mod:`.export.sql_bulk`, alternating, median of the rounds. PostgreSQL's candidate is
COPY into a stage + ``INSERT ... SELECT ... ON CONFLICT`` (``COINSTATS_BENCH_LOAD_DELETE_COPY=1``
adds DELETE by key + COPY, slow: see below); MariaDB's an explicit multi-row ``REPLACE``
(:class:`~.sql_bulk.MultiRowInsert`, registered only for the run); SQLite has none. Then the whole
export, API to table (the operator's path), against the bare read.

Results on 2 cores shared with other jobs (rows/s, first load / rerun; AF 3.3 = psycopg 3 and
mysqlclient, load average 3.2; AF 3.0 = psycopg2, load average 3.5-4):

====================================  ====================  ====================
                                      Airflow 3.3           Airflow 3.0
====================================  ====================  ====================
bare paginated read                   8,764                 5,628
PostgreSQL executemany (ON CONFLICT)  25,004 / 18,827       4,368 / 4,063
PostgreSQL COPY + ON CONFLICT         31,408 / 31,316       29,203 / 27,730
MariaDB executemany (REPLACE)         17,958 / 15,406       7,942 / 11,978
MariaDB explicit multi-row REPLACE    15,735 / 16,662       9,599 / 10,917
SQLite executemany                    45,129 / 33,718       53,112 / 39,570
whole export, PostgreSQL / MariaDB    3,295 / 3,867         3,513 / 4,768
====================================  ====================  ====================

COPY is 1.3-1.7x psycopg 3's pipelined executemany and 6.7x psycopg2's; the explicit multi-row
REPLACE is 0.88-1.21x mysqlclient's executemany (which already sends multi-row statements), so it
is not used. DELETE by key + COPY on PostgreSQL: 288 / 3,510 rows/s (a new table's DELETEs
seq-scan it as it grows). Every load alone is above the goal (1.8x-5x the bare read); the whole
export is not (0.4-0.85x): it flattens and writes in turn on one thread, and reading alone
(extract + flatten) was 0.76x the bare read in the same run.

Servers: ``COINSTATS_TEST_POSTGRES_URI`` / ``COINSTATS_TEST_MARIADB_URI`` when set, else throwaway
ones started with ``.ci/postgres.sh`` / ``.ci/mariadb.sh`` and stopped at the end.
``COINSTATS_BENCH_LOAD_N`` changes the number of transactions (quick runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from benchmarks.bench_export import KEY, bare_loop, bench_portfolio
from benchmarks.bench_triggers import start_sandbox

N = int(os.environ.get("COINSTATS_BENCH_LOAD_N", "100000"))
ROUNDS = 2
TABLE = "coinstats_bench_load"
CI = Path(__file__).resolve().parent.parent / ".ci"
#: database -> (environment variable with its URI, script that starts one, Airflow connection type).
SERVERS = {
    "postgresql": ("COINSTATS_TEST_POSTGRES_URI", "postgres.sh", "postgres"),
    "mariadb": ("COINSTATS_TEST_MARIADB_URI", "mariadb.sh", "mysql"),
}


@contextlib.contextmanager
def server(name: str) -> Iterator[str]:
    """The URI of the database server ``name``: from the environment, or one started here and stopped after."""
    env, script, _ = SERVERS[name]
    uri = os.environ.get(env, "").strip()
    if uri:
        yield uri
        return
    folder = tempfile.mkdtemp(prefix=f"coinstats-bench-{name}-", dir="/tmp")
    try:
        started = subprocess.run([str(CI / script), "start", folder], capture_output=True, text=True, check=True)
        yield started.stdout.strip()
    finally:
        subprocess.run([str(CI / script), "stop", folder], capture_output=True, text=True, check=False)


def connection_id(name: str, uri: str) -> str:
    """An Airflow connection (``AIRFLOW_CONN_*``) to the server at ``uri``."""
    conn_id = f"coinstats_bench_{name}"
    airflow_uri = urlunsplit(urlsplit(uri)._replace(scheme=SERVERS[name][2]))
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = airflow_uri
    return conn_id


def make_hook(name: str, target: str) -> Any:
    # log_sql=False: Airflow 3 logs statements through structlog to stdout, where the summary goes.
    if name == "postgresql":
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=target, log_sql=False)
    if name == "mariadb":
        from airflow.providers.mysql.hooks.mysql import MySqlHook

        return MySqlHook(mysql_conn_id=target, log_sql=False)
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    os.environ["AIRFLOW_CONN_COINSTATS_BENCH_SQLITE"] = json.dumps({"conn_type": "sqlite", "host": target})
    return SqliteHook(sqlite_conn_id="coinstats_bench_sqlite", log_sql=False)  # type: ignore[no-untyped-call]


def fresh_table(hook: Any, mode: Mode | None = None) -> Any:
    from airflow_provider_coinstats.export.sql import SqlTable

    table = SqlTable(hook, TABLE, "transactions")
    hook.run(f"DROP TABLE IF EXISTS {table.quoted_table}", autocommit=True)
    table.prepare(create=True)
    if mode is not None:
        table.bulk_writes = mode.bulk
        table.upsert = mode.upsert or table.upsert
    return table


@dataclass(frozen=True)
class Mode:
    """One way to load: ``bulk_writes``, the upsert strategy (``None``: the dialect's), and a switch around it."""

    bulk: bool
    upsert: Literal["native", "delete_insert"] | None = None
    switch: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext


@contextlib.contextmanager
def explicit_multirow() -> Iterator[None]:
    """Register :class:`MultiRowInsert` (multi-row REPLACE) as MySQL's bulk upsert for the duration."""
    from airflow_provider_coinstats.export import sql_bulk

    sql_bulk.BULK_UPSERT["mysql"] = lambda table, columns, _key, mark: sql_bulk.MultiRowInsert(
        table, columns, mark, verb="REPLACE"
    )
    try:
        yield
    finally:
        del sql_bulk.BULK_UPSERT["mysql"]


def timed(run: Callable[[], int]) -> float:
    start = time.perf_counter()
    count = run()
    elapsed = time.perf_counter() - start
    if count != N:
        raise RuntimeError(f"{count} rows, expected {N}")
    return elapsed


def read_rows(pid: str) -> list[dict[str, Any]]:
    from airflow_provider_coinstats.export.extract import ExportOptions, extract_rows
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    hook = CoinStatsHook("coinstats_bench")
    rows = list(extract_rows(hook, "transactions", pid, extracted_at=datetime.now(UTC), options=ExportOptions()))
    hook.close()
    return rows


def export(pid: str, hook: Any) -> int:
    from airflow_provider_coinstats.export.extract import ExportOptions, extract_rows
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    table = fresh_table(hook)
    api = CoinStatsHook("coinstats_bench")
    rows = extract_rows(api, "transactions", pid, extracted_at=datetime.now(UTC), options=ExportOptions())
    count: int = table.load(rows, portfolio_id=pid)
    api.close()
    return count


def load_modes(name: str) -> dict[str, Mode]:
    """The ways to load into database ``name``; the first is the baseline (SQLite has no bulk path)."""
    modes = {"executemany": Mode(bulk=False)}
    if name == "postgresql":
        modes["COPY + ON CONFLICT"] = Mode(bulk=True)
        if os.environ.get("COINSTATS_BENCH_LOAD_DELETE_COPY") == "1":
            modes["DELETE + COPY"] = Mode(bulk=True, upsert="delete_insert")
    if name == "mariadb":
        modes["multi-row REPLACE"] = Mode(bulk=True, switch=explicit_multirow)
    return modes


def measure_loads(name: str, hook: Any, rows: list[dict[str, Any]], pid: str) -> dict[str, tuple[float, float]]:
    """Mode -> (first load s, rerun s), medians over alternating rounds."""
    modes = load_modes(name)
    times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    for round_ in range(ROUNDS):
        for mode in list(modes) if round_ % 2 == 0 else list(reversed(modes)):
            with modes[mode].switch(), contextlib.redirect_stdout(sys.stderr):
                table = fresh_table(hook, modes[mode])
                load = partial(table.load, rows, portfolio_id=pid)
                first, rerun = timed(load), timed(load)
            times[mode].append((first, rerun))
    return {
        mode: (statistics.median(t[0] for t in values), statistics.median(t[1] for t in values))
        for mode, values in times.items()
    }


def report(name: str, loads: dict[str, tuple[float, float]], bare: float) -> None:
    base_first, base_rerun = loads["executemany"]
    for mode, (first, rerun) in loads.items():
        line = f"  {name:<10} {mode:<18}: {N / first:8,.0f} / {N / rerun:8,.0f} rows/s"
        if mode != "executemany":
            line += f"  vs executemany {base_first / first:4.2f}x / {base_rerun / rerun:4.2f}x"
        line += f"  vs bare read {bare / first:5.2f}x / {bare / rerun:5.2f}x (goal >= 0.8)"
        print(line)


def main() -> None:
    proc, url = start_sandbox()
    folder = Path(tempfile.mkdtemp(prefix="coinstats-bench-load-"))
    try:
        pid = bench_portfolio(url, N)
        print(f"transactions: {N:,}, 100 per page, sandbox in its own process; load average {os.getloadavg()[0]:.2f}")
        bare = statistics.median(timed(lambda: bare_loop(url, KEY, pid)) for _ in range(ROUNDS))
        print(f"  bare paginated read  : {bare:6.2f} s ({N / bare:8,.0f} rows/s), median of {ROUNDS}")
        start = time.perf_counter()
        rows = read_rows(pid)
        read = time.perf_counter() - start
        print(f"  export read (flatten): {read:6.2f} s ({N / read:8,.0f} rows/s)  vs bare read {bare / read:4.2f}x")
        print(f"load of the rows already read, first load / rerun over the same keys, median of {ROUNDS}:")
        with server("postgresql") as pg_uri, server("mariadb") as maria_uri:
            targets = {
                "sqlite": str(folder / "bench.db"),
                "postgresql": connection_id("postgresql", pg_uri),
                "mariadb": connection_id("mariadb", maria_uri),
            }
            hooks = {name: make_hook(name, target) for name, target in targets.items()}
            for name, hook in hooks.items():
                report(name, measure_loads(name, hook, rows, pid), bare)
            del rows
            print("whole export, API to table (bulk on), against the bare read:")
            for name, hook in hooks.items():
                with contextlib.redirect_stdout(sys.stderr):
                    elapsed = timed(partial(export, pid, hook))
                rate = f"{elapsed:6.2f} s ({N / elapsed:8,.0f} rows/s)"
                print(f"  {name:<10}: {rate}  vs bare read {bare / elapsed:4.2f}x (goal >= 0.8)")
        print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
