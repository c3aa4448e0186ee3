"""Sandbox ``append_transactions``: new transactions arrive on top, the existing ones stay byte-identical.

This is what incremental (watermark) loads are tested against, so every test compares what the
API answered before and after an append, over real HTTP.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from airflow_provider_coinstats.sandbox import SandboxServer
from airflow_provider_coinstats.sandbox.data import AS_OF_MS, MAX_APPENDED, iso_ms
from tests.helpers import synced_wallet_http

pytest_plugins = ["airflow_provider_coinstats.sandbox.pytest_plugin"]

BTC_ADDRESS = "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh"
#: The sandbox data's fixed "now"; ISO dates in the API's format sort like the instants they name.
NOW_ISO = iso_ms(AS_OF_MS)

Tx = dict[str, Any]


def page_response(
    sandbox: SandboxServer, http: requests.Session, pid: str, page: int = 1, limit: int = 100, **filters: Any
) -> requests.Response:
    params = {"portfolioId": pid, "currency": "USD", "page": page, "limit": limit, **filters}
    r = http.get(f"{sandbox.url}/portfolio/transactions", params=params)
    assert r.status_code == 200, r.text
    return r


def page(
    sandbox: SandboxServer, http: requests.Session, pid: str, page: int = 1, limit: int = 100, **filters: Any
) -> list[Tx]:
    return list(page_response(sandbox, http, pid, page, limit, **filters).json()["data"])


def listing(sandbox: SandboxServer, http: requests.Session, pid: str, limit: int = 7, **filters: Any) -> list[Tx]:
    """Every transaction, page by page (a small limit so the pages cross the old/new boundary)."""
    rows: list[Tx] = []
    for n in range(1, 10_000):
        data = page(sandbox, http, pid, n, limit, **filters)
        if not data:
            return rows
        rows += data
    raise AssertionError("listing never ended")


def raw(tx: Tx) -> str:
    return json.dumps(tx, separators=(",", ":"), ensure_ascii=False)


def data_array_bytes(r: requests.Response) -> bytes:
    """The bytes between ``"data":[`` and the ``]`` closing it, exactly as the server sent them."""
    body = r.content
    start = body.index(b'"data":[') + len(b'"data":[')
    end = body.rindex(b'],"meta"')
    return body[start:end]


def one_ms_later(iso: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")) + timedelta(milliseconds=1)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def assert_strictly_newest_first(rows: list[Tx]) -> None:
    dates = [tx["date"] for tx in rows]
    assert all(a > b for a, b in itertools.pairwise(dates)), "dates must strictly decrease"
    assert all(d < NOW_ISO for d in dates), "no date may reach the sandbox's now"


# --------------------------------------------------------------------------- small portfolios


def test_append_adds_newer_rows_on_top_and_keeps_old_ones_byte_identical(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    pid = synced_wallet_http(sandbox, http)
    sandbox.state.set_transaction_count(pid, 23)
    before = listing(sandbox, http, pid)
    before_bytes = data_array_bytes(page_response(sandbox, http, pid))
    assert len(before) == 23

    sandbox.state.append_transactions(pid, 3)
    after = listing(sandbox, http, pid)
    assert len(after) == 26
    assert [raw(tx) for tx in after[3:]] == [raw(tx) for tx in before]
    # Byte for byte as served: the old rows are the tail of the new data array.
    after_bytes = data_array_bytes(page_response(sandbox, http, pid))
    assert after_bytes.endswith(b"," + before_bytes)
    assert len(after_bytes) > len(before_bytes) + 1
    assert min(tx["date"] for tx in after[:3]) > before[0]["date"]
    assert_strictly_newest_first(after)

    # A second append accumulates and leaves the first appended rows alone too.
    sandbox.state.append_transactions(pid, 4)
    again = listing(sandbox, http, pid)
    assert len(again) == 30
    assert [raw(tx) for tx in again[4:]] == [raw(tx) for tx in after]
    assert min(tx["date"] for tx in again[:4]) > after[0]["date"]
    assert_strictly_newest_first(again)
    assert sandbox.state.profile(pid).transaction_count == 30
    assert sandbox.state.profile(pid).appended == 7


def test_appended_rows_look_like_the_others_and_are_deterministic(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    pid = synced_wallet_http(sandbox, http)
    old = listing(sandbox, http, pid)
    sandbox.state.append_transactions(pid, 12)
    new = listing(sandbox, http, pid)[:12]
    assert {tuple(sorted(tx)) for tx in new} == {tuple(sorted(tx)) for tx in old}
    assert len({raw(tx) for tx in new}) == 12
    assert all(tx["date"] > "2025-12-31T23:00:00.000Z" for tx in new)  # within the last hour
    # The same seed, portfolio and append count give the same rows after a reset.
    sandbox.state.reset()
    pid_again = synced_wallet_http(sandbox, http)
    assert pid_again == pid
    assert listing(sandbox, http, pid) == old  # reset forgot the appended rows
    sandbox.state.append_transactions(pid, 5)
    sandbox.state.append_transactions(pid, 7)
    assert listing(sandbox, http, pid)[:12] == new


def test_set_transaction_count_discards_appended_rows(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    sandbox.state.set_transaction_count(pid, 10)
    ten = listing(sandbox, http, pid)
    sandbox.state.append_transactions(pid, 5)
    assert len(listing(sandbox, http, pid)) == 15
    sandbox.state.set_transaction_count(pid, 10)
    assert listing(sandbox, http, pid) == ten
    assert sandbox.state.profile(pid).appended == 0


def test_coin_and_date_filters_agree_with_the_full_listing(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    sandbox.state.set_transaction_count(pid, 40)
    old = listing(sandbox, http, pid, limit=100)
    sandbox.state.append_transactions(pid, 25)
    rows = listing(sandbox, http, pid, limit=100)
    assert len(rows) == 65

    coins = sorted({tx["coinData"]["identifier"] for tx in rows})
    assert len(coins) >= 3
    for coin in [*coins, "not-a-held-coin"]:
        expected = [tx for tx in rows if tx["coinData"]["identifier"] == coin]
        assert listing(sandbox, http, pid, limit=3, coinId=coin) == expected, coin

    # The watermark case: everything from the newest old date on is that row plus the new ones.
    watermark = old[0]["date"]
    since: dict[str, Any] = {"from": watermark}
    assert listing(sandbox, http, pid, **since) == rows[:26]
    newer: dict[str, Any] = {"from": one_ms_later(watermark)}
    assert listing(sandbox, http, pid, **newer) == rows[:25]
    older: dict[str, Any] = {"to": one_ms_later(watermark)}
    assert listing(sandbox, http, pid, **older) == rows[25:]

    # Windows inside the new rows, across the boundary, and inside the old rows: [from, to).
    for hi, lo in [(2, 20), (10, 40), (30, 60), (0, 64)]:
        window: dict[str, Any] = {"from": rows[lo]["date"], "to": rows[hi]["date"]}
        assert listing(sandbox, http, pid, **window) == rows[hi + 1 : lo + 1], (hi, lo)
        for coin in coins[:3]:
            expected = [tx for tx in rows[hi + 1 : lo + 1] if tx["coinData"]["identifier"] == coin]
            assert listing(sandbox, http, pid, limit=2, coinId=coin, **window) == expected, (hi, lo, coin)


def test_appending_up_to_the_limit_stays_before_now(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http, BTC_ADDRESS, "bitcoin")
    sandbox.state.set_transaction_count(pid, 3)
    old = listing(sandbox, http, pid)
    sandbox.state.append_transactions(pid, MAX_APPENDED - 1)
    sandbox.state.append_transactions(pid, 1)
    with pytest.raises(ValueError, match="at most"):
        sandbox.state.append_transactions(pid, 1)
    assert sandbox.state.profile(pid).appended == MAX_APPENDED

    first = page(sandbox, http, pid, 1, 100)
    assert_strictly_newest_first(first)
    # The pages around the boundary between the oldest appended row and the old history.
    boundary = (MAX_APPENDED - 1) // 100 + 1
    last_pages = page(sandbox, http, pid, boundary) + page(sandbox, http, pid, boundary + 1)
    assert len(last_pages) == MAX_APPENDED + 3 - (boundary - 1) * 100
    assert_strictly_newest_first(last_pages)
    assert last_pages[-3:] == old
    assert last_pages[-4]["date"] > "2025-12-31T23:00:00.000Z"


# --------------------------------------------------------------------------- large portfolios


def test_append_to_a_100k_portfolio(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    sandbox.state.set_transaction_count(pid, 100_000)
    coin = page(sandbox, http, pid, 1, 5)[0]["coinData"]["identifier"]
    first, last = page(sandbox, http, pid, 1, 50), page(sandbox, http, pid, 2000, 50)
    coin_first = page(sandbox, http, pid, 1, 100, coinId=coin)
    assert len(first) == len(last) == 50
    assert len(coin_first) == 100

    started = time.monotonic()
    sandbox.state.append_transactions(pid, 150)
    new = page(sandbox, http, pid, 1, 50) + page(sandbox, http, pid, 2, 50) + page(sandbox, http, pid, 3, 50)
    assert page(sandbox, http, pid, 4, 50) == first
    assert page(sandbox, http, pid, 2003, 50) == last
    assert page(sandbox, http, pid, 2004, 50) == []
    assert_strictly_newest_first(new + first)

    new_of_coin = [tx for tx in new if tx["coinData"]["identifier"] == coin]
    assert new_of_coin
    assert page(sandbox, http, pid, 1, 100, coinId=coin) == (new_of_coin + coin_first)[:100]
    since = page(sandbox, http, pid, 1, 100, **{"from": first[0]["date"]})
    since += page(sandbox, http, pid, 2, 100, **{"from": first[0]["date"]})
    assert since == [*new, first[0]]
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- admin API and validation


def test_admin_http_append(sandbox: SandboxServer, http: requests.Session) -> None:
    admin = f"{sandbox.url}/_sandbox"
    pid = synced_wallet_http(sandbox, http)
    assert requests.post(f"{admin}/portfolios/{pid}/transactions", json={"count": 6}).ok
    before = listing(sandbox, http, pid)

    r = requests.post(f"{admin}/portfolios/{pid}/transactions/append", json={"count": 4})
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True}
    after = listing(sandbox, http, pid)
    assert len(after) == 10
    assert after[4:] == before
    assert requests.post(f"{admin}/portfolios/{pid}/transactions/append", json={"count": 0}).ok
    assert listing(sandbox, http, pid) == after

    path = "/_sandbox/portfolios/nope/transactions/append"
    r = requests.post(f"{sandbox.url}{path}", json={"count": 1})
    assert r.status_code == 404
    assert r.json()["path"] == path
    assert "nope" in r.json()["message"]

    append = f"{admin}/portfolios/{pid}/transactions/append"
    for body, message in [
        ({}, "count is required"),
        ({"count": -1}, "non-negative integer"),
        ({"count": "3"}, "non-negative integer"),
        ({"count": True}, "non-negative integer"),
        ({"count": 1.5}, "non-negative integer"),
        ({"count": None}, "non-negative integer"),
        ({"count": 1, "date": "2026-01-01"}, "unknown field(s): date"),
        ({"count": MAX_APPENDED}, "at most"),
    ]:
        r = requests.post(append, json=body)
        assert r.status_code == 400, (body, r.text)
        assert message in r.json()["message"], (body, r.json())
    r = requests.post(append, data=b"count=3", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert listing(sandbox, http, pid) == after  # nothing above changed the portfolio

    assert requests.post(f"{admin}/portfolios/{pid}/transactions", json={"count": 6}).ok
    assert listing(sandbox, http, pid) == before


def test_append_transactions_validation(sandbox: SandboxServer, http: requests.Session) -> None:
    pid = synced_wallet_http(sandbox, http)
    state = sandbox.state
    with pytest.raises(KeyError, match="unknown portfolio"):
        state.append_transactions("nope", 1)
    for bad in (-1, True, 1.0, "2", None):
        with pytest.raises(ValueError, match="non-negative integer"):
            state.append_transactions(pid, bad)  # type: ignore[arg-type]
    state.append_transactions(pid, 0)
    assert state.profile(pid).appended == 0
    state.append_transactions(pid, 2)
    with pytest.raises(ValueError, match="2 already are"):
        state.append_transactions(pid, MAX_APPENDED - 1)
    assert state.profile(pid).appended == 2
    assert state.profile(pid).transaction_count == state.config.transactions_per_portfolio + 2
