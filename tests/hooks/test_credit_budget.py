"""Credit budgets in the hooks, against the sandbox over real HTTP: refused calls are never sent.

The budget is the smaller of the hook's ``max_credits`` and the connection's extra
``max_credits_per_task``; ``require_remaining_credits`` reads the free usage call first.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.exceptions import (
    PERMANENT_ERRORS,
    CoinStatsBudgetExceededError,
    CoinStatsConfigError,
    CoinStatsValidationError,
)
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.hooks.coinstats_async import CoinStatsAsyncHook
from tests.helpers import FAST_RETRY, connect_wallet, requests_to, statuses

TX_COST = 4  # GET /portfolio/transactions, per page


def use_connection(server: Any, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> str:
    """A fresh connection id (so no process cache holds an older read) with these extras."""
    conn_id = f"coinstats_budget_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", server.airflow_connection(extra={**FAST_RETRY, **extra}))
    return conn_id


def test_a_paginated_read_stops_before_the_page_that_would_pass_the_budget(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=50)  # 5 pages of 10
    used_before = coinstats_conn.state.credits_used()
    rows: list[dict[str, Any]] = []
    with CoinStatsHook(max_credits=14) as hook:  # room for 3 pages (12), not a 4th (16)
        with pytest.raises(CoinStatsBudgetExceededError) as info:
            rows.extend(hook.iter_portfolio_transactions(pid, limit=10))
        assert hook.credits_spent == 12
    assert len(rows) == 30
    pages = requests_to(coinstats_conn, "portfolio_transactions")
    assert [(r.query["page"], r.status) for r in pages] == [("1", 200), ("2", 200), ("3", 200)]
    assert coinstats_conn.state.credits_used() - used_before == 12
    message = str(info.value)
    assert "spent 12" in message
    assert "budget of 14" in message
    assert f"costs {TX_COST} credits" in message
    assert "GET /portfolio/transactions" in message
    assert (info.value.spent, info.value.budget, info.value.cost) == (12, 14, TX_COST)
    assert isinstance(info.value, PERMANENT_ERRORS)


def test_a_call_that_lands_exactly_on_the_budget_is_sent(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=25)  # pages of 10, 10 and 5: the last is short
    with CoinStatsHook(max_credits=12) as hook:
        rows = list(hook.iter_portfolio_transactions(pid, limit=10))
        assert hook.credits_spent == 12
    assert len(rows) == 25
    assert len(requests_to(coinstats_conn, "portfolio_transactions")) == 3


@pytest.mark.parametrize(
    ("conn_budget", "hook_budget", "expected"), [(10, 20, 10), (10, 6, 6), (None, 7, 7), (9, None, 9)]
)
def test_the_smaller_budget_wins(
    coinstats_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
    conn_budget: int | None,
    hook_budget: int | None,
    expected: int,
) -> None:
    pid = connect_wallet(coinstats_conn)
    extra = {} if conn_budget is None else {"max_credits_per_task": conn_budget}
    conn_id = use_connection(coinstats_conn, monkeypatch, **extra)
    with CoinStatsHook(conn_id, max_credits=hook_budget) as hook:
        assert hook.credit_budget(hook.settings) == expected
        for _ in range(expected // TX_COST):
            hook.run(builders.portfolio_transactions(pid, limit=1))
        with pytest.raises(CoinStatsBudgetExceededError, match=f"budget of {expected} credits"):
            hook.run(builders.portfolio_transactions(pid, limit=1))
    assert len(requests_to(coinstats_conn, "portfolio_transactions")) == expected // TX_COST


def test_the_connection_budget_is_a_declared_extra(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = use_connection(coinstats_conn, monkeypatch, max_credits_per_task="25")  # the form sends text
    with CoinStatsHook(conn_id) as hook:
        assert hook.settings.max_credits_per_task == 25
    bad = use_connection(coinstats_conn, monkeypatch, max_credits_per_task=-1)
    with pytest.raises(CoinStatsConfigError, match="max_credits_per_task"), CoinStatsHook(bad) as hook:
        hook.get_usage_credits()
    assert requests_to(coinstats_conn, "usage_credits") == []


@pytest.mark.parametrize("value", [-1, True, 1.5, "10"])
def test_bad_budgets_are_refused(value: Any) -> None:
    with pytest.raises(CoinStatsValidationError, match="max_credits"):
        CoinStatsHook(max_credits=value)


def test_free_calls_pass_an_exhausted_budget(coinstats_conn: Any) -> None:
    with CoinStatsHook(max_credits=0) as hook:
        assert hook.get_usage_credits()["remainingCredits"] > 0
        with pytest.raises(CoinStatsBudgetExceededError, match="spent 0 of its budget of 0"):
            hook.get_blockchains()  # 1 credit
    assert requests_to(coinstats_conn, "wallet_blockchains") == []


def test_the_async_hook_refuses_before_sending(coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = connect_wallet(coinstats_conn)
    conn_id = use_connection(coinstats_conn, monkeypatch, max_credits_per_task=5)

    async def calls() -> tuple[int, CoinStatsBudgetExceededError]:
        async with CoinStatsAsyncHook(conn_id) as hook:
            await hook.run(builders.portfolio_transactions(pid, limit=1))  # 4
            with pytest.raises(CoinStatsBudgetExceededError) as info:
                await hook.run(builders.portfolio_transactions(pid, limit=1))  # 8 > 5
            return hook.credits_spent, info.value

    spent, error = asyncio.run(calls())
    assert spent == 4
    assert (error.spent, error.budget, error.cost) == (4, 5, 4)
    assert statuses(coinstats_conn, "portfolio_transactions") == [200]


def test_min_remaining_credits_sends_only_the_free_usage_call(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn)
    server = coinstats_conn
    server.state.set_credits(server.api_key, server.state.credits_used() + 30)  # 30 left
    with CoinStatsHook() as hook:
        with pytest.raises(CoinStatsBudgetExceededError) as info:
            hook.require_remaining_credits(100)
        assert hook.credits_spent == 0
    assert "30 credits left" in str(info.value)
    assert "min_remaining_credits=100" in str(info.value)
    assert [r.endpoint for r in server.state.requests()] == ["usage_credits"]
    with CoinStatsHook() as hook:
        assert hook.require_remaining_credits(30) == 30  # enough: the task goes on
        hook.get_portfolio_value(pid)
    assert [r.endpoint for r in server.state.requests()] == ["usage_credits", "usage_credits", "portfolio_value"]


def test_min_remaining_credits_in_the_async_hook(coinstats_conn: Any) -> None:
    server = coinstats_conn
    server.state.set_credits(server.api_key, server.state.credits_used() + 3)

    async def check() -> None:
        async with CoinStatsAsyncHook() as hook:
            await hook.require_remaining_credits(4)

    with pytest.raises(CoinStatsBudgetExceededError, match="3 credits left"):
        asyncio.run(check())
    assert [r.endpoint for r in server.state.requests()] == ["usage_credits"]
