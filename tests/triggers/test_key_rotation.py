"""A waiting trigger survives an API key rotated in CoinStats and in the Airflow connection.

Everything runs for real: the sandbox over HTTP on loopback (its admin API rotates the key), the
trigger in a live asyncio event loop, the connection read from ``AIRFLOW_CONN_COINSTATS_DEFAULT``.
The test waits for polls in the sandbox's request log (polling it with a deadline), rotates, and
lets the trigger run on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_coinstats.hooks import coinstats_async
from airflow_provider_coinstats.triggers.portfolio import CoinStatsPortfolioSyncTrigger
from tests.helpers import ADDRESS, FAST_RETRY, connect_wallet, first_event

NEW_KEY = "cs-rotated-4b7e19-SECRET"


def rotate_over_http(server: Any, old: str, new: str) -> requests.Response:
    return requests.post(f"{server.url}/_sandbox/keys/rotate", json={"old": old, "new": new}, timeout=5)


def statuses(server: Any) -> list[int | None]:
    return [r.status for r in server.state.requests(endpoint="portfolio_transactions")]


async def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def run_and_rotate(
    server: Any, monkeypatch: pytest.MonkeyPatch, pid: str, connection_key: str
) -> tuple[dict[str, Any], int]:
    """Start the trigger, let it poll 3 times, rotate the key; returns (event, credits before rotation)."""
    trigger = CoinStatsPortfolioSyncTrigger(portfolio_id=pid, poll_interval=0.05, end_time=time.time() + 60)
    task = asyncio.create_task(first_event(trigger))
    await until(lambda: len(statuses(server)) >= 3, "three polls with the first key")
    old_key = server.api_key
    credits_before = server.state.credits_used(old_key)
    # The connection first, then CoinStats: a poll in between still succeeds with the old key,
    # and the first 401 is then answered by a connection that already holds the new one.
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_DEFAULT", server.airflow_connection(api_key=connection_key, extra=FAST_RETRY)
    )
    answer = await asyncio.to_thread(rotate_over_http, server, old_key, NEW_KEY)
    assert answer.status_code == 200, answer.text
    server.state.set_sync(pid, polls=2, seconds=0)
    event = await asyncio.wait_for(task, 30)
    return event, credits_before


def test_wait_survives_key_rotation(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    old_key = coinstats_conn.api_key
    pid = connect_wallet(coinstats_conn, syncing_forever=True)
    caplog.set_level(logging.INFO)

    event, credits_before = asyncio.run(run_and_rotate(coinstats_conn, monkeypatch, pid, NEW_KEY))

    assert event["status"] == "synced", event
    seen = statuses(coinstats_conn)
    first_401 = seen.index(401)
    assert first_401 >= 3
    assert set(seen[:first_401]) == {409}  # the old key, until CoinStats dropped it
    assert seen[first_401 + 1 :] == [409, 409, 200]  # the same poll retried, then on to the end
    # The new key took over the old one's ledger and was charged for the final data read (the
    # sandbox bills no 409): only it can have made that request, the old key is gone.
    assert coinstats_conn.state.credits_used(old_key) == 0
    assert coinstats_conn.state.credits_used(NEW_KEY) == credits_before + 4
    # The per-process cache now holds the new key, so the other triggers in this triggerer use it too.
    assert coinstats_async._settings_cache["coinstats_default"][1].api_key == NEW_KEY

    out, err = capfd.readouterr()
    logs = caplog.text + out + err  # stdlib logging on Airflow 3.0, structlog to the console on 3.1+
    assert "rotated?" in logs  # the trigger's log was captured: the search below is real
    for where, text in {"trigger log": logs, "event": json.dumps(event)}.items():
        for secret in (old_key, NEW_KEY):
            assert secret not in text, f"a key leaked into the {where}"


def test_second_401_with_the_reread_key_fails(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = connect_wallet(coinstats_conn, syncing_forever=True)

    event, _ = asyncio.run(run_and_rotate(coinstats_conn, monkeypatch, pid, "not-the-new-key"))

    assert event["status"] == "failed"
    assert event["result"]["status_code"] == 401
    seen = statuses(coinstats_conn)
    # One retry with the re-read key, and no more.
    assert seen[-2:] == [401, 401]
    assert seen.count(401) == 2
    assert set(seen[:-2]) == {409}


def test_401_with_an_unchanged_key_is_not_retried(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection re-read finds the same key: a retry could only 401 again, so none is sent."""
    pid = connect_wallet(coinstats_conn, syncing_forever=True)
    lookups: list[str] = []
    real = coinstats_async.aget_connection

    async def counting(conn_id: str) -> Any:
        lookups.append(conn_id)
        return await real(conn_id)

    monkeypatch.setattr(coinstats_async, "aget_connection", counting)
    coinstats_conn.state.rotate_key(coinstats_conn.api_key, NEW_KEY)  # the connection keeps the old key
    trigger = CoinStatsPortfolioSyncTrigger(portfolio_id=pid, poll_interval=0.05, end_time=time.time() + 30)

    event = asyncio.run(first_event(trigger))
    assert event["status"] == "failed"
    assert statuses(coinstats_conn) == [401]
    assert lookups == ["coinstats_default", "coinstats_default"]  # the first read, then the re-read


