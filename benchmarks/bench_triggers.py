"""1,000 concurrent sync triggers in one event loop against a sandbox with 200 ms latency.

Every portfolio answers 409 "Transactions not synced" three times, then data. The sandbox runs
in its own process, so the loop measured here only carries the triggers. Reported, all from
this run:

- the event loop's worst lag (a 10 ms ticker measures how late it wakes up; goal < 100 ms);
- wall time against the ideal: the same wait run by one trigger alone in this run (4 polls of
  200 ms latency plus the poll intervals); 1,000 should take barely longer (goal <= 1.5x);
- peak Python memory per trigger (tracemalloc, in a second pass so tracing does not skew timing).

Airflow's import leaves a large heap, and a full garbage collection walks all of it: here such
pauses reach hundreds of milliseconds, whoever allocated last. The triggerer does not
``gc.freeze()`` that heap, so the default pass is what a triggerer sees; a second pass after
``gc.freeze()`` shows how much of the lag is the collector rather than the triggers.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from typing import Any

N = 1_000
LATENCY = 0.2
NOT_SYNCED = 3
POLL_INTERVAL = 0.5


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_coinstats.sandbox", "--port", "0", "--sync-polls", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("COINSTATS_SANDBOX_URL="):
        proc.kill()
        raise RuntimeError(f"sandbox did not start: {line!r}")
    return proc, line.split("=", 1)[1]


def admin(url: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{url}/_sandbox/{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=30).read()


def resync(url: str, ids: list[str]) -> None:
    for pid in ids:
        admin(url, f"portfolios/{pid}/sync", {"polls": NOT_SYNCED})


def make_portfolios(url: str, n: int) -> list[str]:
    """Connect n wallets quickly (no latency yet), then make each sync for NOT_SYNCED polls."""
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    hook = CoinStatsHook("coinstats_bench")
    ids = [hook.connect_wallet(f"0x{i:040x}", "ethereum").portfolio_id for i in range(n)]
    hook.close()
    resync(url, ids)
    return ids


async def run_triggers(ids: list[str]) -> tuple[float, float, list[str]]:
    from airflow_provider_coinstats.triggers.portfolio import CoinStatsPortfolioSyncTrigger

    worst_lag = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst_lag
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst_lag = max(worst_lag, time.perf_counter() - before - 0.01)

    async def one(pid: str) -> str:
        trigger = CoinStatsPortfolioSyncTrigger(
            portfolio_id=pid,
            coinstats_conn_id="coinstats_bench",
            poll_interval=POLL_INTERVAL,
            end_time=time.time() + 600,
        )
        async for event in trigger.run():
            return str(event.payload["status"])
        return "no event"

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    statuses = await asyncio.gather(*(one(pid) for pid in ids))
    wall = time.perf_counter() - start
    done.set()
    await tick
    return wall, worst_lag, statuses


def main() -> None:
    proc, url = start_sandbox()
    try:
        os.environ["AIRFLOW_CONN_COINSTATS_BENCH"] = json.dumps(
            {"conn_type": "coinstats", "host": url, "password": "sandbox-api-key", "extra": {"timeout": 60}}
        )
        ids = make_portfolios(url, N + 1)
        solo, ids = ids[:1], ids[1:]
        admin(url, "config", {"latency": LATENCY})
        ideal, _, solo_status = asyncio.run(run_triggers(solo))
        assert solo_status == ["synced"], solo_status
        wall, lag, statuses = asyncio.run(run_triggers(ids))
        assert statuses.count("synced") == N, statuses[:5]

        resync(url, ids)
        gc.collect()
        gc.freeze()  # the Airflow import heap is no longer walked by each full collection
        frozen_wall, frozen_lag, frozen_statuses = asyncio.run(run_triggers(ids))
        gc.unfreeze()
        assert frozen_statuses.count("synced") == N

        resync(url, ids)  # last pass, traced, for memory only
        tracemalloc.start()
        asyncio.run(run_triggers(ids))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        print(f"triggers: {N} concurrent, {LATENCY * 1e3:.0f} ms latency, {NOT_SYNCED} x 409 then data each")
        print(
            f"event loop worst lag  : {lag * 1e3:.1f} ms (goal < 100 ms); with gc.freeze(): {frozen_lag * 1e3:.1f} ms"
        )
        print(
            f"wall time             : {wall:.2f} s vs one trigger alone {ideal:.2f} s = {wall / ideal:.2f}x "
            f"(goal <= 1.5x); with gc.freeze(): {frozen_wall / ideal:.2f}x"
        )
        print(f"peak memory / trigger : {peak / N / 1024:.1f} KiB (tracemalloc peak {peak / 2**20:.1f} MiB for {N})")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
