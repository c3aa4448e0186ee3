"""Issue 8 item 6 in a real deployment: connecting an already-connected exchange account never fails.

A real ``airflow standalone`` run failed this way: the account was already connected, so the
portfolio was ``existing`` and synced; the connect task (``wait_for_sync=True``) deferred anyway,
its trigger fired on the first poll a few seconds later, and the scheduler read the worker's late
"success" for the deferring attempt as a state mismatch and failed the resumed task (apache/airflow
issues 66374, 71580, 72716; "Executor ... reported that the task instance ... finished with state
success, but the task instance's state attribute is queued").

The experiment, ten times at once (ten exchange accounts, one connection each), with a 2 s poll
interval and a sandbox that answers one 409 "Transactions not synced" after each connect:

1. first runs: connect ten new accounts. They must defer (the sync is not done yet), their
   triggers must poll no sooner than ``MIN_FIRST_POLL_DELAY`` (the ``[coinstats]
   min_first_poll_delay`` default) after the deferral, and they must succeed; each trigger fires
   on its first poll, the exposed case.
2. second runs: connect the same ten accounts again (``existing``, synced). All ten must succeed,
   and none may defer: the worker sees the portfolio is synced before deferring.

Everything is real: PostgreSQL, LocalExecutor, scheduler, dag-processor, triggerer and api-server
processes, the sandbox over HTTP; the runs are driven and read through the REST API. Nothing is
mocked. Run it with ``make e2e`` (it is skipped elsewhere: it needs ~1-2 minutes of both cores).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from airflow_provider_coinstats.config import MIN_FIRST_POLL_DELAY
from tests.e2e.api import AirflowApi
from tests.e2e.checks import Checks, find_secrets, read_texts
from tests.e2e.deployment import ROOT, Deployment, secrets_token

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("COINSTATS_E2E") != "1", reason="a real deployment: run with `make e2e`"),
]

DAG_FILE = ROOT / "tests" / "e2e" / "dags" / "coinstats_e2e_connect_exchange.py"
DAG_ID = "coinstats_e2e_connect_exchange"
TASK_ID = "connect_exchange"
ACCOUNTS = 10
#: What the task runner logs when a task defers (Airflow 3.3).
DEFERRED_MARKER = "Pausing task as DEFERRED"
#: The scheduler's line when it fails a task for the defer/resume race.
RACE_MARKER = "but the task instance's state attribute is"
#: The trigger's log line for its first poll.
FIRST_POLL_MARKER = " poll 1: "
ROUND_TIMEOUT = 150.0
#: The trigger fixes its first-poll time when it is created; the task runner logs the deferral a
#: moment later, so the gap measured between the two log lines may fall short by that moment.
LOG_SLACK = 1.0


@dataclass
class Connect:
    """One connect run, as read back through the REST API."""

    account: int
    run_id: str
    run_state: str
    task_state: str | None
    deferred: bool
    status: Any  # the connection_status XCom: connected / existing
    log: str

    def describe(self) -> str:
        gap = self.first_poll_after()
        waited = "" if gap is None else f", first poll {gap:.1f} s after deferring"
        return f"{self.run_id}: run {self.run_state}, task {self.task_state}, deferred={self.deferred}{waited}"

    def first_poll_after(self) -> float | None:
        """Seconds from the deferral to the trigger's first poll, from the task log's timestamps."""
        deferred = logged_at(self.log, DEFERRED_MARKER)
        polled = logged_at(self.log, FIRST_POLL_MARKER)
        return None if deferred is None or polled is None else (polled - deferred).total_seconds()


def logged_at(log: str, marker: str) -> datetime | None:
    """When the first log line holding ``marker`` was written (lines start with an ISO timestamp)."""
    for line in log.splitlines():
        if marker in line:
            return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))
    return None


def run_round(api: AirflowApi, prefix: str) -> list[Connect]:
    """Trigger one run per account at once, wait for all, read state, deferral and XCom of each."""
    run_ids = {f"{prefix}-{account}": account for account in range(ACCOUNTS)}
    for run_id, account in run_ids.items():
        api.trigger(DAG_ID, run_id, conf={"account": account})
    runs = api.wait_for_runs(DAG_ID, run_ids, timeout=ROUND_TIMEOUT)
    results = []
    for run_id, account in run_ids.items():
        (ti,) = api.task_instances(DAG_ID, run_id)
        log = api.task_log(DAG_ID, run_id, TASK_ID, max(int(ti["try_number"]), 1))
        try:
            status = api.xcom(DAG_ID, run_id, TASK_ID, "connection_status")
        except Exception as error:  # a run failed before pushing it
            status = f"no XCom ({error})"
        results.append(
            Connect(account, run_id, runs[run_id]["state"], ti["state"], DEFERRED_MARKER in log, status, log)
        )
    return results


def summary(connects: list[Connect]) -> str:
    return "\n".join(f"  {c.describe()}, status={c.status}" for c in connects)


def log_excerpt(connect: Connect, lines: int = 8, width: int = 240) -> str:
    tail = [line[:width] for line in connect.log.splitlines()[-lines:]]
    return f"--- {connect.run_id} task log (last {lines} lines) ---\n" + "\n".join(tail)


def test_connect_same_exchange_account_twice_in_a_real_deployment() -> None:
    started = time.monotonic()
    credentials = {i: (f"e2e-api-key-{secrets_token()}", f"e2e-api-secret-{secrets_token()}") for i in range(ACCOUNTS)}
    connections = {
        f"coinstats_e2e_exchange_{i}": json.dumps({"conn_type": "generic", "login": key, "password": secret})
        for i, (key, secret) in credentials.items()
    }
    exchange_secrets = [value for pair in credentials.values() for value in pair]
    checks = Checks()
    with Deployment(
        dag_files=[DAG_FILE],
        dag_ids=[DAG_ID],
        connections=connections,
        secret_values=exchange_secrets,
        # One 409 after each connect: a new account's trigger fires on its first poll.
        sandbox_args=["--sync-polls", "1"],
        keep_dir=os.environ.get("COINSTATS_E2E_KEEP") == "1",
    ) as deployment:
        api = deployment.api
        api.unpause(DAG_ID)
        with deployment.stage(f"first connects ({ACCOUNTS} new accounts at once)"):
            first = run_round(api, "first")
        with deployment.stage(f"second connects (the same {ACCOUNTS} accounts again)"):
            second = run_round(api, "second")
        print(f"[e2e] first connects:\n{summary(first)}\n[e2e] second connects:\n{summary(second)}", flush=True)

        race_lines = deployment.grep_logs(RACE_MARKER)
        failed_first = [c for c in first if c.run_state != "success"]
        failed_second = [c for c in second if c.run_state != "success"]
        checks.expect(
            f"first connects succeeded ({ACCOUNTS - len(failed_first)} of {ACCOUNTS})",
            not failed_first,
            summary(failed_first) + "\n" + "\n".join(log_excerpt(c) for c in failed_first[:2]),
        )
        checks.expect(
            "first connects deferred to the triggerer (their portfolios were still syncing)",
            all(c.deferred for c in first),
            summary([c for c in first if not c.deferred]),
        )
        gaps = [c.first_poll_after() for c in first]
        checks.expect(
            f"first connects' triggers polled no sooner than {MIN_FIRST_POLL_DELAY:.0f} s after deferring "
            f"(shortest: {min((g for g in gaps if g is not None), default=float('nan')):.1f} s)",
            all(g is not None and g >= MIN_FIRST_POLL_DELAY - LOG_SLACK for g in gaps),
            summary([c for c, g in zip(first, gaps, strict=True) if g is None or g < MIN_FIRST_POLL_DELAY - LOG_SLACK]),
        )
        checks.expect(
            "second connects found the accounts already connected (existing)",
            all(c.status == "existing" for c in second),
            summary([c for c in second if c.status != "existing"]),
        )
        checks.expect(
            f"second connects succeeded ({ACCOUNTS - len(failed_second)} of {ACCOUNTS})",
            not failed_second,
            summary(failed_second) + "\n" + "\n".join(log_excerpt(c) for c in failed_second[:2]),
        )
        checks.expect(
            f"second connects did not defer (deferred: {sum(c.deferred for c in second)} of {ACCOUNTS})",
            not any(c.deferred for c in second),
            summary([c for c in second if c.deferred]),
        )
        checks.expect(
            f"scheduler logged no defer/resume state mismatch ({len(race_lines)} lines)",
            not race_lines,
            "\n".join(race_lines[:5]),
        )

        # Secrets: component logs, task logs (worker and triggerer parts), and what the API shows
        # of each task instance (its rendered fields included).
        api_texts = [
            (f"API task instances of {c.run_id}", json.dumps(api.task_instances(DAG_ID, c.run_id)))
            for c in first + second
        ]
        api_texts += [(f"API task log of {c.run_id}", c.log) for c in first + second]
        haystack = read_texts(deployment.log_files()) + api_texts
        task_logs = [name for name, _ in haystack if "attempt=" in name]
        assert len(task_logs) >= 2 * ACCOUNTS, f"expected task logs for every run, found {len(task_logs)}"
        # The haystack is real: the task logs hold the provider's own lines.
        assert sum("CoinStats portfolio" in text for _, text in haystack) >= 2 * ACCOUNTS, "task logs not read"
        leaks = find_secrets(deployment.secrets, haystack)
        checks.expect(f"no secret in {len(haystack)} logs and API answers", not leaks, json.dumps(leaks, indent=1))

    print(f"[e2e] total wall time: {time.monotonic() - started:.1f} s", flush=True)
    checks.raise_if_failed()
