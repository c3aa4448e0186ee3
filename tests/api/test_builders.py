"""Request builders: exact seed body shapes and validation that names the field."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.exceptions import CoinStatsValidationError


def test_connect_wallet_body_matches_seed_schema() -> None:
    req = builders.connect_wallet("  0xabc  ", " ethereum ", name="Main")
    assert (req.method, req.path, req.credits) == ("POST", "/portfolio/wallet", 40)
    assert req.json == {"address": "0xabc", "connectionId": "ethereum", "name": "Main"}


@pytest.mark.parametrize("name", [None, "", "   "])
def test_connect_wallet_omits_missing_name(name: str | None) -> None:
    assert builders.connect_wallet("0xabc", "ethereum", name=name).json == {
        "address": "0xabc",
        "connectionId": "ethereum",
    }


def test_connect_exchange_body_and_secrets() -> None:
    req = builders.connect_exchange("binance", {"apiKey": "k1", "apiSecret": "s1"})
    assert req.json == {"connectionId": "binance", "connectionFields": {"apiKey": "k1", "apiSecret": "s1"}}
    assert set(req.secrets) == {"k1", "s1"}
    assert "k1" not in repr(req) and "s1" not in repr(req)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: builders.connect_wallet("", "ethereum"), "address"),
        (lambda: builders.connect_wallet("   ", "ethereum"), "address"),
        (lambda: builders.connect_wallet(None, "ethereum"), "address"),
        (lambda: builders.connect_wallet("0xabc", " "), "blockchain"),
        (lambda: builders.connect_wallet("0xabc", "ethereum", name=5), "portfolio_name"),
        (lambda: builders.connect_exchange("", {"apiKey": "k"}), "exchange"),
        (lambda: builders.connect_exchange("binance", {}), "connection_fields"),
        (lambda: builders.connect_exchange("binance", None), "connection_fields"),
        (lambda: builders.connect_exchange("binance", {"apiKey": 123}), "connection_fields['apiKey']"),
        (lambda: builders.connect_exchange("binance", {"apiKey": "  "}), "connection_fields['apiKey']"),
        (lambda: builders.portfolio_status(""), "portfolio_id"),
        (lambda: builders.portfolio_transactions("p", currency=""), "currency"),
        (lambda: builders.portfolio_transactions("p", limit=0), "limit"),
        (lambda: builders.portfolio_transactions("p", limit=101), "limit"),
        (lambda: builders.portfolio_transactions("p", page=0), "page"),
        (lambda: builders.portfolio_chart("p", "2d"), "chart_type"),
        (lambda: builders.portfolio_pl_history("p", interval="minutely"), "interval"),
        (lambda: builders.portfolio_pl_history("p", from_date="2025-01-01"), "from_date"),
        (lambda: builders.portfolio_snapshot_items("p", coin_ids="bitcoin"), "coin_ids"),
    ],
)
def test_validation_names_the_field(call: Any, field: str) -> None:
    with pytest.raises(CoinStatsValidationError) as info:
        call()
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_non_string_credential_value_is_not_echoed() -> None:
    with pytest.raises(CoinStatsValidationError) as info:
        builders.connect_exchange("binance", {"apiKey": 987654321})
    assert "987654321" not in str(info.value)


def test_transactions_require_currency_and_default_usd() -> None:
    req = builders.portfolio_transactions("p1", page=2, limit=50, coin_id="bitcoin")
    assert dict(req.params) == {
        "portfolioId": "p1",
        "currency": "USD",
        "page": "2",
        "limit": "50",
        "coinId": "bitcoin",
    }


def test_sync_all_costs_ten_times() -> None:
    assert builders.portfolio_sync("p").credits == 30
    assert builders.portfolio_sync(None).credits == 300
    assert builders.portfolio_sync(None).params == {}


def test_delete_path_is_quoted() -> None:
    assert builders.delete_portfolio("a/b").path == "/portfolio/a%2Fb"
