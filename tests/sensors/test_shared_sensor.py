"""``share_conn_id`` on the sync sensor, its trigger and the exports: checks at parse, the trigger in a live loop.

The trigger runs in a real event loop against the sandbox over HTTP (an app portfolio shared by
token + passcode, the key on the Degen plan); the connections are real ``AIRFLOW_CONN_*`` ones.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from typing import Any

import pytest

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor
from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator
from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator
from airflow_provider_coinstats.triggers.portfolio import CoinStatsPortfolioSyncTrigger
from tests.helpers import first_event
from tests.shared_portfolios import secrets_of, share_connection


def _sensor(**kwargs: Any) -> CoinStatsPortfolioSyncSensor:
    return CoinStatsPortfolioSyncSensor(task_id="wait", poke_interval=1, **kwargs)


def _sql(**kwargs: Any) -> CoinStatsToSqlOperator:
    return CoinStatsToSqlOperator(task_id="load", datasets=["coins"], sql_conn_id="wh", **kwargs)


def _file(**kwargs: Any) -> CoinStatsToFileOperator:
    return CoinStatsToFileOperator(task_id="files", datasets=["coins"], path="/tmp/x", **kwargs)


@pytest.mark.parametrize("build", [_sensor, _sql, _file], ids=["sensor", "sql", "file"])
@pytest.mark.parametrize(
    ("kwargs", "got"),
    [({}, "neither"), ({"portfolio_id": "p1", "share_conn_id": "cs_share"}, "both")],
    ids=["neither", "both"],
)
def test_exactly_one_of_portfolio_id_and_share_conn_id(build: Any, kwargs: dict[str, str], got: str) -> None:
    with pytest.raises(CoinStatsValidationError) as info:
        build(**kwargs)
    assert "exactly one of portfolio_id" in str(info.value) and "share_conn_id" in str(info.value)
    assert f"got {got}" in str(info.value)


@pytest.mark.parametrize("build", [_sensor, _sql, _file], ids=["sensor", "sql", "file"])
def test_share_conn_id_is_a_templated_field(build: Any) -> None:
    task = build(share_conn_id="cs_share")
    assert "share_conn_id" in task.template_fields
    assert (task.portfolio_id, task.share_conn_id) == (None, "cs_share")


def test_status_probe_cannot_wait_for_a_shared_portfolio() -> None:
    with pytest.raises(CoinStatsValidationError, match="'status' cannot wait for a shared portfolio"):
        _sensor(share_conn_id="cs_share", probe="status")
    _sensor(portfolio_id="p1", probe="status")  # still fine for an API portfolio


def test_trigger_serializes_only_the_connection_id(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    share, conn_id = share_connection(coinstats_conn, monkeypatch)
    trigger = CoinStatsPortfolioSyncTrigger(share_conn_id=conn_id, poll_interval=0.05, end_time=1234.5)
    classpath, kwargs = trigger.serialize()
    text = json.dumps(kwargs)
    assert kwargs["share_conn_id"] == conn_id and kwargs["portfolio_id"] is None
    for secret in secrets_of(share):
        assert secret not in text and secret not in repr(trigger)
    module, _, name = classpath.rpartition(".")
    assert getattr(importlib.import_module(module), name)(**kwargs).serialize() == (classpath, kwargs)
    with pytest.raises(CoinStatsValidationError, match="exactly one"):
        CoinStatsPortfolioSyncTrigger(poll_interval=0.05)


def test_trigger_reads_the_share_in_the_loop_and_names_it_by_public_id(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    share, conn_id = share_connection(coinstats_conn, monkeypatch, portfolio_name="family")
    coinstats_conn.state.set_sync(share.portfolio_id, polls=2)
    coinstats_conn.state.clear_requests()
    trigger = CoinStatsPortfolioSyncTrigger(share_conn_id=conn_id, poll_interval=0.05, end_time=time.time() + 30)
    event = asyncio.run(first_event(trigger))
    assert (event["status"], event["portfolio_id"], event["polls"]) == ("synced", "family", 3)
    records = coinstats_conn.state.requests("portfolio_transactions")
    assert [(r.status, r.portfolio_id) for r in records] == [(409, "shared:alice")] * 2 + [(200, "shared:alice")]
    assert all(not {"portfolioId", "shareToken", "sharetoken", "passcode"} & set(r.query) for r in records)
    assert all(secret not in json.dumps(event) for secret in secrets_of(share))


def test_trigger_with_a_missing_or_refused_share_fails_clearly(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = CoinStatsPortfolioSyncTrigger(share_conn_id="cs_nowhere", poll_interval=0.05, end_time=time.time() + 30)
    event = asyncio.run(first_event(missing))
    assert event["status"] == "failed"
    assert "share connection 'cs_nowhere' is not defined" in event["result"]["message"]
    assert event["portfolio_id"] == "shared portfolio of connection cs_nowhere"
    share, conn_id = share_connection(coinstats_conn, monkeypatch, wrong_passcode=True)
    coinstats_conn.state.clear_requests()
    refused = CoinStatsPortfolioSyncTrigger(share_conn_id=conn_id, poll_interval=0.05, end_time=time.time() + 30)
    event = asyncio.run(first_event(refused))
    assert event["status"] == "failed" and event["portfolio_id"].startswith("shared-")
    assert "Invalid passcode (reading a shared portfolio" in event["result"]["message"]
    assert [r.status for r in coinstats_conn.state.requests()] == [403]
    assert all(secret not in json.dumps(event) for secret in secrets_of(share))
