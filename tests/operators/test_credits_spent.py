"""Every paying task reports ``credits_spent``, and its budget spans the worker and the trigger.

Real ``dag.test()`` runs of ``tests/dags/coinstats_credits_dags.py`` against the sandbox over HTTP:
each DAG has one paying task, so what the sandbox's ledger charged during the run is that task's
charge, which the task's XCom ``credits_spent`` must equal.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.credits import CreditBudgetMixin
from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor
from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator
from airflow_provider_coinstats.triggers.portfolio import CoinStatsPortfolioSyncTrigger
from tests.helpers import connect_wallet, first_event, requests_to, statuses


def ledger(server: Any) -> tuple[int, int]:
    """(sum of the credits the request log shows charged, the account's credits used)."""
    return sum(r.credits for r in server.state.requests()), server.state.credits_used()


def test_connect_with_deferred_wait_reports_worker_and_trigger_credits(coinstats_conn: Any, run_dag: Any) -> None:
    coinstats_conn.state.configure(sync_polls=3)  # the worker's probe and two trigger polls see 409
    coinstats_conn.state.clear_requests()
    result = run_dag("cs_credits_connect_wait")
    assert result.state == "success", result.tasks
    charged, used = ledger(coinstats_conn)
    assert statuses(coinstats_conn, "portfolio_transactions") == [409, 409, 409, 200]
    assert result.xcom("connect_wallet", "credits_spent") == charged == used == 1 + 40 + 4


def test_a_task_over_budget_fails_without_retries_and_still_reports(coinstats_conn: Any, run_dag: Any) -> None:
    """41 credits spent on connecting; the 4-credit probe would pass max_credits=44: refused unsent."""
    coinstats_conn.state.configure(sync_polls=1)
    coinstats_conn.state.clear_requests()
    result = run_dag("cs_credits_connect_wait_budget")
    assert result.state == "failed"
    assert result.tasks[("connect_wallet", -1)] == ("failed", 1)  # permanent: no retries
    assert statuses(coinstats_conn, "portfolio_transactions") == []  # the refused probe was never sent
    charged, used = ledger(coinstats_conn)
    assert result.xcom("connect_wallet", "credits_spent") == charged == used == 41  # pushed on failure too


def test_the_trigger_polls_count_against_the_task_budget(coinstats_conn: Any) -> None:
    """The trigger goes on from the task's spending: 41 of 44 spent leaves no room for a 4-credit poll.

    A live event loop against the sandbox; with a fresh budget the poll would be sent and succeed.
    """
    pid = connect_wallet(coinstats_conn)
    trigger = CoinStatsPortfolioSyncTrigger(pid, poll_interval=0.05, max_credits=44, credits_spent=41)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "failed"
    assert "spent 41 of its budget of 44" in event["result"]["message"]
    assert event["credits_spent"] == 41
    assert requests_to(coinstats_conn, "portfolio_transactions") == []
    roomy = CoinStatsPortfolioSyncTrigger(pid, poll_interval=0.05, max_credits=45, credits_spent=41)
    event = asyncio.run(first_event(roomy))
    assert (event["status"], event["credits_spent"]) == ("synced", 45)
    assert sum(r.credits for r in coinstats_conn.state.requests()) == 4


@pytest.mark.parametrize("dag_id", ["cs_credits_sensor_poke", "cs_credits_sensor_deferrable"])
def test_sensor_reports_its_probes(coinstats_conn: Any, run_dag: Any, dag_id: str) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=3)
    used_before = coinstats_conn.state.credits_used()
    result = run_dag(dag_id, conf={"portfolio_id": pid})
    assert result.state == "success", result.tasks
    assert statuses(coinstats_conn, "portfolio_transactions") == [409, 409, 409, 200]
    charged, used = ledger(coinstats_conn)
    assert result.xcom("wait_for_sync", "credits_spent") == charged == used - used_before == 4


def test_sensor_plan_check_stops_before_the_first_poke(coinstats_conn: Any, run_dag: Any) -> None:
    pid = connect_wallet(coinstats_conn)
    server = coinstats_conn
    server.state.set_credits(server.api_key, server.state.credits_used() + 500)  # below 1000 left
    result = run_dag("cs_credits_sensor_plan_check", conf={"portfolio_id": pid})
    assert result.state == "failed"
    assert result.tasks[("wait_for_sync", -1)] == ("failed", 1)
    assert statuses(server, "usage_credits") == [200]
    assert statuses(server, "portfolio_transactions") == []
    assert result.xcom("wait_for_sync", "credits_spent") == 0


def test_file_export_reports_its_pages(coinstats_conn: Any, run_dag: Any, tmp_path: Path) -> None:
    pid = connect_wallet(coinstats_conn, transactions=25)  # 3 pages of 10
    result = run_dag("cs_credits_file_export", conf={"portfolio_id": pid, "path": str(tmp_path)})
    assert result.state == "success", result.tasks
    charged, _ = ledger(coinstats_conn)
    assert charged > 0
    assert result.xcom("export_files", "credits_spent") == charged
    assert result.xcom("export_files")["credits_spent"] == charged


def test_budget_arguments_are_checked_at_parse() -> None:
    with pytest.raises(CoinStatsValidationError) as info:
        CoinStatsPortfolioSyncSensor(task_id="s", portfolio_id="p", max_credits=-1)
    assert info.value.field == "max_credits"
    with pytest.raises(CoinStatsValidationError) as info:
        CoinStatsToFileOperator(task_id="e", portfolio_id="p", datasets="coins", path="/x", min_remaining_credits=1.5)
    assert info.value.field == "min_remaining_credits"
    for task in (
        CoinStatsPortfolioSyncSensor(task_id="s", portfolio_id="p", max_credits=5),
        CoinStatsToFileOperator(task_id="e", portfolio_id="p", datasets="coins", path="/x", max_credits=5),
    ):
        assert isinstance(task, CreditBudgetMixin)
        assert task.max_credits == 5


def test_the_sync_trigger_serializes_the_budget() -> None:
    """A triggerer restart re-creates the trigger from its kwargs: the budget must survive it."""
    trigger = CoinStatsPortfolioSyncTrigger("p", max_credits=44, credits_spent=41)
    _, kwargs = trigger.serialize()
    again = CoinStatsPortfolioSyncTrigger(**kwargs)
    assert (again.max_credits, again.credits_spent) == (44, 41)
