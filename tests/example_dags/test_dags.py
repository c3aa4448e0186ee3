"""Example and test DAGs run end to end with ``dag.test()`` against the sandbox.

Each test reads three witnesses: task states and XComs from the metadata DB, and the sandbox's
request log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import airflow
import pytest
from packaging.version import Version

from airflow_provider_coinstats.sandbox import Fault
from tests.helpers import FAST_RETRY, airflow_home, requests_to, statuses

AIRFLOW_3_0 = Version(airflow.__version__) < Version("3.1")

# Airflow 3.0.6 bug, not ours: under dag.test() the first reschedule date reaches the sensor base
# class as a str, so any reschedule-mode sensor needing a second reschedule fails inside
# BaseSensorOperator.execute ("unsupported operand type(s) for -: 'datetime.datetime' and 'str'").
reschedule_broken_on_3_0 = pytest.mark.xfail(
    AIRFLOW_3_0, reason="Airflow 3.0: first reschedule date is a str under dag.test()", strict=True
)


# --- the example DAGs -------------------------------------------------------------------------------


@reschedule_broken_on_3_0
def test_wallet_pipeline(coinstats_conn: Any, run_dag: Any) -> None:
    coinstats_conn.state.configure(sync_polls=3)
    result = run_dag("coinstats_wallet_pipeline")
    assert result.state == "success"
    pid = result.xcom("connect_wallet")
    assert result.xcom("connect_wallet", "portfolio_id") == pid
    assert result.xcom("connect_wallet", "connection_status") == "connected"
    assert result.xcom("wait_for_sync") == pid
    holdings = result.xcom("read_holdings")
    assert holdings["portfolio_id"] == pid
    assert holdings["coins"] > 0
    # The reschedule-mode sensor saw the three 409s, then data.
    assert statuses(coinstats_conn, "portfolio_transactions") == [409, 409, 409, 200]
    assert [p["portfolioId"] for p in coinstats_conn.state.portfolios()] == [pid]


def test_exchange_pipeline_defers_until_synced(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_EXAMPLE_EXCHANGE",
        json.dumps({"conn_type": "generic", "login": "ex-key-1", "password": "ex-secret-1"}),
    )
    coinstats_conn.state.configure(sync_polls=2)
    result = run_dag("coinstats_exchange_pipeline")
    assert result.state == "success"
    pid = result.xcom("connect_exchange")
    assert result.xcom("read_balances")["portfolio_id"] == pid
    assert statuses(coinstats_conn, "portfolio_transactions") == [409, 409, 200]


def test_many_wallets_mapped_and_deferrable(coinstats_conn: Any, run_dag: Any) -> None:
    coinstats_conn.state.configure(sync_polls=2)
    result = run_dag("coinstats_many_wallets")
    assert result.state == "success"
    ids = [result.xcom("connect_wallet", map_index=i) for i in range(3)]
    assert len(set(ids)) == 3
    assert [result.xcom("wait_for_sync", map_index=i) for i in range(3)] == ids
    assert result.xcom("summarize")["portfolios"] == 3
    for pid in ids:  # each mapped sensor waited through its own two 409s
        polls = [r.status for r in requests_to(coinstats_conn, "portfolio_transactions") if r.portfolio_id == pid]
        assert polls == [409, 409, 200]


# --- the sensor in each mode ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dag_id", ["cs_test_poke", pytest.param("cs_test_reschedule", marks=reschedule_broken_on_3_0), "cs_test_deferrable"]
)
def test_sensor_waits_through_409s(coinstats_conn: Any, run_dag: Any, dag_id: str) -> None:
    coinstats_conn.state.configure(sync_polls=4)
    result = run_dag(dag_id)
    assert result.state == "success"
    assert result.xcom("wait_for_sync") == result.xcom("connect_wallet")
    assert statuses(coinstats_conn, "portfolio_transactions") == [409, 409, 409, 409, 200]
    assert all(r.query.get("limit") == "1" for r in requests_to(coinstats_conn, "portfolio_transactions"))


@pytest.mark.parametrize("dag_id", ["cs_test_timeout", "cs_test_timeout_deferrable"])
def test_sensor_times_out_without_retries(coinstats_conn: Any, run_dag: Any, dag_id: str) -> None:
    coinstats_conn.state.configure(sync_seconds=float("inf"))
    result = run_dag(dag_id)
    assert result.state == "failed"
    # The DAG has retries=2, but a sensor timeout spends none of them.
    assert result.tasks[("wait_for_sync", -1)] == ("failed", 1)
    assert len(requests_to(coinstats_conn, "portfolio_transactions")) >= 2


@pytest.mark.parametrize("dag_id", ["cs_test_timeout_soft", "cs_test_timeout_deferrable_soft"])
def test_sensor_timeout_with_soft_fail_skips(coinstats_conn: Any, run_dag: Any, dag_id: str) -> None:
    coinstats_conn.state.configure(sync_seconds=float("inf"))
    result = run_dag(dag_id)
    assert result.state_of("wait_for_sync") == "skipped"


def test_401_fails_at_once_with_one_request(coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(api_key="wrong-key", extra=FAST_RETRY)
    )
    result = run_dag("cs_test_retries")  # retries=2 in the DAG
    assert result.tasks[("connect_wallet", -1)] == ("failed", 1)
    assert [r.status for r in coinstats_conn.state.requests()] == [401]


def test_429_and_503_bursts_are_survived(coinstats_conn: Any, run_dag: Any) -> None:
    coinstats_conn.state.configure(sync_polls=2)
    coinstats_conn.state.add_fault(Fault(kind="status", status=429, times=3, endpoint="connect_wallet"))
    coinstats_conn.state.add_fault(Fault(kind="status", status=503, times=3, endpoint="portfolio_transactions"))
    coinstats_conn.state.add_fault(Fault(kind="status", status=429, retry_after="0.2", times=2))
    result = run_dag("cs_test_poke")
    assert result.state == "success"
    assert statuses(coinstats_conn, "connect_wallet").count(429) >= 3
    assert statuses(coinstats_conn, "portfolio_transactions").count(503) == 3


def test_lost_connect_answer_does_not_duplicate(coinstats_conn: Any, run_dag: Any) -> None:
    # Every attempt of the first task try reaches CoinStats but loses its answer; the Airflow
    # retry then gets "existing" with the same id.
    coinstats_conn.state.add_fault(
        Fault(kind="drop_after", times=FAST_RETRY["max_attempts"], endpoint="connect_wallet")
    )
    coinstats_conn.state.configure(sync_polls=0)
    result = run_dag("cs_test_retries")
    assert result.state == "success"
    assert result.tasks[("connect_wallet", -1)] == ("success", 2)
    assert result.xcom("connect_wallet", "connection_status") == "existing"
    assert [p["portfolioId"] for p in coinstats_conn.state.portfolios()] == [result.xcom("connect_wallet")]


# --- secrets ----------------------------------------------------------------------------------------


def _db_dump(run_id: str) -> str:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel as XComRow
    except ImportError:  # Airflow 3.0
        from airflow.models.xcom import BaseXCom as XComRow
    with create_session() as session:
        xcoms = [repr(x.value) for x in session.query(XComRow).filter(XComRow.run_id == run_id)]
        rtif = [
            json.dumps(r.rendered_fields, default=str)
            for r in session.query(RenderedTaskInstanceFields).filter(RenderedTaskInstanceFields.run_id == run_id)
        ]
    assert rtif, "no rendered template fields were stored: the search below would prove nothing"
    return "\n".join(xcoms + rtif)


def _log_files() -> str:
    return "\n".join(p.read_text(errors="replace") for p in Path(airflow_home()).rglob("*.log") if p.is_file())


@pytest.mark.parametrize("dag_id", ["coinstats_exchange_pipeline", "cs_test_exchange_templated"])
def test_exchange_credentials_never_leak(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any, dag_id: str
) -> None:
    api_key = "cs-key-0e8a-SECRET"
    ex_key, ex_secret = "EXKEY-3f9d21-SECRET", "EXSECRET-b71c55-SECRET"
    coinstats_conn.state.configure(api_keys={api_key: 1_000_000}, sync_polls=2)
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(api_key=api_key, extra=FAST_RETRY)
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_EXAMPLE_EXCHANGE",
        json.dumps({"conn_type": "generic", "login": ex_key, "password": ex_secret}),
    )
    result = run_dag(dag_id)
    assert result.state == "success"
    out, err = capfd.readouterr()
    console = out + err
    assert "connect_exchange" in console  # the task logs were captured, so the search is real
    if AIRFLOW_3_0:
        # Airflow 3.0's in-process triggerer debug-logs every message it sends, including the
        # MaskSecret request its own connection lookup makes for the password. That line is
        # Airflow's (fixed in 3.1); everything else on the console is still searched.
        console = "\n".join(line for line in console.splitlines() if "MaskSecret(value=" not in line)
    haystacks = {
        "console": console,
        "log files": _log_files(),
        "xcom + rendered fields": _db_dump(result.run_id),
        "sandbox log": repr(coinstats_conn.state.requests()),
    }
    for where, text in haystacks.items():
        for secret in (api_key, ex_key, ex_secret):
            assert secret not in text, f"{secret} leaked into {where}"
