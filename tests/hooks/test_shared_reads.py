"""Every hook read takes a shared portfolio: token and passcode as headers, never in the URL.

Against the sandbox over real HTTP on loopback (its app portfolios, Degen plan), sync and async
hook alike; the share connection is a real ``AIRFLOW_CONN_*`` connection.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.catalog import ENDPOINTS
from airflow_provider_coinstats.api.shared import SharedPortfolio, public_id_of
from airflow_provider_coinstats.exceptions import (
    PERMANENT_ERRORS,
    CoinStatsConfigError,
    CoinStatsForbiddenError,
    CoinStatsValidationError,
)
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.hooks.coinstats_async import CoinStatsAsyncHook
from airflow_provider_coinstats.hooks.shared import (
    ashared_portfolio_from_connection,
    shared_portfolio_from_connection,
)
from airflow_provider_coinstats.sandbox import Fault, data
from tests.helpers import connect_wallet
from tests.shared_portfolios import secrets_of, share_connection

#: Hook read -> (catalog endpoint, call).
READS: dict[str, tuple[str, Callable[[CoinStatsHook, Any], Any]]] = {
    "value": ("portfolio_value", lambda h, p: h.get_portfolio_value(p)),
    "coins": ("portfolio_coins", lambda h, p: h.get_portfolio_coins(p)),
    "chart": ("portfolio_chart", lambda h, p: h.get_portfolio_chart(p, "1w")),
    "transactions": ("portfolio_transactions", lambda h, p: list(h.iter_portfolio_transactions(p))),
    "defi": ("portfolio_defi", lambda h, p: h.get_portfolio_defi(p)),
    "snapshot_items": ("portfolio_snapshot_items", lambda h, p: list(h.iter_portfolio_snapshot_items(p))),
    "pl_history": ("portfolio_pl_history", lambda h, p: h.get_portfolio_pl_history(p)),
}
_SELECTORS = {"portfolioId", "shareToken", "sharetoken", "passcode"}


@pytest.mark.parametrize("read", list(READS))
def test_every_hook_read_takes_a_shared_portfolio(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    sandbox_share, conn_id = share_connection(coinstats_conn, monkeypatch, transactions=7)
    coinstats_conn.state.clear_requests()
    endpoint, call = READS[read]
    share = shared_portfolio_from_connection(conn_id)
    with CoinStatsHook() as hook:
        result = call(hook, share)
        assert hook.credits_spent == ENDPOINTS[endpoint].credits
    assert result
    (record,) = coinstats_conn.state.requests()
    assert (record.endpoint, record.status, record.portfolio_id) == (endpoint, 200, "shared:alice")
    # Neither the token nor a portfolio id went in the URL: the share headers selected it.
    assert not _SELECTORS & set(record.query), record.query
    if read == "transactions":
        profile = coinstats_conn.state.profile(sandbox_share.portfolio_id)
        assert result == data.transactions_page(profile, "USD", 1, 100, None, None, None)
        assert len(result) == 7


def test_the_share_hint_is_only_for_shared_reads(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 403 to a portfolio-id read (injected by the sandbox) keeps CoinStats' own words."""
    pid = connect_wallet(coinstats_conn)
    coinstats_conn.state.add_fault(Fault(kind="status", status=403, times=1, endpoint="portfolio_coins"))
    with CoinStatsHook() as hook, pytest.raises(CoinStatsForbiddenError) as info:
        hook.get_portfolio_coins(pid)
    assert "share" not in str(info.value)
    # The same refusal of a shared read names what to check.
    _, conn_id = share_connection(coinstats_conn, monkeypatch)
    coinstats_conn.state.add_fault(Fault(kind="status", status=403, times=1, endpoint="portfolio_coins"))
    with CoinStatsHook() as hook, pytest.raises(CoinStatsForbiddenError) as info:
        hook.get_portfolio_coins(shared_portfolio_from_connection(conn_id))
    assert "check the share token (login) and passcode (password)" in str(info.value)


