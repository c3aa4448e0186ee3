"""The timing floors with their defaults: poll/poke intervals refused at parse time, first poll delayed.

``tests/conftest.py`` lowers both floors for the rest of the suite; every test here removes or
sets them itself (the provider reads Airflow's config, environment included, at call time).
"""

from __future__ import annotations

import asyncio
import random
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.config import MIN_FIRST_POLL_DELAY, MIN_POLL_INTERVAL
from airflow_provider_coinstats.exceptions import CoinStatsConfigError, CoinStatsValidationError
from airflow_provider_coinstats.operators.portfolio import ConnectExchangeOperator, ConnectWalletOperator
from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor
from airflow_provider_coinstats.triggers.portfolio import POLL_JITTER, CoinStatsPortfolioSyncTrigger
from tests.helpers import ADDRESS, connect_wallet, first_event

POLL_ENV = "AIRFLOW__COINSTATS__MIN_POLL_INTERVAL"
FIRST_POLL_ENV = "AIRFLOW__COINSTATS__MIN_FIRST_POLL_DELAY"


@pytest.fixture
def default_floors(monkeypatch: pytest.MonkeyPatch) -> None:
    """No override: the documented defaults apply."""
    monkeypatch.delenv(POLL_ENV, raising=False)
    monkeypatch.delenv(FIRST_POLL_ENV, raising=False)


def test_documented_defaults() -> None:
    assert MIN_POLL_INTERVAL == 1.0  # CoinStats' free tier: 2 requests per second
    assert MIN_FIRST_POLL_DELAY == 10.0


# --- poll and poke intervals --------------------------------------------------------------------


