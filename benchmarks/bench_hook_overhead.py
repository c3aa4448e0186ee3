"""(a) The hook's cost per GET against a bare ``requests.Session`` doing the same work.

Both sides send GET /usage/credits to the same sandbox, parse the JSON and keep one pooled
connection. Rounds alternate between the two so drift on the machine hits both equally.
Goal: hook / bare <= 1.15.
"""

from __future__ import annotations

import os
import statistics
import time

import requests

from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import SandboxServer

TOTAL = 1_000
ROUNDS = 10


def bare_round(session: requests.Session, url: str, key: str, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        response = session.get(url, headers={"X-API-KEY": key}, timeout=30)
        response.raise_for_status()
        response.json()
    return time.perf_counter() - start


def hook_round(hook: CoinStatsHook, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        hook.get_usage_credits()
    return time.perf_counter() - start


def main() -> None:
    with SandboxServer() as server:
        os.environ["AIRFLOW_CONN_COINSTATS_BENCH"] = server.airflow_connection()
        hook = CoinStatsHook("coinstats_bench")
        session = requests.Session()
        url = f"{server.url}/usage/credits"
        per_round = TOTAL // ROUNDS
        bare_round(session, url, server.api_key, 50)  # warm up both connections
        hook_round(hook, 50)
        bare: list[float] = []
        ours: list[float] = []
        for i in range(ROUNDS):
            if i % 2:
                bare.append(bare_round(session, url, server.api_key, per_round))
                ours.append(hook_round(hook, per_round))
            else:
                ours.append(hook_round(hook, per_round))
                bare.append(bare_round(session, url, server.api_key, per_round))
        bare_total, ours_total = sum(bare), sum(ours)
        print(f"requests: {TOTAL} GET /usage/credits each side, {ROUNDS} alternating rounds")
        print(f"bare requests.Session : {bare_total:.3f} s  ({bare_total / TOTAL * 1e3:.3f} ms/GET)")
        print(f"CoinStatsHook         : {ours_total:.3f} s  ({ours_total / TOTAL * 1e3:.3f} ms/GET)")
        ratio = ours_total / bare_total
        median_ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
        print(f"ratio hook/bare       : {ratio:.3f} (median per round {median_ratio:.3f}; goal <= 1.15)")
        hook.close()
        session.close()


if __name__ == "__main__":
    main()
