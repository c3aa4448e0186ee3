"""Event-driven runs in a real deployment: an AssetWatcher's trigger in the real triggerer.

``tests/e2e/dags/coinstats_e2e_event_driven.py`` is scheduled on an Asset watched by
:class:`~airflow_provider_coinstats.triggers.events.CoinStatsNewTransactionsTrigger` (a shared
portfolio, checked every 2 s). With PostgreSQL, scheduler, dag-processor, triggerer and
api-server running, transactions are appended through the sandbox's admin API over HTTP: each
append must be followed by exactly one DAG run carrying the new row key, and no run may come
while nothing changes. Every check costs 4 credits (the sandbox's ledger), and the share token
and passcode appear in no log and nowhere in the metadata DB. A second watcher, whose share token
CoinStats does not know (403, permanent), logs the error and ends; the triggerer starts it again
(an Asset keeps its watcher's trigger), one check per interval, and its DAG never runs.
Run it with ``make e2e``.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

import pytest
import requests

from tests.e2e.checks import find_secrets, read_texts
from tests.e2e.deployment import ROOT, Deployment, secrets_token
from tests.e2e.processes import poll_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("COINSTATS_E2E") != "1", reason="a real deployment: run with `make e2e`"),
]

DAG_FILE = ROOT / "tests" / "e2e" / "dags" / "coinstats_e2e_event_driven.py"
DAG_ID = "coinstats_e2e_event_driven"
BROKEN_DAG_ID = "coinstats_e2e_broken_watch"
INTERVAL = 2.0
PUBLIC_ID = "e2e-watched"
#: Checks every 2 s: a run must follow an append within this many seconds.
RUN_TIMEOUT = 90.0


def admin(dep: Deployment, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    answer = requests.request(method, f"{dep.sandbox_url}/_sandbox{path}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def checks(dep: Deployment, label: str = "shared:watched") -> list[dict[str, Any]]:
    found = admin(dep, "GET", "/requests?endpoint=portfolio_transactions")
    return [r for r in found if r["portfolio_id"] == label]


def broken_checks(dep: Deployment) -> list[dict[str, Any]]:
    found = admin(dep, "GET", "/requests?endpoint=portfolio_transactions")
    return [r for r in found if r["status"] == 403]


def wait_checks(dep: Deployment, count: int) -> None:
    assert poll_until(lambda: len(checks(dep)) >= count, time.monotonic() + RUN_TIMEOUT, interval=0.5), (
        f"fewer than {count} checks: {len(checks(dep))}"
    )


def finished_runs(dep: Deployment) -> list[dict[str, Any]]:
    runs = sorted(dep.api.dag_runs(DAG_ID).values(), key=lambda r: str(r["run_after"]))
    return runs


def wait_runs(dep: Deployment, count: int) -> list[dict[str, Any]]:
    def done() -> bool:
        runs = finished_runs(dep)
        return len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs)

    assert poll_until(done, time.monotonic() + RUN_TIMEOUT, interval=0.5), f"runs: {finished_runs(dep)}"
    return finished_runs(dep)


def test_each_new_transaction_starts_exactly_one_run() -> None:
    # Long random values: a short digit passcode could turn up in a log by chance (a pid, a time).
    token, passcode = f"e2e-share-{secrets_token()}", f"e2e-pass-{secrets_token()}"
    share = {"conn_type": "generic", "login": token, "password": passcode, "extra": {"portfolio_name": PUBLIC_ID}}
    unknown = {"conn_type": "generic", "login": f"e2e-unknown-{secrets_token()}", "password": passcode}
    with Deployment(
        dag_files=[DAG_FILE],
        dag_ids=[DAG_ID, BROKEN_DAG_ID],
        connections={"coinstats_e2e_watched": json.dumps(share), "coinstats_e2e_broken": json.dumps(unknown)},
        secret_values=[token, passcode, unknown["login"]],
        sandbox_args=["--sync-polls", "0"],
    ) as dep:
        admin(dep, "POST", "/config", {"subscription": "Degen"})
        created = admin(dep, "POST", "/shared", {"label": "watched", "shareToken": token, "passcode": passcode})
        portfolio = created["portfolioId"]
        dep.api.unpause(DAG_ID)
        dep.api.unpause(BROKEN_DAG_ID)

        wait_checks(dep, 3)  # the baseline and two more: nothing new
        assert finished_runs(dep) == []

        seen: list[dict[str, Any]] = []
        for round_number in (1, 2):
            admin(dep, "POST", f"/portfolios/{portfolio}/transactions/append", {"count": 2})
            runs = wait_runs(dep, round_number)
            wait_checks(dep, len(checks(dep)) + 3)  # three more checks: no second run for the same change
            runs = finished_runs(dep)
            assert len(runs) == round_number, runs
            assert runs[-1]["state"] == "success", runs[-1]
            payload = dep.api.xcom(DAG_ID, runs[-1]["dag_run_id"], "new_transaction")
            assert payload["portfolio"] == PUBLIC_ID
            assert payload["row_key"] and payload["newest_date"]
            seen.append(payload)
        assert seen[0]["row_key"] != seen[1]["row_key"]

        # The broken watcher: ended on its 403 and was started again, one check per interval.
        failed = broken_checks(dep)
        assert len(failed) >= 3, failed
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(failed)]
        assert min(gaps) >= INTERVAL * 0.9, gaps  # the trigger waits an interval before ending
        assert all(r["credits"] == 0 for r in failed)
        assert dep.api.dag_runs(BROKEN_DAG_ID) == {}
        assert dep.grep_logs("watcher stops"), "the broken watcher logged no error"

        logged = checks(dep)
        assert {(r["status"], r["credits"], r["query"]["limit"]) for r in logged} == {(200, 4, "1")}
        used = admin(dep, "GET", "/credits")["key-1"]["used"]
        assert used == 4 * len(logged)
        print(
            f"event-driven: {len(logged)} checks, {used} credits, 2 runs for 2 appends; broken watcher: "
            f"{len(failed)} checks (403), restarted every {min(gaps):.1f}-{max(gaps):.1f} s, no run"
        )

        texts = read_texts(dep.log_files()) + dep.metadata_db_text()
        assert any(PUBLIC_ID in text for _, text in texts)  # the haystack holds the watcher's traces
        assert find_secrets([token, passcode], texts) == {}