def _dag_file(folder: Path, name: str, interval: float) -> Path:
    path = folder / f"{name}.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime

            from airflow.sdk import DAG

            from airflow_provider_coinstats.operators.portfolio import ConnectWalletOperator
            from airflow_provider_coinstats.sensors.portfolio import CoinStatsPortfolioSyncSensor

            with DAG(dag_id="{name}", schedule=None, start_date=datetime(2025, 1, 1)):
                ConnectWalletOperator(
                    task_id="connect", address="{ADDRESS}", blockchain="ethereum", poll_interval=max({interval}, 1)
                )
                CoinStatsPortfolioSyncSensor(task_id="wait", portfolio_id="p", poke_interval={interval})
            """
        )
    )
    return path


def _parse(folder: Path) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag(dag_folder=str(folder))  # examples are off: AIRFLOW__CORE__LOAD_EXAMPLES in conftest


def test_defaults_refuse_a_sub_second_poke_interval_when_the_dag_is_parsed(
    default_floors: None, tmp_path: Path, airflow_db: None
) -> None:
    too_fast = _dag_file(tmp_path, "cs_floor_too_fast", 0.3)
    fine = _dag_file(tmp_path, "cs_floor_fine", 1.0)
    bag = _parse(tmp_path)
    assert set(bag.dag_ids) == {"cs_floor_fine"}
    error = bag.import_errors[str(too_fast)]
    assert "CoinStatsValidationError" in error
    assert "poke_interval: must be at least 1 s" in error
    assert "[coinstats] min_poll_interval" in error
    assert str(fine) not in bag.import_errors


def test_the_floor_is_configurable_without_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, airflow_db: None
) -> None:
    monkeypatch.setenv(POLL_ENV, "0.2")
    _dag_file(tmp_path, "cs_floor_lowered", 0.3)
    bag = _parse(tmp_path)
    assert bag.import_errors == {}
    assert bag.dag_ids == ["cs_floor_lowered"]
    monkeypatch.setenv(POLL_ENV, "5")
    with pytest.raises(CoinStatsValidationError, match=r"poke_interval: must be at least 5 s"):
        CoinStatsPortfolioSyncSensor(task_id="w", portfolio_id="p", poke_interval=2)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda v: CoinStatsPortfolioSyncSensor(task_id="w", portfolio_id="p", poke_interval=v), "poke_interval"),
        (
            lambda v: CoinStatsPortfolioSyncSensor(task_id="w", portfolio_id="p", poke_interval=timedelta(seconds=v)),
            "poke_interval",
        ),
        (
            lambda v: ConnectWalletOperator(task_id="c", address=ADDRESS, blockchain="b", poll_interval=v),
            "poll_interval",
        ),
        (lambda v: ConnectExchangeOperator(task_id="c", exchange="binance", poll_interval=v), "poll_interval"),
    ],
)
def test_each_waiting_class_refuses_intervals_below_the_floor(default_floors: None, build: Any, field: str) -> None:
    with pytest.raises(CoinStatsValidationError, match=rf"^{field}: must be at least 1 s .*; got 0.5$") as info:
        build(0.5)
    assert info.value.field == field
    assert build(1.0) is not None  # the floor itself is allowed


def test_a_non_numeric_poll_interval_is_refused(default_floors: None) -> None:
    with pytest.raises(CoinStatsValidationError, match="poll_interval: must be a number of seconds"):
        ConnectWalletOperator(task_id="c", address=ADDRESS, blockchain="b", poll_interval="30")


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_a_bad_floor_setting_names_the_option(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(POLL_ENV, value)
    with pytest.raises(CoinStatsConfigError, match=r"\[coinstats\] min_poll_interval .*AIRFLOW__COINSTATS__MIN_POLL"):
        CoinStatsPortfolioSyncSensor(task_id="w", portfolio_id="p", poke_interval=30)


# --- the first poll after deferral --------------------------------------------------------------


def test_first_poll_waits_the_default_minimum(default_floors: None) -> None:
    created = time.time()
    trigger = CoinStatsPortfolioSyncTrigger(portfolio_id="p", poll_interval=1.0, end_time=created + 3600)
    assert trigger.not_before >= created + MIN_FIRST_POLL_DELAY
    for seed in range(200):
        now = time.time()
        delay = trigger._wait_before_poll(0, random.Random(seed))
        assert now + delay >= trigger.not_before
        assert delay <= (trigger.not_before - now) * (1 + POLL_JITTER)  # spread, not pushed out
        # Later polls keep the interval: the minimum is for the first one only.
        assert trigger._wait_before_poll(1, random.Random(seed)) <= 1.0 * (1 + POLL_JITTER)


def test_first_poll_minimum_holds_against_a_nearer_deadline(default_floors: None) -> None:
    trigger = CoinStatsPortfolioSyncTrigger(portfolio_id="p", poll_interval=1.0, end_time=time.time() + 2)
    now = time.time()
    assert now + trigger._wait_before_poll(0, random.Random(1)) >= trigger.not_before


def test_first_poll_minimum_survives_a_triggerer_restart(default_floors: None) -> None:
    trigger = CoinStatsPortfolioSyncTrigger(portfolio_id="p", poll_interval=1.0, end_time=time.time() + 3600)
    _, kwargs = trigger.serialize()
    assert CoinStatsPortfolioSyncTrigger(**kwargs).not_before == trigger.not_before
    # Re-created long after deferral, it does not wait the minimum again.
    kwargs["not_before"] = time.time() - 60
    assert CoinStatsPortfolioSyncTrigger(**kwargs)._wait_before_poll(0, random.Random(1)) <= 1.0


def test_first_poll_comes_no_sooner_than_the_minimum(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real trigger, real sandbox: measured on the sandbox's request log (same monotonic clock)."""
    monkeypatch.setenv(FIRST_POLL_ENV, "1.0")
    pid = connect_wallet(coinstats_conn, sync_polls=1)
    deferred_at = time.monotonic()
    trigger = CoinStatsPortfolioSyncTrigger(portfolio_id=pid, poll_interval=0.05, end_time=time.time() + 30)

    assert asyncio.run(first_event(trigger))["status"] == "synced"
    polls = coinstats_conn.state.requests(endpoint="portfolio_transactions")
    assert [r.status for r in polls] == [409, 200]
    assert polls[0].at - deferred_at >= 1.0
    assert polls[1].at - polls[0].at < 1.0  # the interval, not the minimum, after the first poll
