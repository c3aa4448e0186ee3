"""Flatteners: one CoinStats item to the values of one row, per dataset.

Each flattener returns the dataset's own columns (every column of :mod:`.columns` but the common
``portfolio_id`` and ``extracted_at``), named and ordered as the catalogue declares them.
:mod:`.rows` checks that on every row and refuses anything else, so a misspelt, missing or
extra column fails at once (``tests/export/test_flatteners.py`` runs every flattener against the
sandbox). Values come from :mod:`.values`; nested lists are counted or joined, never copied.

Example::

    transactions({"date": "2025-08-28T08:35:50.384Z", ...}, RowContext("p1", now, "USD"))
    # -> {'row_key': '3f1c...', 'currency': 'USD', 'date': datetime(2025, 8, 28, ...), ...}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from airflow_provider_coinstats.export.columns import PERIODS
from airflow_provider_coinstats.export.records import DefiPosition, SnapshotBalance
from airflow_provider_coinstats.export.row_key import coin_id, row_key
from airflow_provider_coinstats.export.values import (
    as_list,
    as_mapping,
    dig,
    exact_product,
    to_bool,
    to_decimal,
    to_int,
    to_text,
    to_timestamp,
)


@dataclass(frozen=True)
class RowContext:
    """What every row of one extraction shares: the portfolio, when it was read, the request's currency.

    Example::

        RowContext("p1", datetime(2026, 1, 1, tzinfo=UTC), "USD")
    """

    portfolio_id: str
    extracted_at: datetime
    currency: str


Flattener = Callable[[Any, RowContext], dict[str, Any]]


def coins(item: Any, ctx: RowContext) -> dict[str, Any]:
    """A holding of GET /portfolio/coins."""
    coin = as_mapping(item.get("coin"))
    count = to_decimal(item.get("count"))
    price = as_mapping(item.get("price"))
    price_usd = to_decimal(price.get("USD"))
    profit = as_mapping(item.get("profit"))
    profit_percent = as_mapping(item.get("profitPercent"))
    return {
        "coin_id": to_text(coin.get("identifier")),
        "symbol": to_text(coin.get("symbol")),
        "name": to_text(coin.get("name")),
        "rank": to_int(coin.get("rank")),
        "is_fiat": to_bool(coin.get("isFiat")),
        "is_fake": to_bool(coin.get("isFake")),
        "count": count,
        "price_usd": price_usd,
        "price_btc": to_decimal(price.get("BTC")),
        "price_eth": to_decimal(price.get("ETH")),
        "value_usd": exact_product(count, price_usd),
        "price_change_1h_percent": to_decimal(coin.get("priceChange1h")),
        "price_change_24h_percent": to_decimal(coin.get("priceChange24h")),
        "price_change_7d_percent": to_decimal(coin.get("priceChange7d")),
        "volume_usd": to_decimal(coin.get("volume")),
        **{f"profit_{suffix}_usd": to_decimal(dig(profit, key, "USD")) for key, suffix, _ in PERIODS},
        **{f"profit_percent_{suffix}_usd": to_decimal(dig(profit_percent, key, "USD")) for key, suffix, _ in PERIODS},
        "average_buy_all_time_usd": to_decimal(dig(item, "averageBuy", "allTime", "USD")),
        "average_buy_last_trade_usd": to_decimal(dig(item, "averageBuy", "lastTrade", "USD")),
        "average_sell_all_time_usd": to_decimal(dig(item, "averageSell", "allTime", "USD")),
        "average_sell_last_trade_usd": to_decimal(dig(item, "averageSell", "lastTrade", "USD")),
        "liquidity_score": to_decimal(item.get("liquidityScore")),
        "volatility_score": to_decimal(item.get("volatilityScore")),
        "market_cap_score": to_decimal(item.get("marketCapScore")),
        "risk_score": to_decimal(item.get("riskScore")),
        "avg_change": to_decimal(item.get("avgChange")),
    }


#: value column -> GET /portfolio/value field (all decimals).
_VALUE_FIELDS: Final = {
    "total_value": "totalValue",
    "defi_value": "defiValue",
    "total_cost": "totalCost",
    "unrealized_profit_loss": "unrealizedProfitLoss",
    "unrealized_profit_loss_percent": "unrealizedProfitLossPercent",
    "realized_profit_loss": "realizedProfitLoss",
    "realized_profit_loss_percent": "realizedProfitLossPercent",
    "all_time_profit_loss": "allTimeProfitLoss",
    "all_time_profit_loss_percent": "allTimeProfitLossPercent",
}


def value(item: Any, ctx: RowContext) -> dict[str, Any]:
    """The totals of one GET /portfolio/value answer."""
    return {"currency": ctx.currency, **{column: to_decimal(item.get(key)) for column, key in _VALUE_FIELDS.items()}}


def chart(item: Any, ctx: RowContext) -> dict[str, Any]:
    """A ``[timestamp_ms, usd, btc, eth]`` chart point."""
    # Older answers sent [timestamp_ms, value] pairs: the missing currencies become None.
    point = [*item[:4], None, None, None]
    return {
        "timestamp": to_timestamp(point[0]),
        "value_usd": to_decimal(point[1]),
        "value_btc": to_decimal(point[2]),
        "value_eth": to_decimal(point[3]),
    }


def transactions(item: Any, ctx: RowContext) -> dict[str, Any]:
    """A transaction of GET /portfolio/transactions; its ``row_key`` comes from :mod:`.row_key`."""
    coin_data = as_mapping(item.get("coinData"))
    profit_loss = as_mapping(item.get("profitLoss"))
    fee = as_mapping(item.get("fee"))
    fee_coin = as_mapping(fee.get("coin"))
    transfers = as_list(item.get("transfers"))
    date = to_timestamp(item.get("date"))
    # One pass: the first item of the first Sent and Received transfers (a swap's two legs).
    sent: Mapping[str, Any] | None = None
    received: Mapping[str, Any] | None = None
    transfer_count = 0
    for transfer in transfers:
        entries = as_list(dig(transfer, "items"))
        transfer_count += len(entries)
        if entries:
            kind = transfer.get("transferType")
            if sent is None and kind == "Sent":
                sent = as_mapping(entries[0])
            elif received is None and kind == "Received":
                received = as_mapping(entries[0])
    sent = sent or {}
    received = received or {}
    current_value = profit_loss.get("currentValue")
    return {
        "row_key": row_key(item, date, transfers),
        "currency": ctx.currency,
        "date": date,
        "transaction_type": to_text(item.get("transactionType")),
        "coin_id": to_text(coin_data.get("identifier")),
        "symbol": to_text(coin_data.get("symbol")),
        "count": to_decimal(coin_data.get("count")),
        "total_worth": to_decimal(coin_data.get("totalWorth")),
        "current_value": to_decimal(current_value if current_value is not None else coin_data.get("currentValue")),
        "profit": to_decimal(profit_loss.get("profit")),
        "profit_percent": to_decimal(profit_loss.get("profitPercent")),
        "fee_coin_id": to_text(coin_id(fee_coin)),
        "fee_symbol": to_text(fee_coin.get("symbol")),
        "fee_count": to_decimal(fee.get("count")),
        "fee_price": to_decimal(fee.get("price")),
        "fee_total_worth": to_decimal(fee.get("totalWorth")),
        "transfer_count": transfer_count,
        "sent_coin_id": to_text(coin_id(sent.get("coin"))),
        "sent_count": to_decimal(sent.get("count")),
        "received_coin_id": to_text(coin_id(received.get("coin"))),
        "received_count": to_decimal(received.get("count")),
        "portfolio_name": to_text(dig(item, "portfolioInfo", "name")),
        "note": to_text(item.get("note")),
    }


def defi(item: DefiPosition, ctx: RowContext) -> dict[str, Any]:
    """One asset of a DeFi investment (see :func:`~.records.defi_positions`)."""
    protocol, investment = item.protocol, item.investment
    asset = as_mapping(item.asset)
    amount = to_decimal(asset.get("amount"))
    price_usd = to_decimal(dig(asset, "price", "USD"))
    symbols = as_list(investment.get("symbols"))
    chain = protocol.get("chain") or dig(protocol, "blockchain", "name")
    return {
        "protocol_id": to_text(protocol.get("id")),
        "chain": to_text(chain),
        "investment_id": to_text(investment.get("id") or investment.get("name")),
        "asset_index": item.asset_index,
        "protocol_name": to_text(protocol.get("name")),
        "protocol_url": to_text(protocol.get("url")),
        "blockchain_name": to_text(dig(protocol, "blockchain", "name")),
        "wallet_address": to_text(protocol.get("walletAddress")),
        "protocol_value_usd": to_decimal(dig(protocol, "totalValue", "USD")),
        "investment_name": to_text(investment.get("name")),
        "investment_value_usd": to_decimal(dig(investment, "value", "USD")),
        "investment_symbols": ",".join(str(s) for s in symbols) if symbols else None,
        "pool_address": to_text(investment.get("poolAddress")),
        "pool_project_id": to_text(investment.get("poolProjectId")),
        "health_rate": to_decimal(investment.get("healthRate")),
        "debt_ratio": to_decimal(investment.get("debtRatio")),
        "unlock_at": to_timestamp(investment.get("unlockAt")),
        "end_at": to_timestamp(investment.get("endAt")),
        "is_proxy": to_bool(investment.get("isProxy")),
        "asset_title": to_text(asset.get("title")),
        "asset_coin_id": to_text(asset.get("coinId")),
        "asset_symbol": to_text(asset.get("symbol")),
        "asset_address": to_text(asset.get("address")),
        "asset_amount": amount,
        "asset_price_usd": price_usd,
        "asset_value_usd": exact_product(amount, price_usd),
        "asset_danger": to_bool(asset.get("danger")),
    }


def snapshot_items(item: SnapshotBalance, ctx: RowContext) -> dict[str, Any]:
    """One coin balance of a daily snapshot (see :func:`~.records.snapshot_balances`)."""
    snapshot, balance = item.snapshot, item.balance
    price = to_decimal(balance.get("pricePerUnit"))
    # CoinStats sends 0 for "no price data"; a real price of exactly 0 does not exist.
    has_price = price is not None and not price.is_zero()
    return {
        "date": to_timestamp(snapshot.get("date")),
        "symbol": to_text(balance.get("symbol")),
        "quantity": to_decimal(balance.get("quantity")),
        "quantity_change": to_decimal(balance.get("quantityChange")),
        "balance": to_decimal(balance.get("balance")),
        "balance_change": to_decimal(balance.get("balanceChange")),
        "price_per_unit": price if has_price else None,
        "price_percent_change": to_decimal(balance.get("pricePercentChange")) if has_price else None,
        "total_balance": to_decimal(snapshot.get("totalBalance")),
        "total_balance_change": to_decimal(snapshot.get("totalBalanceChange")),
        "total_balance_percent_change": to_decimal(snapshot.get("totalBalancePercentChange")),
    }


def pl_history(item: Any, ctx: RowContext) -> dict[str, Any]:
    """A point of GET /portfolio/pl/history."""
    moment = item.get("date") if item.get("date") is not None else item.get("timestamp")
    return {
        "timestamp": to_timestamp(moment),
        "currency": ctx.currency,
        "profit_loss": to_decimal(item.get("profitLoss")),
        "profit_loss_percent": to_decimal(item.get("profitLossPercent")),
        "value": to_decimal(item.get("value")),
        "net_flow": to_decimal(item.get("netFlow")),
    }


def _is_object(item: Any) -> bool:
    return isinstance(item, Mapping)


def _is_point(item: Any) -> bool:
    return isinstance(item, Sequence) and not isinstance(item, str | bytes) and len(item) >= 1


@dataclass(frozen=True)
class FlattenerSpec:
    """How one dataset's items become rows: which items it accepts (and how to say so) and its flattener."""

    accepts: Callable[[Any], bool]
    expected: str
    flatten: Flattener


#: dataset -> its flattener; :mod:`.rows` checks that every dataset of the catalogue has one.
FLATTENERS: Final[Mapping[str, FlattenerSpec]] = {
    "coins": FlattenerSpec(_is_object, "a JSON object", coins),
    "value": FlattenerSpec(_is_object, "a JSON object", value),
    "chart": FlattenerSpec(_is_point, "a [timestamp, usd, btc, eth] list", chart),
    "transactions": FlattenerSpec(_is_object, "a JSON object", transactions),
    "defi": FlattenerSpec(lambda i: isinstance(i, DefiPosition), "a DefiPosition (see defi_positions)", defi),
    "snapshot_items": FlattenerSpec(
        lambda i: isinstance(i, SnapshotBalance), "a SnapshotBalance (see snapshot_balances)", snapshot_items
    ),
    "pl_history": FlattenerSpec(_is_object, "a JSON object", pl_history),
}
