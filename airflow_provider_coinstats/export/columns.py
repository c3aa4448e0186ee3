"""The column catalogue: every export dataset's columns, types, descriptions and key, declared once.

This is the single source of column names. The flatteners (:mod:`.flatteners`) fill exactly
these columns, in this order: :mod:`.rows` refuses a row whose keys differ, so a misspelt or
forgotten column fails the first row of every test instead of becoming an always-null column.
The dataset table and the value conventions are documented in :mod:`.schemas`.

Example::

    schema = get_schema("chart")
    schema.column_names()  # ['portfolio_id', 'extracted_at', 'timestamp', 'value_usd', ...]
    schema.key             # ('portfolio_id', 'timestamp')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Literal, get_args

from airflow_provider_coinstats.exceptions import CoinStatsValidationError

ColumnType = Literal["string", "decimal", "integer", "boolean", "timestamp"]

#: The Python type every column type maps to (``None`` aside).
PYTHON_TYPES: Final[Mapping[str, type]] = MappingProxyType(
    {"string": str, "decimal": Decimal, "integer": int, "boolean": bool, "timestamp": datetime}
)


_COLUMN_TYPE_NAMES: Final = frozenset(get_args(ColumnType))

#: The widest exact decimal of Parquet's decimal128, Snowflake, SQL Server and BigQuery NUMERIC alike.
DECIMAL_PRECISION: Final = 38
#: Fractional digits of quantities, amounts and percents: 18 is the most decimals a token has on
#: EVM chains (wei), and leaves 20 integer digits. Values with more (an exact product of two
#: JSON numbers can have) are rounded to it by fixed-point writers.
AMOUNT_SCALE: Final = 18
#: Fractional digits of prices and crypto-denominated values: a token can cost 1e-10 BTC, and a
#: JSON float carries up to 17 significant digits; 14 integer digits remain.
PRICE_SCALE: Final = 24


@dataclass(frozen=True)
class Column:
    """One column of a flat export row.

    Example::

        Column("price_usd", "decimal", description="Current price in USD (price.USD).")
    """

    name: str
    type: ColumnType
    nullable: bool = True
    description: str = ""
    #: ``decimal`` columns only: total and fractional digits a writer with fixed-point types
    #: (Parquet decimal128, SQL DECIMAL(p, s)) uses; defaults DECIMAL_PRECISION, AMOUNT_SCALE.
    precision: int | None = None
    scale: int | None = None

    def __post_init__(self) -> None:
        if self.type not in _COLUMN_TYPE_NAMES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")
        if self.type != "decimal":
            if self.precision is not None or self.scale is not None:
                raise ValueError(f"column {self.name}: only decimal columns have a precision and scale")
            return
        precision = DECIMAL_PRECISION if self.precision is None else self.precision
        scale = AMOUNT_SCALE if self.scale is None else self.scale
        if not 0 <= scale <= precision <= DECIMAL_PRECISION:
            raise ValueError(f"column {self.name}: needs 0 <= scale <= precision <= {DECIMAL_PRECISION}")
        object.__setattr__(self, "precision", precision)  # frozen: fill the defaults once
        object.__setattr__(self, "scale", scale)


@dataclass(frozen=True)
class DatasetSchema:
    """The flat record layout of one dataset: ordered columns and the natural key for upserts.

    Example::

        schema = get_schema("chart")
        schema.column_names()  # ['portfolio_id', 'extracted_at', 'timestamp', 'value_usd', ...]
        schema.key             # ('portfolio_id', 'timestamp')
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    description: str = ""

    def __post_init__(self) -> None:
        names = self.column_names()
        if len(set(names)) != len(names):
            raise ValueError(f"dataset {self.name}: duplicate column names")
        if names[:2] != ["portfolio_id", "extracted_at"]:
            raise ValueError(f"dataset {self.name}: must start with portfolio_id, extracted_at")
        by_name = {c.name: c for c in self.columns}
        for name in self.key:
            if name not in by_name or by_name[name].nullable:
                raise ValueError(f"dataset {self.name}: key column {name} must be a not-null column")

    def column_names(self) -> list[str]:
        """Column names in row order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The column called ``name`` (``KeyError`` if there is none)."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


# --------------------------------------------------------------------------- columns


def _col(name: str, type_: ColumnType, description: str, *, nullable: bool = True, scale: int | None = None) -> Column:
    return Column(name=name, type=type_, nullable=nullable, description=description, scale=scale)


_COMMON: Final = (
    _col("portfolio_id", "string", "CoinStats portfolio id the row was read from.", nullable=False),
    _col(
        "extracted_at",
        "timestamp",
        "When the export read the data (UTC); one value per extraction run.",
        nullable=False,
    ),
)

_CURRENCY: Final = _col(
    "currency", "string", "Currency of the amount columns (the request's currency parameter), e.g. USD.", nullable=False
)

#: (JSON period key, column suffix, wording) of the PortfolioItem profit maps; the coins flattener reads it too.
PERIODS: Final = (
    ("allTime", "all_time", "all time"),
    ("hour24", "24h", "the last 24 hours"),
    ("lastTrade", "last_trade", "since the last trade"),
    ("unrealized", "unrealized", "unrealized (open position)"),
    ("realized", "realized", "realized (closed trades)"),
)

_COINS_COLUMNS: Final = (
    *_COMMON,
    _col("coin_id", "string", "CoinStats coin identifier (coin.identifier), e.g. bitcoin.", nullable=False),
    _col("symbol", "string", "Ticker symbol, e.g. BTC."),
    _col("name", "string", "Coin display name."),
    _col("rank", "integer", "Market-capitalisation rank at extraction time."),
    _col("is_fiat", "boolean", "True for fiat cash holdings (coin.isFiat)."),
    _col("is_fake", "boolean", "CoinStats flags the token as fake or unverified (coin.isFake)."),
    _col("count", "decimal", "Quantity held, in coin units."),
    _col("price_usd", "decimal", "Current price in USD (price.USD).", scale=PRICE_SCALE),
    _col("price_btc", "decimal", "Current price in BTC (price.BTC).", scale=PRICE_SCALE),
    _col("price_eth", "decimal", "Current price in ETH (price.ETH).", scale=PRICE_SCALE),
    _col("value_usd", "decimal", "Holding value in USD: count x price_usd, multiplied exactly."),
    _col("price_change_1h_percent", "decimal", "Market price change over the last hour, percent."),
    _col("price_change_24h_percent", "decimal", "Market price change over the last 24 hours, percent."),
    _col("price_change_7d_percent", "decimal", "Market price change over the last 7 days, percent."),
    _col("volume_usd", "decimal", "The coin's market trading volume in USD as CoinStats reports it (coin.volume)."),
    *(
        _col(f"profit_{suffix}_usd", "decimal", f"Profit in USD, {words} (profit.{key}.USD).")
        for key, suffix, words in PERIODS
    ),
    *(
        _col(
            f"profit_percent_{suffix}_usd",
            "decimal",
            f"Profit percent in USD terms, {words} (profitPercent.{key}.USD).",
        )
        for key, suffix, words in PERIODS
    ),
    _col(
        "average_buy_all_time_usd",
        "decimal",
        "Average buy price in USD over all time (averageBuy.allTime.USD).",
        scale=PRICE_SCALE,
    ),
    _col(
        "average_buy_last_trade_usd",
        "decimal",
        "Buy price in USD of the last trade (averageBuy.lastTrade.USD).",
        scale=PRICE_SCALE,
    ),
    _col(
        "average_sell_all_time_usd",
        "decimal",
        "Average sell price in USD over all time; CoinStats sends 0 if never sold.",
        scale=PRICE_SCALE,
    ),
    _col(
        "average_sell_last_trade_usd",
        "decimal",
        "Sell price in USD of the last trade (averageSell.lastTrade.USD).",
        scale=PRICE_SCALE,
    ),
    _col("liquidity_score", "decimal", "Liquidity score; only when read with include_risk_score."),
    _col("volatility_score", "decimal", "Volatility score; only when read with include_risk_score."),
    _col("market_cap_score", "decimal", "Market-cap score; only when read with include_risk_score."),
    _col("risk_score", "decimal", "Overall risk score; only when read with include_risk_score."),
    _col("avg_change", "decimal", "CoinStats' average price change figure; only with include_risk_score."),
)

_VALUE_COLUMNS: Final = (
    *_COMMON,
    _CURRENCY,
    _col("total_value", "decimal", "Current value of all holdings (totalValue)."),
    _col("defi_value", "decimal", "Current value of DeFi positions (defiValue)."),
    _col("total_cost", "decimal", "Cost basis of the holdings (totalCost)."),
    _col("unrealized_profit_loss", "decimal", "Unrealized profit or loss (unrealizedProfitLoss)."),
    _col("unrealized_profit_loss_percent", "decimal", "Unrealized profit or loss, percent of cost."),
    _col("realized_profit_loss", "decimal", "Realized profit or loss (realizedProfitLoss)."),
    _col("realized_profit_loss_percent", "decimal", "Realized profit or loss, percent of cost."),
    _col("all_time_profit_loss", "decimal", "Realized plus unrealized profit or loss (allTimeProfitLoss)."),
    _col("all_time_profit_loss_percent", "decimal", "All-time profit or loss, percent of cost."),
)

_CHART_COLUMNS: Final = (
    *_COMMON,
    _col("timestamp", "timestamp", "Time of the chart point (UTC).", nullable=False),
    _col("value_usd", "decimal", "Portfolio value in USD at that time."),
    _col("value_btc", "decimal", "Portfolio value in BTC at that time.", scale=PRICE_SCALE),
    _col("value_eth", "decimal", "Portfolio value in ETH at that time.", scale=PRICE_SCALE),
)

_TRANSACTIONS_COLUMNS: Final = (
    *_COMMON,
    _col(
        "row_key",
        "string",
        "Deterministic id derived from the transaction's stable fields (CoinStats sends none).",
        nullable=False,
    ),
    _CURRENCY,
    _col("date", "timestamp", "When the transaction happened (UTC).", nullable=False),
    _col("transaction_type", "string", "CoinStats type: Buy, Sell, Sent, Received, Swap, Roll In, Dust Convert."),
    _col("coin_id", "string", "Main coin of the transaction (coinData.identifier)."),
    _col("symbol", "string", "Ticker symbol of the main coin (coinData.symbol)."),
    _col("count", "decimal", "Signed quantity of the main coin; negative for outgoing (coinData.count)."),
    _col("total_worth", "decimal", "Value of the quantity at the transaction date, in currency (coinData.totalWorth)."),
    _col("current_value", "decimal", "Value of the quantity at today's price, in currency (profitLoss.currentValue)."),
    _col("profit", "decimal", "Profit or loss of the transaction to date, in currency (profitLoss.profit)."),
    _col("profit_percent", "decimal", "Profit or loss to date, percent (profitLoss.profitPercent)."),
    _col("fee_coin_id", "string", "Coin the fee was paid in (fee.coin.identifier)."),
    _col("fee_symbol", "string", "Ticker symbol of the fee coin."),
    _col("fee_count", "decimal", "Fee quantity in fee-coin units (fee.count)."),
    _col("fee_price", "decimal", "Fee coin price at the transaction date, in currency (fee.price).", scale=PRICE_SCALE),
    _col("fee_total_worth", "decimal", "Fee value at the transaction date, in currency (fee.totalWorth)."),
    _col("transfer_count", "integer", "Number of movement items over all transfers (a swap has 2)."),
    _col("sent_coin_id", "string", "Coin of the first item of the first Sent transfer (a swap's outgoing leg)."),
    _col("sent_count", "decimal", "Signed quantity of that sent item (negative)."),
    _col(
        "received_coin_id", "string", "Coin of the first item of the first Received transfer (a swap's incoming leg)."
    ),
    _col("received_count", "decimal", "Quantity of that received item."),
    _col("portfolio_name", "string", "Name of the portfolio the transaction belongs to (portfolioInfo.name)."),
    _col("note", "string", "User note, if any (objects are rendered as canonical JSON text)."),
)

_DEFI_COLUMNS: Final = (
    *_COMMON,
    _col("protocol_id", "string", "DeFi protocol id, e.g. aave-v3.", nullable=False),
    _col("chain", "string", "Chain the position lives on (chain, else blockchain.name).", nullable=False),
    _col("investment_id", "string", "Position id within the protocol (investment.id, else its name).", nullable=False),
    _col(
        "asset_index",
        "integer",
        "Position of the asset in investment.assets (0 for an investment without assets).",
        nullable=False,
    ),
    _col("protocol_name", "string", "Protocol display name."),
    _col("protocol_url", "string", "Protocol web site."),
    _col("blockchain_name", "string", "Display name of the chain (blockchain.name)."),
    _col("wallet_address", "string", "Wallet that holds the position."),
    _col("protocol_value_usd", "decimal", "Value of everything held in this protocol entry, USD (totalValue.USD)."),
    _col("investment_name", "string", "Kind of position, e.g. Lending, Staking, Liquidity Pool."),
    _col("investment_value_usd", "decimal", "Value of the whole investment in USD (investment.value.USD)."),
    _col("investment_symbols", "string", "Comma-separated symbols of the investment (investment.symbols)."),
    _col("pool_address", "string", "Pool or contract address of the investment."),
    _col("pool_project_id", "string", "Project id of the pool (poolProjectId)."),
    _col("health_rate", "decimal", "Health rate of a lending position; null when not applicable."),
    _col("debt_ratio", "decimal", "Debt ratio of a lending position; null when not applicable."),
    _col("unlock_at", "timestamp", "When locked funds unlock, if locked."),
    _col("end_at", "timestamp", "When the position ends, if it has an end."),
    _col("is_proxy", "boolean", "CoinStats' isProxy flag of the investment."),
    _col("asset_title", "string", "Role of the asset in the position, e.g. Supplied, Borrowed, Staked."),
    _col("asset_coin_id", "string", "CoinStats coin identifier of the asset (coinId)."),
    _col("asset_symbol", "string", "Ticker symbol of the asset."),
    _col("asset_address", "string", "Token address of the asset."),
    _col("asset_amount", "decimal", "Quantity of the asset, in coin units."),
    _col("asset_price_usd", "decimal", "Asset price in USD (price.USD).", scale=PRICE_SCALE),
    _col("asset_value_usd", "decimal", "asset_amount x asset_price_usd, multiplied exactly."),
    _col("asset_danger", "boolean", "CoinStats flags the asset as dangerous (danger)."),
)

_SNAPSHOT_COLUMNS: Final = (
    *_COMMON,
    _col("date", "timestamp", "Day of the snapshot (midnight UTC).", nullable=False),
    _col("symbol", "string", "Ticker symbol of the coin (snapshots carry no coin id).", nullable=False),
    _col("quantity", "decimal", "Quantity held that day, in coin units."),
    _col("quantity_change", "decimal", "Change of quantity since the previous day."),
    _col("balance", "decimal", "Value held that day, in USD (the endpoint takes no currency)."),
    _col("balance_change", "decimal", "Change of balance since the previous day, USD."),
    _col(
        "price_per_unit",
        "decimal",
        "Coin price that day, USD; null where CoinStats has no price (it sends 0).",
        scale=PRICE_SCALE,
    ),
    _col("price_percent_change", "decimal", "Price change since the previous day, percent; null without a price."),
    _col("total_balance", "decimal", "Whole portfolio's balance that day, USD (repeated on each coin row)."),
    _col("total_balance_change", "decimal", "Change of the whole balance since the previous day, USD."),
    _col("total_balance_percent_change", "decimal", "Change of the whole balance since the previous day, percent."),
)

_PL_COLUMNS: Final = (
    *_COMMON,
    _col("timestamp", "timestamp", "Time of the point (UTC).", nullable=False),
    _CURRENCY,
    _col("profit_loss", "decimal", "Cash-flow-adjusted profit or loss since the start of the requested window."),
    _col("profit_loss_percent", "decimal", "That profit or loss, percent of the window's starting value."),
    _col("value", "decimal", "Portfolio value at that time."),
    _col("net_flow", "decimal", "Net deposits (+) or withdrawals (-) at that point."),
)

DATASETS: Final[Mapping[str, DatasetSchema]] = MappingProxyType(
    {
        s.name: s
        for s in (
            DatasetSchema("coins", _COINS_COLUMNS, ("portfolio_id", "coin_id"), "One row per holding."),
            DatasetSchema(
                "value",
                _VALUE_COLUMNS,
                ("portfolio_id", "extracted_at", "currency"),
                "One row per extraction: the portfolio's totals.",
            ),
            DatasetSchema("chart", _CHART_COLUMNS, ("portfolio_id", "timestamp"), "One row per chart point."),
            DatasetSchema(
                "transactions", _TRANSACTIONS_COLUMNS, ("portfolio_id", "row_key"), "One row per transaction."
            ),
            DatasetSchema(
                "defi",
                _DEFI_COLUMNS,
                ("portfolio_id", "protocol_id", "chain", "investment_id", "asset_index"),
                "One row per asset of a DeFi investment; investment and protocol fields repeat.",
            ),
            DatasetSchema(
                "snapshot_items",
                _SNAPSHOT_COLUMNS,
                ("portfolio_id", "date", "symbol"),
                "One row per coin per daily snapshot; the day's totals repeat.",
            ),
            DatasetSchema(
                "pl_history",
                _PL_COLUMNS,
                ("portfolio_id", "timestamp", "currency"),
                "One row per profit-and-loss history point.",
            ),
        )
    }
)


def get_schema(name: str) -> DatasetSchema:
    """The schema of dataset ``name``.

    Example::

        get_schema("transactions").key  # ('portfolio_id', 'row_key')
        get_schema("nope")  # CoinStatsValidationError: dataset: must be one of coins, value, ...
    """
    schema = DATASETS.get(name) if isinstance(name, str) else None
    if schema is None:
        raise CoinStatsValidationError("dataset", f"must be one of {', '.join(DATASETS)}; got {name!r}")
    return schema


#: Datasets that hold only the current state ("now"); history mode keeps one snapshot of them per run.
SNAPSHOT_DATASETS: Final = ("coins", "defi", "value")

SNAPSHOT_DATE: Final = _col(
    "snapshot_date",
    "timestamp",
    "The run's logical date this snapshot is filed under (UTC); extracted_at says when it was read.",
    nullable=False,
)


def snapshot_schema(name: str) -> DatasetSchema:
    """History-mode variant of a current-state dataset: ``snapshot_date`` added and keyed after the portfolio.

    Example::

        snapshot_schema("value").key  # ('portfolio_id', 'snapshot_date', 'currency')
    """
    base = get_schema(name)
    if base.name not in SNAPSHOT_DATASETS:
        raise CoinStatsValidationError(
            "history", f"{base.name} carries its own timestamps; snapshots exist for {', '.join(SNAPSHOT_DATASETS)}"
        )
    # extracted_at leaves value's key: one snapshot per date, whatever time the rerun read it.
    rest = tuple(k for k in base.key if k not in ("portfolio_id", "extracted_at"))
    return DatasetSchema(
        base.name,
        (*base.columns[:2], SNAPSHOT_DATE, *base.columns[2:]),
        ("portfolio_id", "snapshot_date", *rest),
        f"{base.description} History mode: one snapshot per run date.",
    )
