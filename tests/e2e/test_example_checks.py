"""The example-DAG e2e checker names the check that fails: a failed run, a leaked secret, a task
that did not defer, missing rows or events, an unconsumed asset event, a non-loopback listener.

Fast (no deployment), so it runs in ``make test``. The evidence is built the way
``test_example_dags.py`` reads it from a real deployment; the task-log text below is the shape
the REST API returns (the log's source files first, then one event per line).
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.e2e.example_checks import Evidence, TaskLog, deferral_problem, evaluate

SECRET = "e2e-key-5f0c0ffee"
DEFERRED_LOG = "\n".join(
    [
        "::group::Log message source details",
        "/logs/dag_id=w/run_id=r/task_id=connect_wallet/attempt=1.log",
        "/logs/dag_id=w/run_id=r/task_id=connect_wallet/attempt=1.log.trigger.7.log",
        "::endgroup::",
        "2026-12-01T18:29:56.8Z CoinStats portfolio p1: connected (credits spent by this task: 41)",
        "2026-12-01T18:29:56.9Z Pausing task as DEFERRED.  level=info",
        "2026-12-01T18:30:07.3Z CoinStats portfolio p1 poll 1: synced",
        "2026-12-01T18:30:07.4Z Trigger fired event level=info",
    ]
)
NOT_DEFERRED_LOG = "\n".join(
    [
        "::group::Log message source details",
        "/logs/dag_id=w/run_id=r/task_id=connect_wallet/attempt=1.log",
        "::endgroup::",
        "2026-12-01T18:29:56.8Z CoinStats portfolio p1: connected (credits spent by this task: 41)",
    ]
)


def good_evidence() -> Evidence:
    return Evidence(
        run_states={"coinstats_warehouse_pipeline/r": "success", "coinstats_holdings_report/a1": "success"},
        must_defer=[TaskLog("coinstats_warehouse_pipeline", "r", "connect_wallet", -1, "success", DEFERRED_LOG)],
        triggerer_job_ids={7},
        expected_rows={"coinstats_coins": {"p1": 9}, "coinstats_value": {"p1": 1}},
        warehouse_rows={"coinstats_coins": {"p1": 9}, "coinstats_value": {"p1": 1}},
        expected_asset_events={("coinstats-sql://wh/coinstats_coins", "p1")},
        asset_events={("coinstats-sql://wh/coinstats_coins", "p1"), ("file:///x/coins", "p1")},
        report_asset_event_ids={11, 12},
        report_runs_consumed={"a1": {11}, "a2": {12}},
        secrets=[SECRET, "exchange-secret-1"],
        haystack=[("scheduler.log", "all quiet"), ("metadata DB table xcom", "p1\t9")],
        listeners={"api-server": ["127.0.0.1:8080"], "redis": ["127.0.0.1:6379"], "worker": []},
    )


def failed_names(evidence: Evidence) -> list[str]:
    return [name for name, _, _ in evaluate(evidence).failed]


def test_good_evidence_passes_every_check() -> None:
    checks = evaluate(good_evidence())
    assert len(checks.results) == 7
    assert checks.failed == []
    checks.raise_if_failed()


def test_a_failed_run_fails_the_run_check_and_names_the_run() -> None:
    evidence = good_evidence()
    evidence.run_states["coinstats_exchange_pipeline/e2e"] = "failed"

    checks = evaluate(evidence)

    assert failed_names(evidence) == ["every DAG run succeeded (2 of 3)"]
    with pytest.raises(AssertionError, match=r"1 of 7 e2e checks failed:\n- every DAG run succeeded \(2 of 3\)") as e:
        checks.raise_if_failed()
    assert "coinstats_exchange_pipeline/e2e" in str(e.value)


def test_a_secret_in_a_log_or_the_metadata_db_fails_the_secret_check_by_label_only() -> None:
    evidence = good_evidence()
    evidence.haystack.append(("logs/scheduler.log", f"planted {SECRET}"))
    evidence.haystack.append(("metadata DB table connection", f"x{SECRET}x"))

    checks = evaluate(evidence)

    assert failed_names(evidence) == ["no secret in 4 logs, API answers and metadata DB tables"]
    detail = checks.failed[0][2]
    assert "secret #0" in detail and "logs/scheduler.log" in detail and "metadata DB table connection" in detail
    assert SECRET not in detail


def test_a_task_that_did_not_defer_fails_the_deferral_check_and_names_the_task() -> None:
    evidence = good_evidence()
    evidence.must_defer.append(
        TaskLog("coinstats_many_wallets", "r", "wait_for_sync", 2, "success", NOT_DEFERRED_LOG),
    )

    checks = evaluate(evidence)

    assert failed_names(evidence) == ["connect and sensor tasks deferred to the triggerer (1 of 2)"]
    assert "coinstats_many_wallets/r/wait_for_sync[2]: the worker never logged" in checks.failed[0][2]


def test_deferral_needs_the_trigger_part_from_a_triggerer_job() -> None:
    task = TaskLog("d", "r", "t", -1, "success", DEFERRED_LOG)
    assert deferral_problem(task, {7}) is None
    # Job 7 is not a triggerer (e.g. the scheduler's id): not proof of a triggerer process.
    assert "none a triggerer job" in str(deferral_problem(task, {3}))
    fired_nowhere = dataclasses.replace(task, log=DEFERRED_LOG.replace("Trigger fired event", "..."))
    assert "no 'Trigger fired event'" in str(deferral_problem(fired_nowhere, {7}))


def test_missing_rows_events_report_runs_and_exposed_listeners_each_fail_their_check() -> None:
    evidence = good_evidence()
    evidence.warehouse_rows["coinstats_coins"] = {"p1": 8}
    evidence.asset_events = {("file:///x/coins", "p1")}
    evidence.report_runs_consumed = {"a1": {99}}  # a run, but not because of our events
    evidence.listeners["celery-worker"] = ["0.0.0.0:8793"]

    assert failed_names(evidence) == [
        "warehouse tables hold the expected rows (coinstats_coins, coinstats_value)",
        "asset events exist for every table and file (1)",
        "the report DAG ran because of those asset events (1 runs)",
        "nothing listens on a non-loopback address",
    ]


def test_empty_evidence_never_passes() -> None:
    empty = Evidence(
        run_states={},
        must_defer=[],
        triggerer_job_ids=set(),
        expected_rows={},
        warehouse_rows={},
        expected_asset_events=set(),
        asset_events=set(),
        report_asset_event_ids=set(),
        report_runs_consumed={},
        secrets=[SECRET],
        haystack=[],
        listeners={},
    )
    assert len(failed_names(empty)) == 7
