"""Pagination never spends credits for ever: a repeated page or the page limit stops it.

The sandbox's ``ignore_page`` fault makes an endpoint answer page 1 whatever ``page`` asks for,
as a server that ignores the parameter would; request counts come from the sandbox's log.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_coinstats import exceptions as exc
from airflow_provider_coinstats.hooks.coinstats import MAX_PAGES, CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from tests.helpers import connect_wallet


def pages_asked(server: Any, endpoint: str = "portfolio_transactions") -> list[str]:
    return [r.query["page"] for r in server.state.requests(endpoint=endpoint)]


def test_repeated_page_stops_pagination(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=1000)
    coinstats_conn.state.add_fault(Fault("ignore_page", endpoint="portfolio_transactions"))
    rows: list[Any] = []
    with CoinStatsHook() as hook, pytest.raises(exc.CoinStatsPaginationError) as info:
        rows.extend(hook.iter_portfolio_transactions(pid, limit=100))
    assert pages_asked(coinstats_conn) == ["1", "2"]
    assert len(rows) == 100  # the repeated page's rows are not handed out a second time
    assert info.value.page == 2
    assert "page 2 repeats page 1" in str(info.value)
    assert isinstance(info.value, exc.PERMANENT_ERRORS)


def test_repeated_page_stops_other_paginated_reads(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=0)
    coinstats_conn.state.add_fault(Fault("ignore_page", endpoint="portfolio_coins"))
    with CoinStatsHook() as hook:
        coins = hook.get_portfolio_coins(pid)
        assert len(coins) > 2
        with pytest.raises(exc.CoinStatsPaginationError):
            list(hook.iter_portfolio_coins(pid, limit=2))
    assert pages_asked(coinstats_conn, "portfolio_coins")[-2:] == ["1", "2"]


def test_page_limit_stops_pagination(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=1000)
    with CoinStatsHook() as hook, pytest.raises(exc.CoinStatsPaginationError) as info:
        list(hook.iter_portfolio_transactions(pid, limit=100, max_pages=3))
    assert pages_asked(coinstats_conn) == ["1", "2", "3"]
    assert "limit of 3 pages" in str(info.value)


def test_page_limit_counts_from_the_start_page(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=1000)
    with CoinStatsHook() as hook, pytest.raises(exc.CoinStatsPaginationError):
        list(hook.iter_portfolio_transactions(pid, limit=100, start_page=5, max_pages=2))
    assert pages_asked(coinstats_conn) == ["5", "6"]


def test_reaching_the_end_within_the_limit_is_fine(coinstats_conn: Any) -> None:
    pid = connect_wallet(coinstats_conn, transactions=250)
    with CoinStatsHook() as hook:
        assert len(list(hook.iter_portfolio_transactions(pid, limit=100, max_pages=3))) == 250
    assert pages_asked(coinstats_conn) == ["1", "2", "3"]


def test_default_page_limit_and_bad_values(coinstats_conn: Any) -> None:
    assert MAX_PAGES == 10_000
    with CoinStatsHook() as hook:
        for bad in (0, -1, True, 1.5):
            with pytest.raises(exc.CoinStatsValidationError, match="max_pages"):
                hook.iter_portfolio_transactions("p1", max_pages=bad)
    assert coinstats_conn.state.requests() == []
