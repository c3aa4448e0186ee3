"""(d) Export 100,000 transactions from the sandbox to a JSONL file and to SQLite, at loopback and at 100 ms a page.

Baseline, measured in the same run: a bare sequential paginated ``requests`` loop that fetches the
same pages and parses the JSON, doing nothing else. The sandbox runs in its own process so that
its page generation does not share a GIL with the client.

* Loopback (CPU-bound): throughput ratio = baseline time / export time (goal >= 0.8). On a busy
  machine both processes wait for a core, so the ratio approaches the ratio of CPU spent; the
  client's CPU seconds are printed beside the wall time.
* 100 ms per page (the sandbox's ``latency``, as the real API answers): speed-up = baseline time /
  export time, with the export's default pages in flight (goal >= 3). Credits are read from the
  sandbox ledger: the export may pay for at most ``in_flight - 1`` pages past the end.

Memory: the export's peak Python allocation (tracemalloc) for 20,000 and 100,000 transactions,
in separate passes (tracemalloc slows code down, so those passes are not timed). Flat in the
number of transactions means the two peaks are alike (goal: under 50 MB).

``COINSTATS_BENCH_EXPORT_SWEEP=1,2,4,8`` also times the 100 ms JSONL export with each of those
pages-in-flight settings (how the default was chosen).
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
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import requests

from benchmarks.bench_triggers import admin, start_sandbox

N = 100_000
SMALL = 20_000
WARM_UP = 2_000
ROUNDS = 2
LATENCY = 0.1
KEY = "sandbox-api-key"


def set_count(url: str, portfolio_id: str, count: int) -> None:
    admin(url, f"portfolios/{portfolio_id}/transactions", {"count": count})


def credits_used(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_sandbox/credits", timeout=30) as answer:
        report = json.loads(answer.read())
    return int(report["key-1"]["used"])


def bench_portfolio(url: str, transactions: int) -> str:
    """Point the ``coinstats_bench`` connection at the sandbox; connect a wallet holding ``transactions``."""
    os.environ["AIRFLOW_CONN_COINSTATS_BENCH"] = json.dumps(
        {"conn_type": "coinstats", "host": url, "password": KEY, "extra": {"timeout": 60}}
    )
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    hook = CoinStatsHook("coinstats_bench")
    pid = hook.connect_wallet("0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045", "ethereum").portfolio_id
    hook.close()
    set_count(url, pid, transactions)
    return pid


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


def export_file(portfolio_id: str, folder: Path, in_flight: int | None = None) -> int:
    from airflow_provider_coinstats.export.extract import ExportOptions, extract_rows
    from airflow_provider_coinstats.export.files import dataset_file, storage_path, write_rows
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    hook = CoinStatsHook("coinstats_bench")
    options = ExportOptions() if in_flight is None else ExportOptions(max_pages_in_flight=in_flight)
    rows = extract_rows(hook, "transactions", portfolio_id, extracted_at=datetime.now(UTC), options=options)
    target = dataset_file(storage_path(str(folder)), "transactions", portfolio_id, "bench", "jsonl")
    count = write_rows(target, "transactions", rows, "jsonl").rows
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
    # log_sql=False: Airflow 3 logs statements through structlog to stdout, where the summary goes.
    db = SqliteHook(sqlite_conn_id="coinstats_bench_sqlite", log_sql=False)  # type: ignore[no-untyped-call]
    table = SqlTable(db, "coinstats_transactions", "transactions")
    table.prepare(create=True)
    hook = CoinStatsHook("coinstats_bench")
    rows = extract_rows(hook, "transactions", portfolio_id, extracted_at=datetime.now(UTC), options=ExportOptions())
    count = table.load(rows, portfolio_id=portfolio_id)
    hook.close()
    return count


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # this process only: the client's work, not the sandbox's


def timed(run: Callable[[], int], expected: int) -> Timing:
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    count = run()
    timing = Timing(time.perf_counter() - start, time.process_time() - cpu)
    if count != expected:
        raise RuntimeError(f"exported {count} rows, expected {expected}")
    return timing


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


def peaks(url: str, pid: str, run: Callable[[], int]) -> str:
    found = {}
    for count in (SMALL, N):
        set_count(url, pid, count)
        found[count] = peak_mib(run, count)
    set_count(url, pid, N)
    return f"{found[SMALL]:.1f} / {found[N]:.1f} MiB at {SMALL:,} / {N:,} rows"


def loopback(url: str, pid: str, scenarios: dict[str, Callable[[], int]]) -> None:
    set_count(url, pid, WARM_UP)
    for run in scenarios.values():  # imports, connection pools, the sandbox's caches
        timed(run, WARM_UP)
    set_count(url, pid, N)
    times: dict[str, list[Timing]] = {name: [] for name in scenarios}
    for round_ in range(ROUNDS):
        order = list(scenarios) if round_ % 2 == 0 else list(reversed(scenarios))
        for name in order:
            times[name].append(timed(scenarios[name], N))
    base = statistics.median(t.wall for t in times["bare requests loop"])
    print(f"loopback, {ROUNDS} alternating rounds (median):")
    for name, values in times.items():
        wall = statistics.median(t.wall for t in values)
        cpu = statistics.median(t.cpu for t in values)
        line = f"  {name:<21}: {wall:6.2f} s ({N / wall:6,.0f} rows/s, client CPU {cpu:5.2f} s)"
        if name != "bare requests loop":
            line += f"  vs bare: {base / wall:.2f}x (goal >= 0.8)"
        print(line)
    for name in ("export to JSONL file", "export to SQLite"):
        print(f"  {name:<21}: peak traced memory {peaks(url, pid, scenarios[name])} (goal: flat, < 50 MB)")


def at_latency(url: str, pid: str, scenarios: dict[str, Callable[[], int]], sweep: list[int], folder: Path) -> None:
    from airflow_provider_coinstats.export.pages import DEFAULT_PAGES_IN_FLIGHT

    admin(url, "config", {"latency": LATENCY})
    try:
        print(f"{LATENCY * 1000:.0f} ms per page, {DEFAULT_PAGES_IN_FLIGHT} pages in flight (the default):")
        timings, credits = {}, {}
        for name, run in scenarios.items():
            before = credits_used(url)
            timings[name] = timed(run, N)
            credits[name] = credits_used(url) - before
        base = timings["bare requests loop"].wall
        for name, timing in timings.items():
            line = f"  {name:<21}: {timing.wall:6.2f} s ({credits[name]:,} credits)"
            if name != "bare requests loop":
                line += f"  speed-up vs bare: {base / timing.wall:.1f}x (goal >= 3)"
            print(line)
        print(f"  export to JSONL file : peak traced memory {peaks(url, pid, scenarios['export to JSONL file'])}")
        for in_flight in sweep:
            timing = timed(partial(export_file, pid, folder, in_flight), N)
            print(f"  JSONL, {in_flight:2d} in flight   : {timing.wall:6.2f} s  speed-up: {base / timing.wall:.1f}x")
    finally:
        admin(url, "config", {"latency": 0})


def main() -> None:
    sweep = [int(n) for n in os.environ.get("COINSTATS_BENCH_EXPORT_SWEEP", "").split(",") if n.strip()]
    proc, url = start_sandbox()
    try:
        pid = bench_portfolio(url, N)
        folder = Path(tempfile.mkdtemp(prefix="coinstats-bench-export-"))
        scenarios: dict[str, Callable[[], int]] = {
            "bare requests loop": lambda: bare_loop(url, KEY, pid),
            "export to JSONL file": lambda: export_file(pid, folder),
            "export to SQLite": lambda: export_sqlite(pid, folder),
        }
        load = os.getloadavg()
        print(f"transactions: {N:,}, 100 per page, sandbox in its own process; load average {load[0]:.2f}")
        loopback(url, pid, scenarios)
        at_latency(url, pid, scenarios, sweep, folder)
        print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