# --- the sandbox side of a rotation -------------------------------------------------------------


def test_sandbox_rotation_moves_ledger_and_portfolios(sandbox: Any) -> None:
    old_key = sandbox.api_key
    old = {"X-API-KEY": old_key}
    new = {"X-API-KEY": NEW_KEY}
    sandbox.state.configure(sync_polls=0)
    body = {"connectionId": "ethereum", "address": ADDRESS}
    first = requests.post(f"{sandbox.url}/portfolio/wallet", json=body, headers=old, timeout=5).json()
    used = sandbox.state.credits_used(old_key)
    assert used > 0

    answer = rotate_over_http(sandbox, old_key, NEW_KEY)
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "key": "key-1"}
    assert old_key not in answer.text
    assert NEW_KEY not in answer.text

    assert requests.get(f"{sandbox.url}/usage/credits", headers=old, timeout=5).status_code == 401
    usage = requests.get(f"{sandbox.url}/usage/credits", headers=new, timeout=5).json()
    assert usage["usedCredits"] == used
    listed = requests.get(f"{sandbox.url}/portfolio/list", headers=new, timeout=5)
    assert [p["portfolioId"] for p in listed.json()["result"]] == [first["portfolioId"]]
    # The same account: connecting the same wallet with the new key is "existing", same id.
    again = requests.post(f"{sandbox.url}/portfolio/wallet", json=body, headers=new, timeout=5).json()
    assert again["portfolioId"] == first["portfolioId"]
    assert again["status"] == "existing"
    assert sandbox.state.credits_report()["key-1"]["used"] == sandbox.state.credits_used(NEW_KEY)


def test_sandbox_old_key_readded_is_a_fresh_account(sandbox: Any) -> None:
    old_key = sandbox.api_key
    sandbox.state.configure(sync_polls=0)
    requests.post(
        f"{sandbox.url}/portfolio/wallet",
        json={"connectionId": "ethereum", "address": ADDRESS},
        headers={"X-API-KEY": old_key},
        timeout=5,
    )
    sandbox.state.rotate_key(old_key, NEW_KEY)
    sandbox.state.set_credits(old_key, 100)
    assert sandbox.state.portfolios(old_key) == []
    assert len(sandbox.state.portfolios(NEW_KEY)) == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"old": "no-such-key", "new": "whatever"}, 404, "old is not a configured API key"),
        ({"old": "sandbox-api-key", "new": ""}, 400, "new must be a non-empty string"),
        ({"old": "sandbox-api-key", "new": "sandbox-api-key"}, 400, "new is already a configured API key"),
        ({"old": "sandbox-api-key"}, 400, "body must be"),
    ],
)
def test_sandbox_rotation_errors_never_echo_keys(sandbox: Any, body: dict[str, str], status: int, message: str) -> None:
    answer = requests.post(f"{sandbox.url}/_sandbox/keys/rotate", json=body, timeout=5)
    assert answer.status_code == status
    assert message in answer.json()["message"]
    for value in body.values():
        if value:
            assert value not in answer.text
    assert requests.get(f"{sandbox.url}/usage/credits", headers={"X-API-KEY": "sandbox-api-key"}, timeout=5).ok


# --- the same through Airflow: a deferrable sensor under dag.test() --------------------------------


def test_deferrable_sensor_survives_key_rotation(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dag.test() runs the trigger in this process; a thread rotates the key once it is polling."""
    old_key = coinstats_conn.api_key
    coinstats_conn.state.configure(sync_polls=0, sync_seconds=math.inf)
    rotated = threading.Event()
    failure: list[BaseException] = []

    def rotate_mid_wait() -> None:
        try:
            deadline = time.monotonic() + 60
            # One poke in the worker, then two polls of the trigger: the wait is under way.
            while len(statuses(coinstats_conn)) < 3:
                if time.monotonic() > deadline:
                    raise AssertionError("the sensor never polled three times")
                time.sleep(0.01)
            (pid,) = [p["portfolioId"] for p in coinstats_conn.state.portfolios()]
            monkeypatch.setenv(
                "AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(api_key=NEW_KEY, extra=FAST_RETRY)
            )
            assert rotate_over_http(coinstats_conn, old_key, NEW_KEY).status_code == 200
            coinstats_conn.state.set_sync(pid, polls=1, seconds=0)
            rotated.set()
        except BaseException as error:  # handed to the test thread below
            failure.append(error)

    watcher = threading.Thread(target=rotate_mid_wait, daemon=True)
    watcher.start()
    result = run_dag("cs_test_deferrable")
    watcher.join(10)
    assert not failure, failure
    assert rotated.is_set()

    assert result.state == "success"
    assert result.xcom("wait_for_sync") == result.xcom("connect_wallet")
    seen = statuses(coinstats_conn)
    first_401 = seen.index(401)
    assert set(seen[:first_401]) == {409}
    assert seen[first_401 + 1 :] == [409, 200]
    assert coinstats_conn.state.credits_used(old_key) == 0
    assert coinstats_conn.state.credits_used(NEW_KEY) == 1 + 40 + 4  # lookup and connect, then the final read
