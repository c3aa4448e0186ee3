"""CoinStatsHook against the sandbox over real HTTP on loopback.

Retry counts are read from the sandbox's request log, never from mocks.
"""

from __future__ import annotations

import json
import logging
import time
from email.utils import formatdate
from typing import Any

import pytest

from airflow_provider_coinstats import exceptions as exc
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from tests.helpers import ADDRESS, FAST_RETRY, connect_wallet


def use_conn(monkeypatch: pytest.MonkeyPatch, server: Any, conn_id: str = "coinstats_default", **extra: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", server.airflow_connection(extra={**FAST_RETRY, **extra}))


def calls(server: Any, endpoint: str) -> list[Any]:
    return server.state.requests(endpoint=endpoint)


# --- every endpoint ---------------------------------------------------------------------------------


def test_every_endpoint_round_trip(coinstats_conn: Any) -> None:
    server = coinstats_conn
    hook = CoinStatsHook()
    chains = hook.get_blockchains()
    assert any(c["connectionId"] == "ethereum" for c in chains)
    exchanges = hook.get_supported_exchanges()
    binance = next(e for e in exchanges if e["connectionId"] == "binance")
    assert {f["key"] for f in binance["connectionFields"]} >= {"apiKey", "apiSecret"}

    pid = connect_wallet(server, hook=hook, clear_log=False)
    assert hook.get_portfolio_status(pid) == "synced"
    ex = hook.connect_exchange("binance", {"apiKey": "k-1", "apiSecret": "s-1"}, name="Binance main")
    assert ex.status == "connected"
    assert {p["portfolioId"] for p in hook.list_portfolios()} == {pid, ex.portfolio_id}

    value = hook.get_portfolio_value(pid)
    assert "totalValue" in value
    coins = hook.get_portfolio_coins(pid)
    assert coins
    assert all("coin" in c and "count" in c for c in coins)
    chart = hook.get_portfolio_chart(pid, "1w")
    assert chart
    assert all(len(point) == 4 for point in chart)
    txs = list(hook.iter_portfolio_transactions(pid))
    assert len(txs) == server.state.config.transactions_per_portfolio
    assert all("transactionType" in t and "date" in t for t in txs)
    defi = hook.get_portfolio_defi(pid)
    assert "protocols" in defi
    snapshots = list(hook.iter_portfolio_snapshot_items(pid, from_date="2025-01-01", to_date="2025-01-10"))
    assert snapshots
    assert all("date" in s for s in snapshots)
    pl = hook.get_portfolio_pl_history(pid, interval="daily", range_="1w")
    assert pl
    usage = hook.get_usage_credits()
    assert usage["usedCredits"] == server.state.credits_used()

    assert hook.sync_portfolio(pid) == {"success": True}
    assert hook.get_portfolio_status(pid) in ("syncing", "synced")
    hook.delete_portfolio(pid)
    with pytest.raises(exc.CoinStatsNotFoundError):
        hook.get_portfolio_value(pid)
    # The hook's own accounting agrees with the sandbox's ledger.
    assert hook.credits_spent == server.state.credits_used()
    assert hook.credits_spent > 0


def test_test_connection(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = CoinStatsHook().test_connection()
    assert ok, message
    assert coinstats_conn.url in message
    assert coinstats_conn.state.credits_used() == 0  # free call
    monkeypatch.setenv("AIRFLOW_CONN_BAD", coinstats_conn.airflow_connection(api_key="wrong-key", extra=FAST_RETRY))
    ok, message = CoinStatsHook("bad").test_connection()
    assert not ok
    assert "401" in message


def test_bearer_auth(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_conn(monkeypatch, coinstats_conn, auth_type="bearer")
    assert CoinStatsHook().get_usage_credits()["remainingCredits"] > 0


def test_connect_is_idempotent(coinstats_conn: Any) -> None:
    hook = CoinStatsHook()
    first = hook.connect_wallet(ADDRESS, "ethereum")
    again = hook.connect_wallet(ADDRESS.lower(), "ethereum")
    assert (first.status, again.status) == ("connected", "existing")
    assert first.portfolio_id == again.portfolio_id


# --- pagination -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "pages"), [(250, 3), (200, 3), (0, 1), (99, 1)])
def test_transactions_paginate(coinstats_conn: Any, count: int, pages: int) -> None:
    hook = CoinStatsHook()
    pid = connect_wallet(coinstats_conn, hook=hook, clear_log=False)
    coinstats_conn.state.set_transaction_count(pid, count)
    coinstats_conn.state.clear_requests()
    txs = list(hook.iter_portfolio_transactions(pid, limit=100))
    assert len(txs) == count
    assert len({json.dumps(t, sort_keys=True) for t in txs}) == count  # no page overlap
    logged = calls(coinstats_conn, "portfolio_transactions")
    assert [r.query["page"] for r in logged] == [str(p) for p in range(1, pages + 1)]


def test_pagination_is_lazy(coinstats_conn: Any) -> None:
    hook = CoinStatsHook()
    pid = connect_wallet(coinstats_conn, hook=hook, clear_log=False)
    coinstats_conn.state.set_transaction_count(pid, 100_000)
    coinstats_conn.state.clear_requests()
    it = hook.iter_portfolio_transactions(pid, limit=100)
    first = [next(it) for _ in range(150)]
    assert len(first) == 150
    assert len(calls(coinstats_conn, "portfolio_transactions")) == 2  # one page held at a time


# --- errors -----------------------------------------------------------------------------------------


def test_401_wrong_key_is_not_retried(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BAD", coinstats_conn.airflow_connection(api_key="wrong-key", extra=FAST_RETRY))
    with pytest.raises(exc.CoinStatsUnauthorizedError) as info:
        CoinStatsHook("bad").get_blockchains()
    assert info.value.request_id
    assert "requestId=" in str(info.value)
    assert len(coinstats_conn.state.requests()) == 1


def test_406_credits_exhausted_is_not_retried(coinstats_conn: Any) -> None:
    coinstats_conn.state.set_credits(coinstats_conn.api_key, 39)
    with pytest.raises(exc.CoinStatsCreditsExhaustedError):
        CoinStatsHook().connect_wallet(ADDRESS, "ethereum")
    assert len(coinstats_conn.state.requests()) == 1


def test_409_while_syncing_is_not_retried(coinstats_conn: Any) -> None:
    coinstats_conn.state.configure(sync_polls=3)
    hook = CoinStatsHook()
    pid = hook.connect_wallet(ADDRESS, "ethereum").portfolio_id
    with pytest.raises(exc.CoinStatsNotSyncedError) as info:
        hook.get_portfolio_coins(pid)
    assert "Transactions not synced" in str(info.value)
    assert len(calls(coinstats_conn, "portfolio_coins")) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, exc.CoinStatsBadRequestError),
        (403, exc.CoinStatsForbiddenError),
        (404, exc.CoinStatsNotFoundError),
    ],
)
def test_client_errors_fail_fast(coinstats_conn: Any, status: int, error: type[Exception]) -> None:
    coinstats_conn.state.add_fault(Fault(kind="status", status=status, endpoint="wallet_blockchains"))
    with pytest.raises(error):
        CoinStatsHook().get_blockchains()
    assert len(calls(coinstats_conn, "wallet_blockchains")) == 1


def test_server_side_400_for_unknown_blockchain(coinstats_conn: Any) -> None:
    with pytest.raises(exc.CoinStatsBadRequestError) as info:
        CoinStatsHook().connect_wallet(ADDRESS, "no-such-chain")
    assert info.value.request_id


def test_unknown_portfolio_is_404(coinstats_conn: Any) -> None:
    with pytest.raises(exc.CoinStatsNotFoundError):
        CoinStatsHook().get_portfolio_status("000000000000000000000000")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(kind="status", status=503), exc.CoinStatsServerError),
        (Fault(kind="status", status=502, body="text"), exc.CoinStatsServerError),
        (Fault(kind="status", status=500, body="empty"), exc.CoinStatsServerError),
        (Fault(kind="status", status=429), exc.CoinStatsRateLimitedError),
        (Fault(kind="truncate"), exc.CoinStatsInvalidResponseError),
        (Fault(kind="drop"), exc.CoinStatsTransportError),
    ],
)
def test_retryable_errors_exhaust_max_attempts(coinstats_conn: Any, fault: Fault, error: type[Exception]) -> None:
    fault.endpoint = "wallet_blockchains"
    coinstats_conn.state.add_fault(fault)
    with pytest.raises(error):
        CoinStatsHook().get_blockchains()
    assert len(calls(coinstats_conn, "wallet_blockchains")) == FAST_RETRY["max_attempts"]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="status", status=503, times=2),
        Fault(kind="status", status=504, times=2),
        Fault(kind="status", status=429, times=2),
        Fault(kind="status", status=503, times=2, body="no_request_id"),
        Fault(kind="drop", times=2),
        Fault(kind="truncate", times=2),
    ],
)
def test_fail_twice_then_succeed(coinstats_conn: Any, fault: Fault) -> None:
    fault.endpoint = "wallet_blockchains"
    coinstats_conn.state.add_fault(fault)
    assert CoinStatsHook().get_blockchains()
    statuses = [r.status for r in calls(coinstats_conn, "wallet_blockchains")]
    assert len(statuses) == 3
    assert statuses[-1] == 200


