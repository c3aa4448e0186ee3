"""(d) Export 100,000 transactions from the sandbox to a JSONL file and to SQLite.

Baseline, measured in the same run: a bare paginated ``requests`` loop that fetches the same
pages and parses the JSON, doing nothing else. The sandbox runs in its own process so that its
page generation does not share a GIL with the client. Throughput ratio = baseline time / export
time (goal >= 0.8).

Memory: the export's peak Python allocation (tracemalloc) for 20,000 and 100,000 transactions,
in separate passes (tracemalloc slows code down, so those passes are not timed). Flat in the
number of transactions means the two peaks are alike (goal: under 50 MB).
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests

from benchmarks.bench_triggers import start_sandbox

N = 100_000
SMALL = 20_000
ROUNDS = 2


def set_count(url: str, portfolio_id: str, count: int) -> None:
    request = urllib.request.Request(
        f"{url}/_sandbox/portfolios/{portfolio_id}/transactions",
        data=json.dumps({"count": count}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=30).read()


def bare_loop(url: str, key: str, portfolio_id: str) -> int:
    """What a user would write by hand: page through, parse, count."""
    session = requests.Session()
    rows, page = 0, 1
    while True:
        params: dict[str, str | int] = {"portfolioId": portfolio_id, "currency": "USD", "page": page, "limit": 100}
        response = session.get(
            f"{url}/portfolio/transactions",
            params=params,
            headers={"X-API-KEY": key},
            timeout=60,
        )
        response.raise_for_status()
        items = response.json()["data"]
        rows += len(items)
        if len(items) < 100:
            session.close()
            return rows
        page += 1


def export_file(portfolio_id: str, folder: Path) -> int:
    from airflow_provider_coinstats.export.extract import ExportOptions, extract_rows
    from airflow_provider_coinstats.export.files import dataset_file, storage_path, write_rows
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    hook = CoinStatsHook("coinstats_bench")
    rows = extract_rows(hook, "transactions", portfolio_id, extracted_at=datetime.now(UTC), options=ExportOptions())
    target = dataset_file(storage_path(str(folder)), "transactions", portfolio_id, "bench", "jsonl")
    count = write_rows(target, "transactions", rows, "jsonl")
    hook.close()
    return count


def export_sqlite(portfolio_id: str, folder: Path) -> int:
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    from airflow_provider_coinstats.export.extract import ExportOptions, extract_rows
    from airflow_provider_coinstats.export.sql import SqlTable
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    database = folder / "bench.db"
    database.unlink(missing_ok=True)
    os.environ["AIRFLOW_CONN_COINSTATS_BENCH_SQLITE"] = json.dumps({"conn_type": "sqlite", "host": str(database)})
    db = SqliteHook(sqlite_conn_id="coinstats_bench_sqlite")  # type: ignore[no-untyped-call]
    table = SqlTable(db, "coinstats_transactions", "transactions")
    table.prepare(create=True)
    hook = CoinStatsHook("coinstats_bench")
    rows = extract_rows(hook, "transactions", portfolio_id, extracted_at=datetime.now(UTC), options=ExportOptions())
    count = table.load(rows, portfolio_id=portfolio_id)
    hook.close()
    return count


def timed(run: Callable[[], int], expected: int) -> float:
    gc.collect()
    start = time.perf_counter()
    count = run()
    elapsed = time.perf_counter() - start
    if count != expected:
        raise RuntimeError(f"exported {count} rows, expected {expected}")
    return elapsed


def peak_mib(run: Callable[[], int], expected: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        count = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if count != expected:
        raise RuntimeError(f"exported {count} rows, expected {expected}")
    return peak / 2**20


def main() -> None:
    import logging

    logging.getLogger("airflow.task.hooks").setLevel(logging.WARNING)
    proc, url = start_sandbox()
    try:
        key = "sandbox-api-key"
        os.environ["AIRFLOW_CONN_COINSTATS_BENCH"] = json.dumps(
            {"conn_type": "coinstats", "host": url, "password": key, "extra": {"timeout": 60}}
        )
        from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

        hook = CoinStatsHook("coinstats_bench")
        pid = hook.connect_wallet("0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045", "ethereum").portfolio_id
        hook.close()
        set_count(url, pid, N)
        folder = Path(tempfile.mkdtemp(prefix="coinstats-bench-export-"))
        scenarios: dict[str, Callable[[], int]] = {
            "bare requests loop": lambda: bare_loop(url, key, pid),
            "export to JSONL file": lambda: export_file(pid, folder),
            "export to SQLite": lambda: export_sqlite(pid, folder),
        }
        timed(scenarios["bare requests loop"], N)  # warm up the sandbox and both clients
        times: dict[str, list[float]] = {name: [] for name in scenarios}
        for round_ in range(ROUNDS):
            order = list(scenarios) if round_ % 2 == 0 else list(reversed(scenarios))
            for name in order:
                times[name].append(timed(scenarios[name], N))
        base = statistics.median(times["bare requests loop"])
        print(f"transactions: {N:,}, 100 per page, {ROUNDS} alternating rounds, sandbox in its own process")
        for name, values in times.items():
            median = statistics.median(values)
            line = f"{name:<22}: {median:6.2f} s median ({N / median:8,.0f} rows/s)"
            if name != "bare requests loop":
                line += f"  throughput vs bare: {base / median:.2f}x (goal >= 0.8)"
            print(line)

        for name in ("export to JSONL file", "export to SQLite"):
            peaks = {}
            for count in (SMALL, N):
                set_count(url, pid, count)
                peaks[count] = peak_mib(scenarios[name], count)
            print(
                f"{name:<22}: peak traced memory {peaks[SMALL]:.1f} MiB at {SMALL:,} rows, "
                f"{peaks[N]:.1f} MiB at {N:,} rows (goal: flat, < 50 MB)"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
