"""The lifecycle operators, run for real: ``dag.test()`` of ``tests/dags/coinstats_lifecycle_dags.py``
against the sandbox over HTTP, and a real DagBag parse for the refusals at parse time.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.operators.lifecycle import CoinStatsSyncPortfolioOperator
from airflow_provider_coinstats.sandbox import Fault
from tests.helpers import connect_wallet, dag_file_import_errors, requests_to, statuses


def parse_dag_file(tmp_path: Path, body: str) -> dict[str, str]:
    """Parse one DAG file with a real DagBag; its import errors (file -> message)."""
    return dag_file_import_errors(
        tmp_path / "lifecycle_parse.py",
        "from datetime import datetime\n"
        "from airflow.sdk import DAG\n"
        "from airflow_provider_coinstats.operators.lifecycle import CoinStatsSyncPortfolioOperator\n"
        "with DAG(dag_id='parse_only', schedule=None, start_date=datetime(2025, 1, 1)):\n"
        + textwrap.indent(body, "    "),
    )


def test_sync_all_is_refused_at_parse_without_the_flag(coinstats_conn: Any, tmp_path: Path) -> None:
    coinstats_conn.state.clear_requests()
    errors = parse_dag_file(tmp_path, "CoinStatsSyncPortfolioOperator(task_id='resync')\n")
    assert len(errors) == 1
    message = next(iter(errors.values()))
    assert "all_portfolios=True" in message
    assert "300 credits" in message
    assert coinstats_conn.state.requests() == []  # zero requests sent
    # With the flag the same file parses.
    assert parse_dag_file(tmp_path, "CoinStatsSyncPortfolioOperator(task_id='resync', all_portfolios=True)\n") == {}
    assert coinstats_conn.state.requests() == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"portfolio_id": "p", "all_portfolios": True}, "all_portfolios"),
        ({"all_portfolios": True, "wait_for_sync": True}, "wait_for_sync"),
        ({"all_portfolios": "yes"}, "all_portfolios"),
        ({"portfolio_id": "p", "max_credits": -1}, "max_credits"),
        ({"portfolio_id": "p", "min_remaining_credits": True}, "min_remaining_credits"),
    ],
)
def test_contradictory_or_bad_arguments_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(CoinStatsValidationError) as info:
        CoinStatsSyncPortfolioOperator(task_id="resync", **kwargs)
    assert info.value.field == field


def test_sync_waits_then_the_teardown_deletes(coinstats_conn: Any, run_dag: Any) -> None:
    """Connect, re-sync (which puts the portfolio back into syncing) and wait, then delete."""
    coinstats_conn.state.configure(sync_polls=2)
    result = run_dag("coinstats_lifecycle")
    assert result.state == "success", result.tasks
    pid = result.xcom("connect_wallet")
    assert result.xcom("resync") == pid
    # The wait counts too: the sync (30) and, deferred, the trigger's probe that found it synced (4).
    charged = [r.credits for r in requests_to(coinstats_conn, "portfolio_sync")]
    charged += [r.credits for r in requests_to(coinstats_conn, "portfolio_transactions")]
    assert result.xcom("resync", "credits_spent") == sum(charged) == 34
    assert result.xcom("delete_portfolio") == pid
    assert result.xcom("delete_portfolio", "credits_spent") == 10
    syncs = requests_to(coinstats_conn, "portfolio_sync")
    assert [(r.query.get("portfolioId"), r.status) for r in syncs] == [(pid, 200)]
    probes = statuses(coinstats_conn, "portfolio_transactions")
    assert probes[0] == 409  # the re-sync put it back into syncing: the task waited ...
    assert probes[-1] == 200  # ... until it had synced
    assert statuses(coinstats_conn, "delete_portfolio") == [200]
    assert coinstats_conn.state.portfolios() == []


def test_sync_all_with_the_flag(coinstats_conn: Any, run_dag: Any) -> None:
    connect_wallet(coinstats_conn)
    result = run_dag("coinstats_lifecycle_sync_all")
    assert result.state == "success", result.tasks
    assert ("resync_all", -1, "return_value") not in result.xcoms  # returned None: Airflow pushes nothing
    assert result.xcom("resync_all", "credits_spent") == 300
    syncs = requests_to(coinstats_conn, "portfolio_sync")
    assert [(r.query, r.status, r.credits) for r in syncs] == [({}, 200, 300)]


def test_delete_of_a_portfolio_already_gone_succeeds(coinstats_conn: Any, run_dag: Any) -> None:
    pid = connect_wallet(coinstats_conn)
    coinstats_conn.state.clear_requests()
    first = run_dag("coinstats_lifecycle_delete", conf={"portfolio_id": pid})
    again = run_dag("coinstats_lifecycle_delete", conf={"portfolio_id": pid})
    assert (first.state, again.state) == ("success", "success")
    assert again.tasks[("delete_portfolio", -1)] == ("success", 1)
    assert statuses(coinstats_conn, "delete_portfolio") == [200, 404]
    assert again.xcom("delete_portfolio") == pid


def test_delete_retried_after_a_lost_answer_succeeds(coinstats_conn: Any, run_dag: Any) -> None:
    """The first DELETE deletes, then its answer is dropped; the hook's retry gets 404 = done."""
    pid = connect_wallet(coinstats_conn)
    coinstats_conn.state.add_fault(Fault("drop_after", endpoint="delete_portfolio", times=1))
    result = run_dag("coinstats_lifecycle_delete", conf={"portfolio_id": pid})
    assert result.state == "success", result.tasks
    assert result.tasks[("delete_portfolio", -1)] == ("success", 1)  # no Airflow retry was needed
    deletes = requests_to(coinstats_conn, "delete_portfolio")
    assert [(r.fault, r.status) for r in deletes] == [("drop_after", None), (None, 404)]
    assert coinstats_conn.state.portfolios() == []


def test_budget_and_plan_check_fail_before_spending_without_retries(coinstats_conn: Any, run_dag: Any) -> None:
    pid = connect_wallet(coinstats_conn)
    server = coinstats_conn
    # The plan has 500 credits left: below the delete task's min_remaining_credits of 1000.
    server.state.set_credits(server.api_key, server.state.credits_used() + 500)
    used_before = server.state.credits_used()
    result = run_dag("coinstats_lifecycle_budget", conf={"portfolio_id": pid})
    assert result.state == "failed"
    # Permanent: failed on the first try although the DAG allows 2 retries.
    assert result.tasks[("resync_over_budget", -1)] == ("failed", 1)
    assert result.tasks[("delete_if_plan_has_credits", -1)] == ("failed", 1)
    assert result.xcom("resync_over_budget", "credits_spent") == 0
    assert result.xcom("delete_if_plan_has_credits", "credits_spent") == 0
    assert requests_to(server, "portfolio_sync") == []
    assert requests_to(server, "delete_portfolio") == []
    assert statuses(server, "usage_credits") == [200]  # the free plan check, nothing else
    assert server.state.credits_used() == used_before
    assert [p["portfolioId"] for p in server.state.portfolios()] == [pid]
