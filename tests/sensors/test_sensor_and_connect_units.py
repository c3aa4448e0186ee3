"""Sensor pokes and operator pre-flight checks, called directly against the sandbox.

The DAG-level behaviour (modes, XCom, retries) is in test_dags.py; these pin the decisions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_coinstats._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
)
from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.operators.portfolio import ConnectExchangeOperator, ConnectWalletOperator
from airflow_provider_coinstats.sandbox import Fault
from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor
from tests.helpers import ADDRESS, connect_wallet


def sensor(portfolio_id: str, **kwargs: Any) -> CoinStatsPortfolioSyncSensor:
    return CoinStatsPortfolioSyncSensor(task_id="wait", portfolio_id=portfolio_id, **kwargs)


def test_poke_not_yet_then_done(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=1)
    s = sensor(pid)
    assert s.poke({}) is False
    done = s.poke({})
    assert done
    assert done.xcom_value == pid  # type: ignore[union-attr]


@pytest.mark.parametrize("probe", ["coins", "value", "chart", "status"])
def test_other_probes(coinstats_conn: Any, probe: str) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=1)
    s = sensor(pid, probe=probe)
    assert not s.poke({})
    assert s.poke({})


@pytest.mark.parametrize(("status", "match"), [(401, "401"), (403, "403"), (406, "406"), (404, "404")])
def test_permanent_errors_fail_without_retries(coinstats_conn: Any, status: int, match: str) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=0)
    coinstats_conn.state.add_fault(Fault(kind="status", status=status, endpoint="portfolio_transactions"))
    with pytest.raises(AirflowFailException, match=match) as info:
        sensor(pid).poke({})
    assert "requestId=" in str(info.value)
    assert len(coinstats_conn.state.requests()) == 1


def test_budget_of_consecutive_transient_failures(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, sync_polls=0)
    coinstats_conn.state.add_fault(Fault(kind="status", status=429, times=3, endpoint="portfolio_transactions"))
    assert sensor(pid, max_consecutive_failures=3).poke({})  # 3 in a row tolerated
    coinstats_conn.state.clear_requests()
    coinstats_conn.state.add_fault(Fault(kind="drop", times=3, endpoint="portfolio_transactions"))
    with pytest.raises(AirflowException) as info:  # a plain failure: task retries still apply
        sensor(pid, max_consecutive_failures=2).poke({})
    assert not isinstance(info.value, AirflowFailException)
    # Budget 2 = three attempts, all dropped (logged without a status).
    assert [r.status for r in coinstats_conn.state.requests()] == [None, None, None]


def test_unrendered_upstream_id_fails_with_a_hint(coinstats_conn: Any) -> None:
    with pytest.raises(AirflowFailException, match="portfolio_id: rendered to 'None'"):
        sensor("None").poke({})
    with pytest.raises(AirflowFailException, match="portfolio_id"):
        sensor("  ").poke({})
    assert coinstats_conn.state.requests() == []


def test_constructor_validation() -> None:
    with pytest.raises(CoinStatsValidationError, match="probe"):
        sensor("p", probe="balance")
    with pytest.raises(CoinStatsValidationError, match="max_consecutive_failures"):
        sensor("p", max_consecutive_failures=-1)


#: Every class that waits for a sync, built with one argument overridden (the wait's timeout is
#: ``timeout`` for the sensor and ``sync_timeout`` for the connect operators).
WAITING_CLASSES: dict[str, Any] = {
    "sensor": lambda timeout=60.0, **kw: CoinStatsPortfolioSyncSensor(
        task_id="w", portfolio_id="p", timeout=timeout, **kw
    ),
    "wallet": lambda timeout=60.0, **kw: ConnectWalletOperator(
        task_id="c", address=ADDRESS, blockchain="ethereum", sync_timeout=timeout, **kw
    ),
    "exchange": lambda timeout=60.0, **kw: ConnectExchangeOperator(
        task_id="c", exchange="binance", sync_timeout=timeout, **kw
    ),
}


@pytest.mark.parametrize("build", WAITING_CLASSES.values(), ids=WAITING_CLASSES.keys())
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"probe": "balance"}, "probe"),
        ({"max_consecutive_failures": -1}, "max_consecutive_failures"),
        ({"max_consecutive_failures": True}, "max_consecutive_failures"),
        ({"max_consecutive_failures": "3"}, "max_consecutive_failures"),
    ],
)
def test_every_waiting_class_checks_its_arguments_the_same_way(build: Any, kwargs: dict[str, Any], field: str) -> None:
    """The connect operators accepted any failure budget before (the sensor checked alone)."""
    with pytest.raises(CoinStatsValidationError) as info:
        build(**kwargs)
    assert info.value.field == field
    waiting = build(max_consecutive_failures=0, timeout=0.5)  # the limits themselves are fine
    assert waiting.max_consecutive_failures == 0


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), -1, "60"])
@pytest.mark.parametrize("build", [WAITING_CLASSES["wallet"], WAITING_CLASSES["exchange"]], ids=["wallet", "exchange"])
def test_connect_operators_refuse_a_bad_sync_timeout(build: Any, timeout: Any) -> None:
    """Checked as the sensor's ``timeout`` is (BaseSensorOperator refuses these too)."""
    with pytest.raises(CoinStatsValidationError, match=r"^sync_timeout: must be a number of seconds >= 0"):
        build(timeout=timeout)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"status": "timeout", "portfolio_id": "p", "polls": 3, "waited": 9.5}, AirflowSensorTimeout),
        ({"status": "failed", "portfolio_id": "p", "result": {"message": "401 bad key"}}, AirflowFailException),
        ({"status": "error", "portfolio_id": "p", "result": {"message": "503"}}, AirflowException),
        ({"status": "cancelled", "portfolio_id": "p"}, AirflowFailException),
        (None, AirflowFailException),
    ],
)
@pytest.mark.parametrize("build", WAITING_CLASSES.values(), ids=WAITING_CLASSES.keys())
def test_execute_complete_closed_set(build: Any, event: Any, error: type[Exception]) -> None:
    waiting = build()
    with pytest.raises(error):
        waiting.execute_complete({}, event)
    assert waiting.execute_complete({}, {"status": "synced", "portfolio_id": "p", "polls": 2}) == "p"