def test_timeout_is_retried(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    use_conn(monkeypatch, coinstats_conn, timeout=0.3)
    coinstats_conn.state.add_fault(Fault(kind="slow", delay=2.0, times=1, endpoint="wallet_blockchains"))
    assert CoinStatsHook().get_blockchains()
    # The slow answer is still in flight (the sandbox logs a request when it answers), so the
    # log holds the retry's 200 and the client logged the timeout it retried.
    assert [r.status for r in calls(coinstats_conn, "wallet_blockchains")] == [200]
    # Once Airflow has configured logging (any dag.test() earlier in the session), hook logs go
    # to stderr instead of propagating to caplog: look in both.
    out, err = capfd.readouterr()
    assert "ReadTimeout" in caplog.text + out + err


def test_total_retry_time_is_bounded(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Retry-After 1 s with at most 1.5 s of retrying: the second wait would overrun, so it stops.
    use_conn(monkeypatch, coinstats_conn, max_attempts=10, max_retry_time=1.5)
    coinstats_conn.state.add_fault(Fault(kind="status", status=429, retry_after="1", endpoint="wallet_blockchains"))
    with pytest.raises(exc.CoinStatsRateLimitedError):
        CoinStatsHook().get_blockchains()
    assert len(calls(coinstats_conn, "wallet_blockchains")) == 2


def gap(server: Any, endpoint: str) -> float:
    logged = calls(server, endpoint)
    assert len(logged) == 2
    return float(logged[1].at - logged[0].at)


def test_retry_after_seconds_honoured(coinstats_conn: Any) -> None:
    coinstats_conn.state.add_fault(
        Fault(kind="status", status=429, retry_after="1", times=1, endpoint="wallet_blockchains")
    )
    CoinStatsHook().get_blockchains()
    # Without the header the backoff is at most 0.05 s (FAST_RETRY).
    assert gap(coinstats_conn, "wallet_blockchains") >= 0.95


def test_retry_after_http_date_honoured(coinstats_conn: Any) -> None:
    when = formatdate(time.time() + 2.5, usegmt=True)  # whole seconds: waits between 1.5 and 2.5 s
    coinstats_conn.state.add_fault(
        Fault(kind="status", status=503, retry_after=when, times=1, endpoint="wallet_blockchains")
    )
    CoinStatsHook().get_blockchains()
    assert gap(coinstats_conn, "wallet_blockchains") >= 1.0


def test_retry_after_is_capped(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_conn(monkeypatch, coinstats_conn, retry_after_max=0.2)
    coinstats_conn.state.add_fault(
        Fault(kind="status", status=429, retry_after="3600", times=1, endpoint="wallet_blockchains")
    )
    CoinStatsHook().get_blockchains()
    assert 0.15 <= gap(coinstats_conn, "wallet_blockchains") < 2.0


def test_lost_connect_answer_is_retried_into_existing(coinstats_conn: Any) -> None:
    coinstats_conn.state.add_fault(Fault(kind="drop_after", times=1, endpoint="connect_wallet"))
    result = CoinStatsHook().connect_wallet(ADDRESS, "ethereum")
    assert result.status == "existing"
    assert len(coinstats_conn.state.portfolios()) == 1
    assert coinstats_conn.state.portfolios()[0]["portfolioId"] == result.portfolio_id
    assert len(calls(coinstats_conn, "connect_wallet")) == 2


# --- bad input: zero requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda h: h.connect_wallet("   ", "ethereum"),
        lambda h: h.connect_wallet(ADDRESS, ""),
        lambda h: h.connect_exchange("", {"apiKey": "a"}),
        lambda h: h.connect_exchange("binance", {"apiKey": 1, "apiSecret": "b"}),
        lambda h: h.get_portfolio_value(" "),
        lambda h: h.iter_portfolio_transactions("p", limit=1000),
        lambda h: h.iter_portfolio_transactions("p", currency=""),
        lambda h: h.get_portfolio_chart("p", "5y"),
    ],
)
def test_bad_input_sends_nothing(coinstats_conn: Any, call: Any) -> None:
    with pytest.raises(exc.CoinStatsValidationError):
        call(CoinStatsHook())
    assert coinstats_conn.state.requests() == []
    assert coinstats_conn.state.credits_used() == 0


def test_plain_http_to_remote_host_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_REMOTE",
        json.dumps({"conn_type": "coinstats", "host": "http://api.example.com", "password": "k"}),
    )
    with pytest.raises(exc.CoinStatsConfigError, match="loopback"):
        CoinStatsHook("remote").get_blockchains()