def test_async_hook_reads_a_shared_portfolio(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, conn_id = share_connection(coinstats_conn, monkeypatch, transactions=3)
    coinstats_conn.state.clear_requests()

    async def go() -> Any:
        share = await ashared_portfolio_from_connection(conn_id)
        async with CoinStatsAsyncHook() as hook:
            return await hook.run(builders.portfolio_transactions(share, limit=10))

    assert len(asyncio.run(go())["data"]) == 3
    (record,) = coinstats_conn.state.requests()
    assert record.portfolio_id == "shared:alice" and not _SELECTORS & set(record.query)


def test_the_requests_carry_the_share_as_headers_only() -> None:
    share = SharedPortfolio("tok-" + "x" * 30, "123456")
    for request in (
        builders.portfolio_value(share),
        builders.portfolio_coins(share),
        builders.portfolio_chart(share, "24h"),
        builders.portfolio_transactions(share),
        builders.portfolio_defi(share),
        builders.portfolio_snapshot_items(share),
        builders.portfolio_pl_history(share),
    ):
        assert request.headers == {"sharetoken": share.share_token, "passcode": "123456"}
        assert "portfolioId" not in request.params
        assert set(request.secrets) == {share.share_token, "123456"}
        for text in (repr(request), request.describe(), json.dumps(dict(request.params))):
            assert share.share_token not in text and "123456" not in text
    # A portfolio id still selects by query parameter, with no extra headers.
    by_id = builders.portfolio_coins("abc123")
    assert by_id.params["portfolioId"] == "abc123" and by_id.headers == {}


def test_status_sync_and_delete_refuse_a_shared_portfolio() -> None:
    """/portfolio/status is documented with portfolioId only; sync and delete need an API portfolio."""
    share = SharedPortfolio("tok-" + "y" * 30, "654321")
    for build in (builders.portfolio_status, builders.portfolio_sync, builders.delete_portfolio):
        with pytest.raises(CoinStatsValidationError) as info:
            build(share)
        assert share.share_token not in str(info.value) and "654321" not in str(info.value)
        assert share.public_id in str(info.value)


def test_public_id_is_the_given_name_or_a_keyed_hash() -> None:
    token = "a-long-random-share-token-0123456789"
    expected = "shared-" + hmac.new(b"2468", token.encode(), hashlib.sha256).hexdigest()[:16]
    assert SharedPortfolio(token, "2468").public_id == expected
    # Stable: the same share gives the same id; another passcode or token gives another.
    assert SharedPortfolio(token, "2468").public_id == expected
    assert SharedPortfolio(token, "1357").public_id != expected
    assert SharedPortfolio(token + "x", "2468").public_id != expected
    assert SharedPortfolio(token, None).public_id.startswith("shared-")
    named = SharedPortfolio(token, "2468", name="family-savings")
    assert named.public_id == "family-savings" == str(named) == public_id_of(named)
    assert public_id_of("abc123") == "abc123"
    for bad in ("", "has space", "a/b", "x" * 65, "-lead"):
        with pytest.raises(CoinStatsValidationError, match="portfolio_name"):
            SharedPortfolio(token, "2468", name=bad)


def test_shared_portfolio_never_shows_or_serializes_its_secrets() -> None:
    token, passcode = "secret-share-token-abcdefghijklmnop", "97531"
    share = SharedPortfolio(token, passcode)
    for text in (repr(share), str(share), f"{share}", f"{share!r}", repr([share])):
        assert text and token not in text and passcode not in text
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(share)
    assert copy.deepcopy(share) is share  # operators deep-copy their fields: no pickling fallback
    try:
        from airflow.sdk.serde import serialize
    except ImportError:  # Airflow < 3.2
        from airflow.serialization.serde import serialize

    with pytest.raises(TypeError):
        serialize(share)  # what XCom would do with it
    for bad in ("", "  ", " padded", "line\nbreak"):
        with pytest.raises(CoinStatsValidationError) as info:
            SharedPortfolio(bad, passcode)
        assert "share_token" in str(info.value)


def test_connection_gives_token_passcode_name_and_masks_them(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox_share, conn_id = share_connection(coinstats_conn, monkeypatch, portfolio_name="family")
    share = shared_portfolio_from_connection(conn_id)
    assert (share.share_token, share.passcode, share.public_id) == (
        sandbox_share.share_token,
        sandbox_share.passcode,
        "family",
    )
    # Registered with Airflow's secrets masker when read: every log line redacts them.
    redacted = _redact(f"token={share.share_token} passcode={share.passcode}")
    for secret in secrets_of(sandbox_share):
        assert secret not in redacted
    # Without a name: the keyed hash, identical in the async lookup.
    _, plain_id = share_connection(coinstats_conn, monkeypatch, "bob")
    hashed = shared_portfolio_from_connection(plain_id).public_id
    assert hashed.startswith("shared-")
    assert asyncio.run(ashared_portfolio_from_connection(plain_id)).public_id == hashed


def _redact(text: str) -> str:
    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import redact
    return str(redact(text))


def test_share_connection_errors_name_the_field_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SHARE_EMPTY", json.dumps({"conn_type": "generic", "password": "1234"}))
    with pytest.raises(CoinStatsConfigError, match="login"):
        shared_portfolio_from_connection("share_empty")
    conn = {"conn_type": "generic", "login": "tok-zzzzzzzzzzzzzzzz", "extra": {"portfolio_nam": "x"}}
    monkeypatch.setenv("AIRFLOW_CONN_SHARE_TYPO", json.dumps(conn))
    with pytest.raises(CoinStatsConfigError, match="portfolio_nam") as info:
        shared_portfolio_from_connection("share_typo")
    assert "tok-zzzz" not in str(info.value)


def test_wrong_passcode_is_a_permanent_403_without_the_secrets(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox_share, conn_id = share_connection(coinstats_conn, monkeypatch, wrong_passcode=True)
    share = shared_portfolio_from_connection(conn_id)
    coinstats_conn.state.clear_requests()
    with CoinStatsHook() as hook, pytest.raises(CoinStatsForbiddenError) as info:
        hook.get_portfolio_coins(share)
    assert isinstance(info.value, PERMANENT_ERRORS)
    assert "Invalid passcode" in str(info.value)
    assert "check the share token (login) and passcode (password)" in str(info.value)
    assert [r.status for r in coinstats_conn.state.requests()] == [403]  # no retries
    for secret in [*secrets_of(sandbox_share), share.passcode or ""]:
        assert secret and secret not in str(info.value)