def test_unknown_blockchain_names_closest_before_paying(coinstats_conn: Any) -> None:
    op = ConnectWalletOperator(task_id="c", address=ADDRESS, blockchain="etherium")
    with pytest.raises(AirflowFailException, match="closest supported: ethereum"):
        op.execute({})
    assert [r.endpoint for r in coinstats_conn.state.requests()] == ["wallet_blockchains"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"address": "  "}, "address"), ({"blockchain": ""}, "blockchain"), ({"portfolio_name": 7}, "portfolio_name")],
)
def test_wallet_input_checked_before_any_request(coinstats_conn: Any, kwargs: dict[str, Any], field: str) -> None:
    op = ConnectWalletOperator(task_id="c", **{"address": ADDRESS, "blockchain": "ethereum", **kwargs})
    with pytest.raises(AirflowFailException, match=f"^{field}: "):
        op.execute({})
    assert coinstats_conn.state.requests() == []


def exchange_op(monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any], **kwargs: Any) -> ConnectExchangeOperator:
    monkeypatch.setenv("AIRFLOW_CONN_EXCH", json.dumps({"conn_type": "generic", **conn}))
    return ConnectExchangeOperator(task_id="c", exchange_conn_id="exch", **kwargs)


def test_exchange_missing_required_field_is_named(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    op = exchange_op(monkeypatch, {"login": "k", "password": "s"}, exchange="okx")
    with pytest.raises(AirflowFailException, match=r"connection_fields\['passphrase'\].*missing passphrase"):
        op.execute({})
    assert [r.endpoint for r in coinstats_conn.state.requests()] == ["exchange_support"]


def test_exchange_unexpected_field_is_named(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    op = exchange_op(monkeypatch, {"login": "k", "password": "s", "extra": {"passphase": "x"}}, exchange="binance")
    with pytest.raises(AirflowFailException, match=r"not expected: passphase"):
        op.execute({})


def test_exchange_non_string_field_rejected_before_any_request(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = exchange_op(monkeypatch, {"login": "k", "extra": {"apiSecret": 12345}}, exchange="binance")
    with pytest.raises(AirflowFailException, match=r"connection_fields\['apiSecret'\]: must be a string") as info:
        op.execute({})
    assert "12345" not in str(info.value)
    assert coinstats_conn.state.requests() == []


def test_exchange_without_credentials(coinstats_conn: Any) -> None:
    with pytest.raises(AirflowFailException, match="exchange_conn_id"):
        ConnectExchangeOperator(task_id="c", exchange="binance").execute({})
    assert coinstats_conn.state.requests() == []


def test_expired_exchange_credentials_fail_fast(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    op = exchange_op(monkeypatch, {"login": "expired", "password": "s"}, exchange="binance")
    with pytest.raises(AirflowFailException, match="401"):
        op.execute({})
    assert [r.status for r in coinstats_conn.state.requests(endpoint="connect_exchange")] == [401]
