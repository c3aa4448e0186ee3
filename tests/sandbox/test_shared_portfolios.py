"""The sandbox models shared portfolios: an app portfolio read by share token + passcode.

All over real HTTP on loopback against the session sandbox (``sandbox`` fixture, reset per test).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests

from airflow_provider_coinstats.api.catalog import CREDITS_EXHAUSTED_MESSAGE, ENDPOINTS, NOT_SYNCED_MESSAGE
from airflow_provider_coinstats.sandbox import SandboxServer, SharedPortfolio, data
from airflow_provider_coinstats.sandbox.handlers import (
    BOTH_SELECTORS_MESSAGE,
    INVALID_PASSCODE_MESSAGE,
    INVALID_SHARE_TOKEN_MESSAGE,
    SHARE_PLAN_MESSAGE,
)
from tests.helpers import synced_wallet_http
from tests.sandbox.test_sandbox import assert_envelope

#: Parameters a read needs besides the selector.
_NEEDS = {
    "portfolio_chart": {"type": "1w"},
    "portfolio_transactions": {"currency": "USD"},
    "portfolio_pl_history": {"interval": "daily", "range": "1m"},
}
#: Every portfolio data read (the catalog's ``waits_for_sync`` endpoints): each takes a share token.
READS = [(e.name, e.path, _NEEDS.get(e.name, {})) for e in ENDPOINTS.values() if e.waits_for_sync]


def degen(sandbox: SandboxServer) -> None:
    sandbox.state.configure(subscription="Degen", sync_polls=0)


def read(
    sandbox: SandboxServer,
    path: str,
    headers: dict[str, str] | None = None,
    key: str | None = None,
    **params: Any,
) -> requests.Response:
    all_headers = {"X-API-KEY": key if key is not None else sandbox.api_key, **(headers or {})}
    return requests.get(f"{sandbox.url}{path}", params=params, headers=all_headers, timeout=10)


def by_share(sandbox: SandboxServer, share: SharedPortfolio, path: str, **params: Any) -> requests.Response:
    return read(sandbox, path, share.headers(), **params)


# --------------------------------------------------------------------------- reads


@pytest.mark.parametrize(("name", "path", "params"), READS, ids=[r[0] for r in READS])
def test_every_read_accepts_the_share_headers(
    sandbox: SandboxServer, name: str, path: str, params: dict[str, str]
) -> None:
    degen(sandbox)
    share = sandbox.state.create_shared("alice")
    r = by_share(sandbox, share, path, **params)
    assert r.status_code == 200, r.text
    assert r.json()
    entry = sandbox.state.requests(name)[-1]
    assert (entry.status, entry.credits, entry.portfolio_id) == (200, ENDPOINTS[name].credits, "shared:alice")
    assert sandbox.state.credits_used() == ENDPOINTS[name].credits


def test_shared_data_is_the_app_portfolios_own(sandbox: SandboxServer) -> None:
    degen(sandbox)
    share = sandbox.state.create_shared("alice", transactions=13)
    other = sandbox.state.create_shared("bob")
    r = by_share(sandbox, share, "/portfolio/transactions", currency="USD", limit=100)
    profile = sandbox.state.profile(share.portfolio_id)
    assert r.json()["data"] == data.transactions_page(profile, "USD", 1, 100, None, None, None)
    assert len(r.json()["data"]) == 13
    coins = by_share(sandbox, share, "/portfolio/coins").json()
    assert coins == {"result": data.portfolio_coins(profile, 1, 20, False)}
    assert by_share(sandbox, other, "/portfolio/coins").json() != coins
    # Deterministic: the same label gives the same data after a reset.
    sandbox.state.reset()
    degen(sandbox)
    again = sandbox.state.create_shared("alice", transactions=13)
    assert again.portfolio_id == share.portfolio_id
    assert by_share(sandbox, again, "/portfolio/coins").json() == coins


@pytest.mark.parametrize(
    "spelling",
    [
        lambda s: ({"sharetoken": s.share_token, "passcode": s.passcode}, {}),
        lambda s: ({"ShareToken": s.share_token, "Passcode": s.passcode}, {}),
        lambda s: ({}, {"shareToken": s.share_token, "passcode": s.passcode}),
        lambda s: ({}, {"sharetoken": s.share_token, "passcode": s.passcode}),
        lambda s: ({"sharetoken": s.share_token}, {"passcode": s.passcode}),
    ],
    ids=["headers", "header-case", "query-camel", "query-lower", "header-token-query-passcode"],
)
def test_documented_spellings(sandbox: SandboxServer, spelling: Any) -> None:
    degen(sandbox)
    share = sandbox.state.create_shared("alice")
    headers, params = spelling(share)
    r = read(sandbox, "/portfolio/value", headers, **params)
    assert r.status_code == 200, r.text
    assert sandbox.state.requests("portfolio_value")[-1].portfolio_id == "shared:alice"


def test_share_without_passcode(sandbox: SandboxServer) -> None:
    degen(sandbox)
    share = sandbox.state.create_shared("open", passcode=False)
    assert share.passcode is None
    assert share.headers() == {"sharetoken": share.share_token}
    assert by_share(sandbox, share, "/portfolio/coins").status_code == 200


def test_app_portfolio_is_not_an_api_portfolio(sandbox: SandboxServer) -> None:
    """Not listed, not readable, syncable or deletable by portfolioId: no API key owns it."""
    degen(sandbox)
    share = sandbox.state.create_shared("alice")
    assert read(sandbox, "/portfolio/list").json() == {"result": []}
    assert_envelope(read(sandbox, "/portfolio/coins", portfolioId=share.portfolio_id), 404, "/portfolio/coins")
    r = requests.delete(
        f"{sandbox.url}/portfolio/{share.portfolio_id}", headers={"X-API-KEY": sandbox.api_key}, timeout=10
    )
    assert r.status_code == 404
    assert by_share(sandbox, share, "/portfolio/coins").status_code == 200


def test_status_takes_no_share_token(sandbox: SandboxServer) -> None:
    """The docs list only portfolioId for /portfolio/status."""
    degen(sandbox)
    share = sandbox.state.create_shared("alice")
    assert_envelope(by_share(sandbox, share, "/portfolio/status"), 400, "/portfolio/status", "portfolioId is required")


def test_shared_portfolio_starts_synced_and_can_resync(sandbox: SandboxServer) -> None:
    degen(sandbox)
    sandbox.state.configure(sync_polls=3)  # API portfolios would start syncing; the app's is synced
    share = sandbox.state.create_shared("alice")
    assert by_share(sandbox, share, "/portfolio/coins").status_code == 200
    sandbox.state.set_sync(share.portfolio_id, polls=1)
    assert_envelope(by_share(sandbox, share, "/portfolio/coins"), 409, "/portfolio/coins", NOT_SYNCED_MESSAGE)
    assert by_share(sandbox, share, "/portfolio/coins").status_code == 200
    assert [r.credits for r in sandbox.state.requests("portfolio_coins")] == [8, 0, 8]


def test_appended_transactions_show_through_the_share(sandbox: SandboxServer) -> None:
    degen(sandbox)
    share = sandbox.state.create_shared("alice", transactions=5)
    sandbox.state.append_transactions(share.portfolio_id, 2)
    r = by_share(sandbox, share, "/portfolio/transactions", currency="USD", limit=100)
    assert len(r.json()["data"]) == 7


# --------------------------------------------------------------------------- refusals


def test_wrong_token_and_passcode_are_403_and_free(sandbox: SandboxServer) -> None:
    degen(sandbox)
    share = sandbox.state.create_shared("alice", passcode="123456")
    path = "/portfolio/coins"
    r = read(sandbox, path, {"sharetoken": "not-" + share.share_token, "passcode": "123456"})
    assert_envelope(r, 403, path, INVALID_SHARE_TOKEN_MESSAGE)
    assert_envelope(read(sandbox, path, {"sharetoken": share.share_token, "passcode": "654321"}), 403, path)
    assert INVALID_PASSCODE_MESSAGE in read(sandbox, path, {"sharetoken": share.share_token}).json()["message"]
    assert [r.status for r in sandbox.state.requests("portfolio_coins")] == [403, 403, 403]
    assert [r.portfolio_id for r in sandbox.state.requests("portfolio_coins")] == [
        "shared:unknown",
        "shared:alice",
        "shared:alice",
    ]
    assert sandbox.state.credits_used() == 0


def test_plan_other_than_degen_is_refused_before_the_token(sandbox: SandboxServer) -> None:
    sandbox.state.configure(sync_polls=0)  # default subscription: PRO
    share = sandbox.state.create_shared("alice")
    r = by_share(sandbox, share, "/portfolio/value")
    assert_envelope(r, 403, "/portfolio/value", SHARE_PLAN_MESSAGE)
    assert "Degen" in r.json()["message"]
    # A non-Degen key cannot tell a good token from a bad one.
    bad = read(sandbox, "/portfolio/value", {"sharetoken": "nope"})
    assert bad.json()["message"] == r.json()["message"]
    assert sandbox.state.credits_used() == 0


def test_plan_per_key(sandbox: SandboxServer) -> None:
    state = sandbox.state
    state.configure(sync_polls=0, api_keys={"pro-key": 1000, "degen-key": 1000}, plans={"degen-key": "Degen"})
    share = state.create_shared("alice")
    assert read(sandbox, "/portfolio/value", share.headers(), key="pro-key").status_code == 403
    assert read(sandbox, "/portfolio/value", share.headers(), key="degen-key").status_code == 200
    assert read(sandbox, "/usage/credits", key="degen-key").json()["subscription"] == "Degen"
    assert read(sandbox, "/usage/credits", key="pro-key").json()["subscription"] == "PRO"
    assert state.config.redacted()["plans"] == {"key-2": "Degen"}
    state.rotate_key("degen-key", "degen-key-2")
    assert read(sandbox, "/portfolio/value", share.headers(), key="degen-key-2").status_code == 200


def test_portfolio_id_and_share_token_together_is_400(sandbox: SandboxServer, http: requests.Session) -> None:
    degen(sandbox)
    pid = synced_wallet_http(sandbox, http)
    share = sandbox.state.create_shared("alice")
    for _, path, params in READS:
        r = read(sandbox, path, share.headers(), portfolioId=pid, **params)
        assert_envelope(r, 400, path, BOTH_SELECTORS_MESSAGE)


def test_406_when_credits_run_out(sandbox: SandboxServer) -> None:
    degen(sandbox)
    sandbox.state.set_credits(sandbox.api_key, 5)
    share = sandbox.state.create_shared("alice")
    assert_envelope(by_share(sandbox, share, "/portfolio/coins"), 406, "/portfolio/coins", CREDITS_EXHAUSTED_MESSAGE)
    assert by_share(sandbox, share, "/portfolio/transactions", currency="USD").status_code == 200
    assert sandbox.state.credits_used() == 4


# --------------------------------------------------------------------------- admin API


def test_admin_api_creates_and_lists_shares(sandbox: SandboxServer) -> None:
    degen(sandbox)
    admin = f"{sandbox.url}/_sandbox/shared"
    made = requests.post(admin, json={"label": "carol", "transactions": 3, "passcode": True}, timeout=10).json()
    assert set(made) == {"shareToken", "passcode", "portfolioId", "label"}
    assert made["label"] == "carol" and len(made["passcode"]) == 6 and made["passcode"].isdigit()
    headers = {"sharetoken": made["shareToken"], "passcode": made["passcode"]}
    r = read(sandbox, "/portfolio/transactions", headers, currency="USD")
    assert len(r.json()["data"]) == 3
    plain = requests.post(admin, json={"passcode": False}, timeout=10).json()
    assert plain["passcode"] is None and plain["label"] == "app-1"
    listed = requests.get(admin, timeout=10).json()
    assert listed == [
        {"label": "carol", "portfolioId": made["portfolioId"], "passcode": True},
        {"label": "app-1", "portfolioId": plain["portfolioId"], "passcode": False},
    ]
    owners = {
        p["portfolioId"]: p["owner"] for p in requests.get(f"{sandbox.url}/_sandbox/portfolios", timeout=10).json()
    }
    assert owners == {made["portfolioId"]: "app", plain["portfolioId"]: "app"}
    chosen = requests.post(admin, json={"label": "dave", "shareToken": "my-token", "passcode": "0000"}, timeout=10)
    assert chosen.json()["shareToken"] == "my-token" and chosen.json()["passcode"] == "0000"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"nope": 1}, "unknown field"),
        ({"label": "carol"}, "exists"),
        ({"label": "has space"}, "label"),
        ({"transactions": -1}, "transactions"),
        ({"passcode": 7}, "passcode"),
        ({"shareToken": ""}, "share_token"),
    ],
)
def test_admin_api_refuses_bad_bodies(sandbox: SandboxServer, body: dict[str, Any], message: str) -> None:
    sandbox.state.create_shared("carol")
    r = requests.post(f"{sandbox.url}/_sandbox/shared", json=body, timeout=10)
    assert_envelope(r, 400, "/_sandbox/shared", message)
    assert len(sandbox.state.shared()) == 1


def test_reset_forgets_shares(sandbox: SandboxServer) -> None:
    degen(sandbox)
    share = sandbox.state.create_shared("alice")
    sandbox.state.reset()
    degen(sandbox)
    assert sandbox.state.shared() == []
    assert_envelope(by_share(sandbox, share, "/portfolio/coins"), 403, "/portfolio/coins", INVALID_SHARE_TOKEN_MESSAGE)


# --------------------------------------------------------------------------- secrets


def test_token_and_passcode_never_reach_logs_or_answers(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Search the request log (Python and admin API), captured logs, output and every error answer."""
    degen(sandbox)
    caplog.set_level(logging.DEBUG)
    share = sandbox.state.create_shared("alice", passcode="97531864")
    secrets_ = [share.share_token, share.passcode]
    answers = [by_share(sandbox, share, path, **params) for _, path, params in READS]
    # A client that puts the token in the URL logs it itself (urllib3 at DEBUG): that is the
    # client's leak, not the sandbox's, so the client's log is quiet for the query spellings.
    caplog.set_level(logging.WARNING, logger="urllib3")
    for _, path, params in READS:
        # Query spellings with a wrong passcode: the error envelopes are searched too.
        answers.append(read(sandbox, path, {}, shareToken=share.share_token, passcode="000", **params))
    answers.append(read(sandbox, "/portfolio/coins", {"sharetoken": share.share_token}, portfolioId="x"))
    answers.append(read(sandbox, "/portfolio/nope", share.headers(), shareToken=share.share_token))
    sandbox.state.configure(subscription="PRO")
    answers.append(by_share(sandbox, share, "/portfolio/coins"))
    assert [a.status_code for a in answers] == [200] * len(READS) + [403] * len(READS) + [400, 404, 403]
    errors = " ".join(a.text for a in answers if a.status_code != 200)
    records = sandbox.state.requests()
    assert len(records) == len(answers)
    admin = " ".join(
        requests.get(f"{sandbox.url}/_sandbox/{what}", timeout=10).text
        for what in ("requests", "shared", "portfolios", "config", "credits")
    )
    out, err = capfd.readouterr()
    haystacks = {
        "state.requests()": json.dumps([r.to_dict() for r in records]),
        "admin API": admin,
        "error answers": errors,
        # The client's urllib3 debug lines make this non-empty; the sandbox's own loggers land here too.
        "logs and output": caplog.text + out + err,
        "repr": repr(share),
    }
    for name, haystack in haystacks.items():
        assert haystack, name
        for secret in secrets_:
            assert secret is not None and secret not in haystack, name
    assert {r.portfolio_id for r in records if r.endpoint} == {"shared:alice", "x"}
    assert all(r.query.get("shareToken", "***") == "***" for r in records)