# --- secrets ----------------------------------------------------------------------------------------


def test_secrets_never_leak(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    api_key = "cs-key-5b0e1f7d-SECRET"
    exchange_key, exchange_secret = "EXKEY-93c1-SECRET", "EXSECRET-77aa-SECRET"
    server = coinstats_conn
    server.state.configure(api_keys={api_key: 1_000_000})
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_DEFAULT", server.airflow_connection(api_key=api_key, extra=FAST_RETRY))
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    hook = CoinStatsHook()
    server.state.add_fault(Fault(kind="status", status=503, times=2))  # retries log warnings
    hook.connect_exchange("binance", {"apiKey": exchange_key, "apiSecret": exchange_secret})
    for call in (
        lambda: hook.connect_exchange("kraken", {"apiKey": exchange_key}),  # 400: missing apiSecret
        lambda: hook.connect_exchange("binance", {"apiKey": "expired", "apiSecret": exchange_secret}),  # 401
        lambda: hook.get_portfolio_value("nope"),
    ):
        with pytest.raises(exc.CoinStatsError) as info:
            call()
        texts.append(str(info.value))
        texts.append(repr(info.value))
    monkeypatch.setenv("AIRFLOW_CONN_BAD", server.airflow_connection(api_key="wrong-" + api_key, extra=FAST_RETRY))
    with pytest.raises(exc.CoinStatsUnauthorizedError) as info:
        CoinStatsHook("bad").get_blockchains()
    texts.append(str(info.value))
    texts.append(repr(hook.settings))
    out, err = capfd.readouterr()
    haystacks = [caplog.text, out, err, *texts, repr(server.state.requests()), str(hook.get_usage_credits())]
    # The retries were logged, so the search below searched real log lines.
    assert "503" in caplog.text + out + err
    for secret in (api_key, exchange_key, exchange_secret):
        for haystack in haystacks:
            assert secret not in haystack


def test_non_object_answer_is_an_invalid_response() -> None:
    from airflow_provider_coinstats.api import builders
    from airflow_provider_coinstats.hooks.coinstats import _object

    request = builders.portfolio_value("p1")
    assert _object(None, request) == {}  # an empty DELETE answer
    assert _object({"totalValue": 1}, request) == {"totalValue": 1}
    with pytest.raises(exc.CoinStatsInvalidResponseError, match="GET /portfolio/value"):
        _object([1, 2], request)
