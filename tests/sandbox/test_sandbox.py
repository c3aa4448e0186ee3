"""Tests of the CoinStats sandbox itself, over real HTTP on loopback with plain requests/httpx."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from airflow_provider_coinstats.api.catalog import (
    CHART_TYPES,
    CREDITS_EXHAUSTED_MESSAGE,
    ENDPOINTS,
    INVALID_KEY_MESSAGE,
    NOT_SYNCED_MESSAGE,
    SYNC_ALL_MULTIPLIER,
)
from airflow_provider_coinstats.sandbox import Fault, SandboxConfig, SandboxServer
from tests.helpers import ADDRESS, connect_wallet_http, synced_wallet_http

pytest_plugins = ["airflow_provider_coinstats.sandbox.pytest_plugin"]

ROOT = Path(__file__).resolve().parents[1]
OKX_FIELDS = {"apiKey": "okx-key-value-123", "apiSecret": "okx-secret-value-456", "passphrase": "okx-pass-789"}


def cost(name: str) -> int:
    return ENDPOINTS[name].credits


def get(http: requests.Session, sandbox: SandboxServer, path: str, **params: Any) -> requests.Response:
    return http.get(f"{sandbox.url}{path}", params=params)


def assert_envelope(r: requests.Response | httpx.Response, status: int, path: str, message: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"statusCode", "message", "requestId", "path"}
    assert body["statusCode"] == status
    assert body["path"] == path
    uuid.UUID(body["requestId"])
    if message is not None:
        assert message in body["message"], body["message"]


# --------------------------------------------------------------------------- routing and auth


def test_bare_and_v1_paths_with_both_auth_headers(sandbox: SandboxServer) -> None:
    for prefix in ("", "/v1"):
        for headers in ({"X-API-KEY": sandbox.api_key}, {"Authorization": f"Bearer {sandbox.api_key}"}):
            r = requests.get(f"{sandbox.url}{prefix}/wallet/blockchains", headers=headers)
            assert r.status_code == 200
            ids = {c["connectionId"] for c in r.json()}
            assert {"ethereum", "bitcoin", "solana", "binancesmartchain", "base-wallet"} <= ids
            assert all(set(c) == {"name", "connectionId", "chain", "icon"} for c in r.json())
    hr = httpx.get(f"{sandbox.url}/v1/exchange/support", headers={"X-API-KEY": sandbox.api_key})
    exchanges = {e["connectionId"]: e for e in hr.json()}
    assert [f["key"] for f in exchanges["binance"]["connectionFields"]] == ["apiKey", "apiSecret"]
    assert [f["key"] for f in exchanges["okx"]["connectionFields"]] == ["apiKey", "apiSecret", "passphrase"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-KEY": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic sandbox-api-key"}],
)
def test_bad_or_missing_key_is_401_envelope(sandbox: SandboxServer, headers: dict[str, str]) -> None:
    r = requests.get(f"{sandbox.url}/v1/usage/credits", headers=headers)
    assert_envelope(r, 401, "/v1/usage/credits", INVALID_KEY_MESSAGE)
    assert r.json()["message"] == INVALID_KEY_MESSAGE


def test_unknown_route_and_method_are_404_envelopes(sandbox: SandboxServer, http: requests.Session) -> None:
    assert_envelope(http.get(f"{sandbox.url}/portfolio/nothing"), 404, "/portfolio/nothing", "Cannot GET")
    assert_envelope(http.get(f"{sandbox.url}/v1/portfolio/wallet"), 404, "/v1/portfolio/wallet")
    assert_envelope(http.get(f"{sandbox.url}/portfolio/list/"), 404, "/portfolio/list/")
    assert sandbox.state.requests()[-1].endpoint is None


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"address": ADDRESS, "connectionId": "ethereum", "foo": 1}, "property foo should not exist"),
        ({"address": ADDRESS, "connectionId": "ethereum", "name": None}, "name must be a string"),
        ({"connectionId": "ethereum"}, "address"),
        ({"address": "", "connectionId": "ethereum"}, "address should not be empty"),
        ({"address": ADDRESS}, "connectionId"),
        ({"address": ADDRESS, "connectionId": "dogechain"}, "connectionId dogechain"),
        ({"address": 5, "connectionId": "ethereum"}, "address must be a string"),
        ([1, 2], "JSON object"),
    ],
)
def test_connect_wallet_400s(sandbox: SandboxServer, http: requests.Session, body: Any, message: str) -> None:
    r = http.post(f"{sandbox.url}/portfolio/wallet", json=body)
    assert_envelope(r, 400, "/portfolio/wallet", message)
    assert sandbox.state.portfolios() == []
    assert sandbox.state.credits_used() == 0


def test_connect_wallet_rejects_non_json(sandbox: SandboxServer, http: requests.Session) -> None:
    r = http.post(f"{sandbox.url}/portfolio/wallet", data=b"address=0x1")
    assert_envelope(r, 400, "/portfolio/wallet", "JSON")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"connectionId": "okx", "connectionFields": {"apiKey": "a", "apiSecret": "b"}}, "connectionFields.passphrase"),
        (
            {"connectionId": "binance", "connectionFields": {"apiKey": "a", "apiSecret": "b", "x": "c"}},
            "connectionFields.x",
        ),
        ({"connectionId": "binance", "connectionFields": {"apiKey": "", "apiSecret": "b"}}, "connectionFields.apiKey"),
        ({"connectionId": "nasdaq", "connectionFields": {"apiKey": "a"}}, "connectionId nasdaq"),
        ({"connectionId": "binance"}, "connectionFields should not be empty"),
        ({"connectionId": "binance", "connectionFields": "a:b"}, "connectionFields must be an object"),
        ({"connectionFields": {"apiKey": "a"}}, "connectionId should not be empty"),
        ({"connectionId": "binance", "connectionFields": {"apiKey": "a", "apiSecret": "b"}, "x": 1}, "property x"),
    ],
)
def test_connect_exchange_400s(sandbox: SandboxServer, http: requests.Session, body: Any, message: str) -> None:
    r = http.post(f"{sandbox.url}/v1/portfolio/exchange", json=body)
    assert_envelope(r, 400, "/v1/portfolio/exchange", message)


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/portfolio/coins", {}, "portfolioId is required"),
        ("/portfolio/status", {}, "portfolioId is required"),
        ("/portfolio/transactions", {"portfolioId": "P"}, "currency is required"),
        ("/portfolio/transactions", {"portfolioId": "P", "currency": "USD", "limit": "0"}, "limit"),
        ("/portfolio/transactions", {"portfolioId": "P", "currency": "USD", "limit": "101"}, "limit"),
        ("/portfolio/transactions", {"portfolioId": "P", "currency": "USD", "page": "x"}, "page"),
        ("/portfolio/transactions", {"portfolioId": "P", "currency": "XYZ"}, "currency"),
        ("/portfolio/chart", {"portfolioId": "P", "type": "2d"}, "type must be one of"),
        ("/portfolio/chart", {"portfolioId": "P"}, "type is required"),
        ("/portfolio/coins", {"portfolioId": "P", "includeRiskScore": "maybe"}, "includeRiskScore"),
        ("/portfolio/snapshot/items", {"portfolioId": "P", "from": "01/02/2025"}, "YYYY-MM-DD"),
        ("/portfolio/pl/history", {"portfolioId": "P", "range": "1w"}, "interval is required"),
        ("/portfolio/pl/history", {"portfolioId": "P", "interval": "hourly", "range": "1w"}, "hourly"),
        ("/portfolio/pl/history", {"portfolioId": "P", "interval": "daily"}, "range or from and to"),
        ("/portfolio/pl/history", {"portfolioId": "P", "interval": "daily", "from": "2025-01-01"}, "together"),
    ],
)
def test_query_validation_400s_before_lookup(
    sandbox: SandboxServer, http: requests.Session, path: str, params: dict[str, str], message: str
) -> None:
    # "P" does not exist: a 400 (not 404) proves validation runs before the portfolio lookup.
    assert_envelope(get(http, sandbox, path, **params), 400, path, message)


# --------------------------------------------------------------------------- connect, list, delete


def test_wallet_connect_then_existing_with_same_id(sandbox: SandboxServer, http: requests.Session) -> None:
    url = f"{sandbox.url}/portfolio/wallet"
    first = http.post(url, json={"address": ADDRESS, "connectionId": "ethereum", "name": "Vitalik"}).json()
    assert first["status"] == "connected"
    assert first["connectionId"] == "ethereum"
    assert len(first["portfolioId"]) == 24
    int(first["portfolioId"], 16)
    # Syncing progress must survive a reconnect ("existing" does not restart the sync).
    assert get(http, sandbox, "/portfolio/status", portfolioId=first["portfolioId"]).json() == {"status": "syncing"}
    again = http.post(url, json={"address": ADDRESS.lower(), "connectionId": "ethereum"}).json()
    assert again == {**first, "status": "existing"}
    assert get(http, sandbox, "/portfolio/status", portfolioId=first["portfolioId"]).json() == {"status": "syncing"}
    assert get(http, sandbox, "/portfolio/status", portfolioId=first["portfolioId"]).json() == {"status": "synced"}
    # Same address on another chain, or another address: new portfolios.
    other_chain = http.post(url, json={"address": ADDRESS, "connectionId": "base-wallet"}).json()
    assert other_chain["status"] == "connected"
    assert other_chain["portfolioId"] != first["portfolioId"]
    listed = get(http, sandbox, "/portfolio/list").json()["result"]
    assert {p["portfolioId"]: p["portfolioName"] for p in listed}[first["portfolioId"]] == "Vitalik"
    assert {p["portfolioType"] for p in listed} == {"wallet"}
    assert all(set(p) == {"portfolioId", "portfolioName", "portfolioType"} for p in listed)


def test_exchange_connect_existing_and_expired_credentials(sandbox: SandboxServer, http: requests.Session) -> None:
    url = f"{sandbox.url}/portfolio/exchange"
    first = http.post(url, json={"connectionId": "okx", "connectionFields": OKX_FIELDS}).json()
    assert first["status"] == "connected"
    assert first["connectionId"] == "okx"
    rotated_secret = {**OKX_FIELDS, "apiSecret": "new-secret"}
    again = http.post(url, json={"connectionId": "okx", "connectionFields": rotated_secret}).json()
    assert again == {**first, "status": "existing"}
    other = http.post(url, json={"connectionId": "okx", "connectionFields": {**OKX_FIELDS, "apiKey": "k2"}}).json()
    assert other["status"] == "connected"
    assert other["portfolioId"] != first["portfolioId"]
    used = sandbox.state.credits_used()
    assert used == 3 * cost("connect_exchange")

    expired = {"apiKey": "expired", "apiSecret": "s"}
    r = http.post(url, json={"connectionId": "kraken", "connectionFields": expired})
    assert_envelope(r, 401, "/portfolio/exchange", "Exchange credentials expired")
    assert sandbox.state.credits_used() == used
    assert len(sandbox.state.portfolios()) == 2


def test_delete_then_reads_are_404(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    assert get(http, sandbox, "/portfolio/coins", portfolioId=pid).status_code == 200
    r = http.delete(f"{sandbox.url}/v1/portfolio/{pid}")
    assert r.json() == {"message": "Portfolio deleted successfully"}
    for path in ("/portfolio/coins", "/portfolio/status", "/portfolio/value"):
        assert_envelope(get(http, sandbox, path, portfolioId=pid), 404, path)
    assert_envelope(http.delete(f"{sandbox.url}/portfolio/{pid}"), 404, f"/portfolio/{pid}")
    assert sandbox.state.portfolios() == []


def test_another_keys_portfolio_is_404(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.state.set_credits("second-key", 1000)
    pid = synced_wallet_http(sandbox, http)
    other = {"X-API-KEY": "second-key"}
    assert_envelope(
        requests.get(f"{sandbox.url}/portfolio/coins", params={"portfolioId": pid}, headers=other),
        404,
        "/portfolio/coins",
    )
    assert requests.get(f"{sandbox.url}/portfolio/list", headers=other).json() == {"result": []}
    assert sandbox.state.portfolios("second-key") == []
    assert [p["portfolioId"] for p in sandbox.state.portfolios(sandbox.api_key)] == [pid]


# --------------------------------------------------------------------------- sync model


def test_409_exactly_sync_polls_times_then_200(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.state.configure(sync_polls=3)
    pid = connect_wallet_http(sandbox, http)
    codes = [get(http, sandbox, "/portfolio/coins", portfolioId=pid).status_code for _ in range(5)]
    assert codes == [409, 409, 409, 200, 200]
    r = get(http, sandbox, "/v1/portfolio/value", portfolioId=pid)
    assert r.status_code == 200

    pid2 = connect_wallet_http(sandbox, http, address="0x" + "ab" * 20)
    # Status polls count too, and status itself never answers 409.
    assert get(http, sandbox, "/portfolio/status", portfolioId=pid2).json() == {"status": "syncing"}
    r = get(http, sandbox, "/portfolio/transactions", portfolioId=pid2, currency="USD")
    assert_envelope(r, 409, "/portfolio/transactions", NOT_SYNCED_MESSAGE)
    assert r.json()["message"] == NOT_SYNCED_MESSAGE
    assert get(http, sandbox, "/portfolio/status", portfolioId=pid2).json() == {"status": "syncing"}
    assert get(http, sandbox, "/portfolio/status", portfolioId=pid2).json() == {"status": "synced"}
    # 409s are free; status polls cost their price even while syncing.
    expected = (
        2 * cost("connect_wallet")
        + 2 * cost("portfolio_coins")
        + cost("portfolio_value")
        + 3 * cost("portfolio_status")
    )
    assert sandbox.state.credits_used() == expected


def test_sync_seconds_must_also_elapse(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.state.configure(sync_polls=0, sync_seconds=0.3)
    started = time.monotonic()
    pid = connect_wallet_http(sandbox, http)
    assert get(http, sandbox, "/portfolio/coins", portfolioId=pid).status_code == 409
    statuses = []
    for _ in range(200):  # bounded: 200 x 20 ms is far beyond the 0.3 s sync
        status = get(http, sandbox, "/portfolio/status", portfolioId=pid).json()["status"]
        statuses.append(status)
        if status == "synced":
            break
        time.sleep(0.02)
    assert statuses[-1] == "synced"
    assert statuses[0] == "syncing"
    assert time.monotonic() - started >= 0.3
    assert get(http, sandbox, "/portfolio/coins", portfolioId=pid).status_code == 200

    sandbox.state.set_sync(pid, polls=0, seconds=float("inf"))
    assert get(http, sandbox, "/portfolio/status", portfolioId=pid).json() == {"status": "syncing"}


def test_patch_sync_reenters_syncing_and_sync_all_costs_more(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    pid2 = synced_wallet_http(
        sandbox, http, address="bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", connection_id="bitcoin"
    )
    sandbox.state.configure(sync_polls=1)
    r = http.patch(f"{sandbox.url}/portfolio/sync", params={"portfolioId": pid})
    assert r.json() == {"success": True}
    assert get(http, sandbox, "/portfolio/coins", portfolioId=pid).status_code == 409
    assert get(http, sandbox, "/portfolio/coins", portfolioId=pid2).status_code == 200
    assert get(http, sandbox, "/portfolio/coins", portfolioId=pid).status_code == 200

    before = sandbox.state.credits_used()
    assert http.patch(f"{sandbox.url}/v1/portfolio/sync").json() == {"success": True}
    assert sandbox.state.credits_used() - before == cost("portfolio_sync") * SYNC_ALL_MULTIPLIER
    assert {p["status"] for p in sandbox.state.portfolios()} == {"syncing"}
    assert_envelope(http.patch(f"{sandbox.url}/portfolio/sync", params={"portfolioId": "nope"}), 404, "/portfolio/sync")


# --------------------------------------------------------------------------- credits


def test_credit_ledger_matches_catalog_and_usage(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.state.configure(sync_polls=0)
    pid = connect_wallet_http(sandbox, http)
    calls = [
        ("portfolio_status", "/portfolio/status", {}),
        ("portfolio_value", "/portfolio/value", {"currency": "EUR"}),
        ("portfolio_coins", "/portfolio/coins", {}),
        ("portfolio_chart", "/portfolio/chart", {"type": "1w"}),
        ("portfolio_transactions", "/portfolio/transactions", {"currency": "USD"}),
        ("portfolio_defi", "/portfolio/defi", {}),
        ("portfolio_snapshot_items", "/portfolio/snapshot/items", {}),
        ("portfolio_pl_history", "/portfolio/pl/history", {"interval": "daily", "range": "1m"}),
    ]
    expected = cost("connect_wallet")
    for name, path, params in calls:
        r = get(http, sandbox, path, portfolioId=pid, **params)
        assert r.status_code == 200, (path, r.text)
        expected += cost(name)
        assert sandbox.state.requests()[-1].credits == cost(name)
    for name, path in (("wallet_blockchains", "/wallet/blockchains"), ("exchange_support", "/exchange/support")):
        assert get(http, sandbox, path).status_code == 200
        expected += cost(name)
    get(http, sandbox, "/portfolio/transactions", portfolioId=pid)  # 400: free
    get(http, sandbox, "/portfolio/list")
    assert sandbox.state.credits_used() == expected
    usage = get(http, sandbox, "/usage/credits").json()
    assert usage == {
        "totalCredits": 1_000_000,
        "usedCredits": expected,
        "remainingCredits": 1_000_000 - expected,
        "subscription": "PRO",
    }
    assert sum(r.credits for r in sandbox.state.requests()) == expected


def test_406_when_credits_run_out(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.state.configure(sync_polls=0)
    sandbox.state.set_credits(sandbox.api_key, cost("connect_wallet") + 5)
    pid = connect_wallet_http(sandbox, http)
    r = get(http, sandbox, "/portfolio/coins", portfolioId=pid)
    assert_envelope(r, 406, "/portfolio/coins", CREDITS_EXHAUSTED_MESSAGE)
    assert get(http, sandbox, "/portfolio/status", portfolioId=pid).status_code == 200  # 3 <= 5
    assert get(http, sandbox, "/portfolio/status", portfolioId=pid).status_code == 406  # 3 > 2
    assert get(http, sandbox, "/portfolio/list").status_code == 200  # free calls still work
    assert get(http, sandbox, "/usage/credits").json()["remainingCredits"] == 2
    # Credits are checked before the lookup: an unknown id with no credits is 406, not 404.
    assert get(http, sandbox, "/portfolio/coins", portfolioId="unknown").status_code == 406


# --------------------------------------------------------------------------- faults


def test_status_fault_json_with_retry_after_has_no_side_effect(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.state.add_fault(Fault("status", endpoint="connect_wallet", status=429, retry_after="2", times=1))
    r = http.post(f"{sandbox.url}/v1/portfolio/wallet", json={"address": ADDRESS, "connectionId": "ethereum"})
    assert_envelope(r, 429, "/v1/portfolio/wallet", "Rate limit exceeded")
    assert r.headers["Retry-After"] == "2"
    assert sandbox.state.portfolios() == []
    assert sandbox.state.credits_used() == 0
    record = sandbox.state.requests()[-1]
    assert (record.status, record.fault, record.credits) == (429, "status", 0)
    # times=1 expired: the retry succeeds.
    connect_wallet_http(sandbox, http)
    assert sandbox.state.faults() == []


@pytest.mark.parametrize("body", ["text", "empty", "no_request_id"])
def test_status_fault_body_styles(sandbox: SandboxServer, http: requests.Session, body: str) -> None:
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    sandbox.state.add_fault(Fault("status", endpoint="usage_credits", status=503, body=body, retry_after=date))  # type: ignore[arg-type]
    r = get(http, sandbox, "/usage/credits")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == date
    if body == "text":
        assert r.headers["content-type"].startswith("text/html")
        with pytest.raises(requests.exceptions.JSONDecodeError):
            r.json()
    elif body == "empty":
        assert r.content == b""
    else:
        assert r.json() == {"statusCode": 503, "message": "Service Unavailable. Please Contact Support"}


def test_status_fault_without_retry_after(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.state.add_fault(Fault("status", status=500))
    r = get(http, sandbox, "/wallet/blockchains")
    assert_envelope(r, 500, "/wallet/blockchains")
    assert "Retry-After" not in r.headers


def test_times_fault_then_success(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    sandbox.state.add_fault(Fault("status", endpoint="portfolio_coins", status=503, times=2))
    codes = [get(http, sandbox, "/portfolio/coins", portfolioId=pid).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert get(http, sandbox, "/portfolio/value", portfolioId=pid).status_code == 200


def test_rate_fault_is_seeded(sandbox: SandboxServer, http: requests.Session) -> None:
    def pattern() -> list[int]:
        sandbox.state.add_fault(Fault("status", endpoint="/wallet/*", status=502, rate=0.5))
        codes = [get(http, sandbox, "/v1/wallet/blockchains").status_code for _ in range(24)]
        sandbox.state.reset()
        return codes

    first = pattern()
    assert set(first) == {200, 502}
    assert pattern() == first  # same seed, same sequence
    sandbox.state.configure(seed=99)
    assert pattern() != first


def test_fault_endpoint_glob_and_order(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    sandbox.state.add_fault(Fault("status", endpoint="/portfolio/co*", status=418, times=1))
    sandbox.state.add_fault(Fault("status", endpoint="/portfolio/*", status=502))
    assert get(http, sandbox, "/v1/portfolio/coins", portfolioId=pid).status_code == 418
    assert get(http, sandbox, "/portfolio/coins", portfolioId=pid).status_code == 502
    assert get(http, sandbox, "/v1/portfolio/value", portfolioId=pid).status_code == 502
    assert get(http, sandbox, "/wallet/blockchains").status_code == 200


def test_slow_fault_and_latency(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.state.add_fault(Fault("slow", endpoint="exchange_support", delay=0.3, times=1))
    started = time.monotonic()
    assert get(http, sandbox, "/exchange/support").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert sandbox.state.requests()[-1].fault == "slow"

    sandbox.state.configure(latency=0.3)
    started = time.monotonic()
    assert get(http, sandbox, "/wallet/blockchains").status_code == 200
    assert time.monotonic() - started >= 0.3

    # Latency must not block the event loop: concurrent requests overlap.
    results: list[int] = []

    def one() -> None:
        results.append(requests.get(f"{sandbox.url}/usage/credits", headers={"X-API-KEY": sandbox.api_key}).status_code)

    threads = [threading.Thread(target=one) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert time.monotonic() - started < 1.0


def test_request_in_flight_across_reset_leaves_no_trace(sandbox: SandboxServer) -> None:
    sandbox.state.add_fault(Fault("slow", endpoint="connect_wallet", delay=0.4, times=1))
    errors: list[Exception] = []

    def connect() -> None:
        try:
            requests.post(
                f"{sandbox.url}/portfolio/wallet",
                json={"address": ADDRESS, "connectionId": "ethereum"},
                headers={"X-API-KEY": sandbox.api_key},
            )
        except requests.exceptions.RequestException as error:
            errors.append(error)

    worker = threading.Thread(target=connect)
    worker.start()
    for _ in range(100):  # wait until the request is inside the sandbox (the fault is consumed)
        if not sandbox.state.faults():
            break
        time.sleep(0.01)
    sandbox.state.reset()  # what the pytest plugin does between tests
    worker.join(5)
    assert len(errors) == 1
    assert sandbox.state.portfolios() == []
    assert sandbox.state.requests() == []
    assert sandbox.state.credits_used() == 0


def test_drop_is_a_transport_error_without_side_effect(
    sandbox: SandboxServer, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    body = {"address": ADDRESS, "connectionId": "ethereum"}
    sandbox.state.add_fault(Fault("drop", endpoint="connect_wallet", times=2))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.post(f"{sandbox.url}/portfolio/wallet", json=body)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{sandbox.url}/portfolio/wallet", json=body, headers={"X-API-KEY": sandbox.api_key})
    assert sandbox.state.portfolios() == []
    assert sandbox.state.credits_used() == 0
    records = sandbox.state.requests("connect_wallet")
    assert [(r.status, r.fault, r.credits) for r in records] == [(None, "drop", 0)] * 2
    # The server keeps serving on new connections, and never logged a traceback for the drops.
    assert connect_wallet_http(sandbox, http)
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]


def test_drop_after_does_the_operation(sandbox: SandboxServer, http: requests.Session) -> None:
    body = {"address": ADDRESS, "connectionId": "ethereum"}
    sandbox.state.add_fault(Fault("drop_after", endpoint="connect_wallet", times=1))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.post(f"{sandbox.url}/portfolio/wallet", json=body)
    created = sandbox.state.portfolios()
    assert len(created) == 1
    assert sandbox.state.credits_used() == cost("connect_wallet")
    record = sandbox.state.requests()[-1]
    assert (record.status, record.fault, record.portfolio_id) == (None, "drop_after", created[0]["portfolioId"])
    # A client retrying the lost connect gets the same portfolio back.
    again = http.post(f"{sandbox.url}/portfolio/wallet", json=body).json()
    assert again == {"portfolioId": created[0]["portfolioId"], "connectionId": "ethereum", "status": "existing"}

    sandbox.state.add_fault(Fault("drop_after", endpoint="usage_credits", times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{sandbox.url}/usage/credits", headers={"X-API-KEY": sandbox.api_key})


def test_truncate_gives_complete_http_with_incomplete_json(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    sandbox.state.add_fault(Fault("truncate", endpoint="portfolio_coins", times=2))
    r = get(http, sandbox, "/portfolio/coins", portfolioId=pid)
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == len(r.content)
    with pytest.raises(requests.exceptions.JSONDecodeError):
        r.json()
    hr = httpx.get(
        f"{sandbox.url}/portfolio/coins", params={"portfolioId": pid}, headers={"X-API-KEY": sandbox.api_key}
    )
    with pytest.raises(json.JSONDecodeError):
        hr.json()
    full = get(http, sandbox, "/portfolio/coins", portfolioId=pid)
    assert full.content.startswith(r.content)
    assert len(r.content) == len(full.content) // 2
    assert [x.credits for x in sandbox.state.requests("portfolio_coins")] == [cost("portfolio_coins")] * 3


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="endpoint"):
        Fault("drop", endpoint="coins")
    with pytest.raises(ValueError, match="times"):
        Fault("drop", times=0)
    with pytest.raises(ValueError, match="rate"):
        Fault("drop", rate=1.5)
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_dict({"kind": "drop", "code": 1})


# --------------------------------------------------------------------------- data


def test_transactions_pagination_large_portfolio(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    sandbox.state.set_transaction_count(pid, 100_000)

    def page(n: int, limit: int = 100) -> list[dict[str, Any]]:
        r = get(http, sandbox, "/portfolio/transactions", portfolioId=pid, currency="USD", page=n, limit=limit)
        assert r.status_code == 200
        body = r.json()
        assert body["meta"] == {"page": n, "limit": limit}
        return list(body["data"])

    def row_key(tx: dict[str, Any]) -> tuple[Any, ...]:
        coin = tx["coinData"]
        return (tx["date"], tx["transactionType"], coin["identifier"], coin["count"], json.dumps(tx["fee"]))

    started = time.monotonic()
    first, second, middle, last = page(1), page(2), page(500), page(1000)
    assert time.monotonic() - started < 5
    assert [len(p) for p in (first, second, middle, last)] == [100, 100, 100, 100]
    assert page(1001) == []
    # Stable across calls and page sizes: two pages of 50 are the first page of 100.
    assert page(1) == first
    assert page(1, 50) + page(2, 50) == first
    rows = first + second + middle + last
    assert len({row_key(tx) for tx in rows}) == len(rows)
    dates = [tx["date"] for tx in rows]
    assert dates == sorted(dates, reverse=True)  # newest first across pages


def test_transactions_default_count_and_filters(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    sizes = []
    all_rows: list[dict[str, Any]] = []
    for n in range(1, 5):
        data = get(http, sandbox, "/portfolio/transactions", portfolioId=pid, currency="USD", page=n).json()["data"]
        sizes.append(len(data))
        all_rows += data
    assert sizes == [20, 20, 17, 0]
    tx = all_rows[0]
    assert tx["transactionType"] in {"Sent", "Dust Convert", "Roll In", "Received", "Swap", "Buy", "Sell"}
    assert tx["date"].endswith("Z") and len(tx["date"]) == len("2025-08-28T08:35:50.384Z")
    assert set(tx) >= {"transactionType", "date", "coinData", "profitLoss", "fee", "transfers", "portfolioInfo"}
    assert set(tx["coinData"]) == {"identifier", "count", "symbol", "totalWorth", "currentValue"}
    assert set(tx["profitLoss"]) == {"profit", "profitPercent", "currentValue"}

    coin = all_rows[5]["coinData"]["identifier"]
    filtered = get(
        http, sandbox, "/portfolio/transactions", portfolioId=pid, currency="USD", coinId=coin, limit=100
    ).json()["data"]
    assert filtered == [t for t in all_rows if t["coinData"]["identifier"] == coin]

    window_from, window_to = all_rows[30]["date"], all_rows[10]["date"]
    windowed = get(
        http,
        sandbox,
        "/portfolio/transactions",
        portfolioId=pid,
        currency="USD",
        limit=100,
        **{"from": window_from, "to": window_to},
    ).json()["data"]
    assert windowed == all_rows[11:31]  # [from, to)


def test_read_endpoint_shapes_are_deterministic(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    value = get(http, sandbox, "/portfolio/value", portfolioId=pid).json()
    assert set(value) == {
        "totalValue", "defiValue", "totalCost", "unrealizedProfitLoss", "unrealizedProfitLossPercent",
        "realizedProfitLoss", "realizedProfitLossPercent", "allTimeProfitLoss", "allTimeProfitLossPercent",
    }  # fmt: skip
    eur = get(http, sandbox, "/portfolio/value", portfolioId=pid, currency="EUR").json()
    assert 0 < eur["totalValue"] < value["totalValue"]

    coins = get(http, sandbox, "/portfolio/coins", portfolioId=pid, limit=100).json()["result"]
    assert 6 <= len(coins) <= 15
    item = coins[0]
    assert set(item) >= {"count", "coin", "price", "profit", "profitPercent", "averageBuy", "averageSell"}
    assert set(item["price"]) == {"USD", "BTC", "ETH"}
    assert set(item["profit"]) == {"allTime", "hour24", "lastTrade", "unrealized", "realized"}
    assert "riskScore" not in item
    paged = [
        c
        for n in (1, 2, 3, 4, 5)
        for c in get(http, sandbox, "/portfolio/coins", portfolioId=pid, page=n, limit=3).json()["result"]
    ]
    assert paged == coins
    risky = get(http, sandbox, "/portfolio/coins", portfolioId=pid, includeRiskScore="true").json()["result"]
    assert "riskScore" in risky[0]

    hours = {"24h": 25, "1w": 29, "1m": 31, "1y": 366}
    for chart_type in CHART_TYPES:
        points = get(http, sandbox, "/portfolio/chart", portfolioId=pid, type=chart_type).json()["result"]
        assert all(len(p) == 4 for p in points)
        assert [p[0] for p in points] == sorted(p[0] for p in points)
        assert points[0][0] > 10**12  # milliseconds
        if chart_type in hours:
            assert len(points) == hours[chart_type]

    defi = get(http, sandbox, "/portfolio/defi", portfolioId=pid).json()
    assert set(defi) == {"totalAssets", "protocols"}
    assert 2 <= len(defi["protocols"]) <= 4
    assert set(defi["protocols"][0]) >= {"id", "name", "totalValue", "blockchain", "chain", "investments"}

    snaps = get(
        http, sandbox, "/portfolio/snapshot/items", portfolioId=pid, **{"from": "2025-11-01", "to": "2025-11-10"}
    ).json()["result"]
    assert [s["date"][:10] for s in snaps] == [f"2025-11-{d:02d}" for d in range(1, 11)]
    assert set(snaps[0]) == {"date", "coinBalances", "totalBalance", "totalBalanceChange", "totalBalancePercentChange"}

    pl = get(http, sandbox, "/portfolio/pl/history", portfolioId=pid, interval="daily", range="1w").json()["result"]
    assert len(pl) == 8
    assert set(pl[0]) == {"date", "profitLoss", "profitLossPercent", "value", "netFlow"}
    hourly = get(
        http,
        sandbox,
        "/portfolio/pl/history",
        portfolioId=pid,
        interval="hourly",
        **{"from": "2025-06-01T00:00:00Z", "to": "2025-06-02T00:00:00Z"},
    ).json()["result"]
    assert len(hourly) == 24

    # Same request, same bytes.
    for path, params in (("/portfolio/coins", {}), ("/portfolio/defi", {}), ("/portfolio/chart", {"type": "1m"})):
        assert (
            get(http, sandbox, path, portfolioId=pid, **params).content
            == get(http, sandbox, path, portfolioId=pid, **params).content
        )


# --------------------------------------------------------------------------- request log and admin API


def test_request_log_contents_and_no_secrets(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.state.configure(sync_polls=1)
    r = http.post(f"{sandbox.url}/v1/portfolio/exchange", json={"connectionId": "okx", "connectionFields": OKX_FIELDS})
    pid = r.json()["portfolioId"]
    get(http, sandbox, "/portfolio/coins", portfolioId=pid, limit=5)
    get(http, sandbox, "/portfolio/coins", portfolioId=pid, limit=5)
    requests.get(f"{sandbox.url}/portfolio/coins", headers={"Authorization": f"Bearer {sandbox.api_key}"})

    log = sandbox.state.requests()
    assert [r.seq for r in log] == sorted(r.seq for r in log)
    connect = log[0]
    assert (connect.method, connect.path, connect.endpoint) == ("POST", "/v1/portfolio/exchange", "connect_exchange")
    assert (connect.status, connect.credits, connect.portfolio_id) == (200, cost("connect_exchange"), pid)
    coins = sandbox.state.requests(endpoint="portfolio_coins")
    assert [(c.status, c.credits, c.query) for c in coins[:2]] == [
        (409, 0, {"portfolioId": pid, "limit": "5"}),
        (200, cost("portfolio_coins"), {"portfolioId": pid, "limit": "5"}),
    ]
    assert coins[0].at <= coins[1].at
    assert len(sandbox.state.requests(path="/v1/*")) == 1

    admin_log = requests.get(f"{sandbox.url}/_sandbox/requests").text
    for dump in (repr(log), admin_log, json.dumps(sandbox.state.portfolios())):
        for secret in (sandbox.api_key, *OKX_FIELDS.values()):
            assert secret not in dump
    # Exchange credentials are not kept anywhere in the state (only a hash of the apiKey).
    state_dump = repr(vars(sandbox.state))
    assert not [v for v in OKX_FIELDS.values() if v in state_dump]
    sandbox.state.clear_requests()
    assert sandbox.state.requests() == []


def test_admin_http_api(sandbox: SandboxServer, http: requests.Session) -> None:
    admin = f"{sandbox.url}/_sandbox"
    assert requests.post(f"{admin}/config", json={"sync_polls": 0, "transactions_per_portfolio": 5}).ok
    assert_envelope(requests.post(f"{admin}/config", json={"nope": 1}), 400, "/_sandbox/config", "nope")
    pid = connect_wallet_http(sandbox, http)
    assert get(http, sandbox, "/portfolio/status", portfolioId=pid).json() == {"status": "synced"}

    portfolios = requests.get(f"{admin}/portfolios").json()
    assert portfolios == [
        {
            "portfolioId": pid,
            "portfolioName": "Ethereum 0xd8dA...6045",
            "portfolioType": "wallet",
            "connectionId": "ethereum",
            "status": "synced",
            "owner": "key-1",
        }
    ]
    assert requests.post(f"{admin}/portfolios/{pid}/sync", json={"polls": 1}).ok
    assert get(http, sandbox, "/portfolio/coins", portfolioId=pid).status_code == 409
    assert requests.post(f"{admin}/portfolios/unknown/sync", json={}).status_code == 404
    assert requests.post(f"{admin}/portfolios/{pid}/transactions", json={"count": 3}).ok
    data = get(http, sandbox, "/portfolio/transactions", portfolioId=pid, currency="USD").json()["data"]
    assert len(data) == 3

    fault = {"kind": "status", "endpoint": "usage_credits", "status": 429, "times": 1, "retry_after": "1"}
    assert requests.post(f"{admin}/faults", json=fault).json()[0]["status"] == 429
    assert requests.post(f"{admin}/faults", json={"kind": "bogus"}).status_code == 400
    assert get(http, sandbox, "/usage/credits").status_code == 429
    requests.post(f"{admin}/faults", json={"kind": "status"})
    assert requests.delete(f"{admin}/faults").ok
    assert get(http, sandbox, "/usage/credits").status_code == 200

    credits = requests.get(f"{admin}/credits").json()
    assert credits == {
        "key-1": {
            "used": sandbox.state.credits_used(),
            "total": 1_000_000,
            "remaining": 1_000_000 - sandbox.state.credits_used(),
        }
    }
    assert sandbox.api_key not in requests.get(f"{admin}/config").text

    logged = requests.get(f"{admin}/requests", params={"endpoint": "portfolio_coins"}).json()
    assert [(r["status"], r["portfolio_id"]) for r in logged] == [(409, pid)]
    assert all(not r["path"].startswith("/_sandbox") for r in requests.get(f"{admin}/requests").json())
    assert requests.delete(f"{admin}/requests").ok
    assert requests.get(f"{admin}/requests").json() == []
    assert requests.get(f"{admin}/nothing").status_code == 404

    assert requests.post(f"{admin}/reset", json={}).ok
    assert sandbox.state.portfolios() == []
    assert sandbox.state.credits_used() == 0
    assert sandbox.state.config.sync_polls == 2
    assert requests.get(f"{admin}/requests").json() == []


# --------------------------------------------------------------------------- server, plugin, CLI


def test_server_lifecycle_loopback_only_and_airflow_connection() -> None:
    for host in ("0.0.0.0", "10.1.2.3", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            SandboxServer(host=host)
    config = SandboxConfig(api_keys={"k1": 10, "k2": 20}, sync_polls=0)
    with SandboxServer(config) as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.api_key == "k1"
        conn = json.loads(server.airflow_connection({"timeout": 5}, api_key="k2"))
        assert conn == {"conn_type": "coinstats", "host": server.url, "password": "k2", "extra": {"timeout": 5}}
        r = requests.get(f"{server.url}/usage/credits", headers={"X-API-KEY": "k2"})
        assert r.json()["totalCredits"] == 20
    assert not server.running
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{server.url}/usage/credits", timeout=2)


def test_plugin_fixture_resets_state(coinstats_sandbox: SandboxServer, http: requests.Session) -> None:
    # Earlier tests created portfolios and faults on the same session server; none leak here.
    assert coinstats_sandbox.state.portfolios() == []
    assert coinstats_sandbox.state.faults() == []
    assert coinstats_sandbox.state.credits_used() == 0
    assert coinstats_sandbox.state.config.sync_polls == 2


def test_cli_port_0_prints_url_and_serves() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_coinstats.sandbox", "--port", "0", "--api-key", "cli-key",
         "--credits", "77", "--sync-polls", "0",
         "--fault", '{"kind": "status", "endpoint": "wallet_blockchains", "status": 503, "times": 1}'],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        name, _, url = line.partition("=")
        assert name == "COINSTATS_SANDBOX_URL"
        assert url.startswith("http://127.0.0.1:")
        headers = {"X-API-KEY": "cli-key"}
        assert requests.get(f"{url}/usage/credits", headers=headers, timeout=5).json()["totalCredits"] == 77
        assert requests.get(f"{url}/wallet/blockchains", headers=headers, timeout=5).status_code == 503
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert out == ""  # exactly one stdout line, already read
    assert "listening" in err
