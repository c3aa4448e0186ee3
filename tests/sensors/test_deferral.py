"""Every deferral path checks first, and a deferred wait polls no sooner than the minimum.

Real ``dag.test()`` runs against the sandbox over HTTP. Witnesses: task states and XComs, the
trigger rows in the metadata DB (one per deferral; ``dag.test()`` never deletes them) and the
sandbox's request log with its timestamps.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import connect_wallet


def trigger_rows() -> int:
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        return int(session.query(Trigger).count())


def test_connect_wait_on_a_synced_existing_portfolio_never_defers(coinstats_conn: Any, run_dag: Any) -> None:
    """The exchange DAG's failure in a real deployment: `existing`, already synced, deferred anyway."""
    pid = connect_wallet(coinstats_conn)  # a previous run connected it
    before = trigger_rows()

    result = run_dag("cs_test_connect_wait")

    assert result.state == "success"
    assert result.tasks[("connect_wallet", -1)] == ("success", 1)
    assert result.xcom("connect_wallet") == pid
    assert result.xcom("connect_wallet", "connection_status") == "existing"
    assert trigger_rows() == before  # no deferral: no trigger was ever created
    requests = coinstats_conn.state.requests()
    # The lookup, the connect and one probe in the worker; nothing else.
    assert [(r.endpoint, r.status) for r in requests] == [
        ("wallet_blockchains", 200),
        ("connect_wallet", 200),
        ("portfolio_transactions", 200),
    ]


@pytest.mark.parametrize("dag_id", ["cs_test_connect_wait", "cs_test_deferrable"])
def test_a_syncing_portfolio_defers_and_the_first_poll_waits_the_minimum(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch, dag_id: str
) -> None:
    monkeypatch.setenv("AIRFLOW__COINSTATS__MIN_FIRST_POLL_DELAY", "1.5")  # the DAGs poll every 0.3 s
    coinstats_conn.state.configure(sync_polls=2)
    before = trigger_rows()

    result = run_dag(dag_id)

    assert result.state == "success"
    assert trigger_rows() == before + 1  # deferred once
    polls = coinstats_conn.state.requests(endpoint="portfolio_transactions")
    # The worker's own probe (409), then the trigger's polls.
    assert [r.status for r in polls] == [409, 409, 200]
    assert polls[1].at - polls[0].at >= 1.5
    assert polls[2].at - polls[1].at < 1.5
