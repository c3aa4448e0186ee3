"""Flat, documented record schemas for CoinStats portfolio data, and the pure functions that fill them.

Each exportable dataset has a :class:`DatasetSchema`: an ordered tuple of typed, documented
:class:`Column` objects and the natural key a loader upserts on. :func:`flatten` turns one
CoinStats JSON item into one flat row (a ``dict`` whose keys are exactly
``schema.column_names()``, in order); :func:`iter_rows` does that for a whole hook answer.

==================  =========================================================  ==================================
dataset             one row per                                                key
==================  =========================================================  ==================================
``coins``           holding (GET /portfolio/coins item)                        portfolio_id, coin_id
``value``           extraction of GET /portfolio/value                         portfolio_id, extracted_at, currency
``chart``           chart point ``[ts_ms, usd, btc, eth]``                     portfolio_id, timestamp
``transactions``    transaction (GET /portfolio/transactions item)             portfolio_id, row_key
``defi``            asset of a DeFi investment (GET /portfolio/defi)           portfolio_id, protocol_id, chain,
                                                                               investment_id, asset_index
``snapshot_items``  coin balance of a daily snapshot                           portfolio_id, date, symbol
``pl_history``      point of GET /portfolio/pl/history                         portfolio_id, timestamp, currency
==================  =========================================================  ==================================

Every schema starts with ``portfolio_id`` and ``extracted_at``; ``transactions`` has ``row_key``
third (see :func:`transaction_row_key`: CoinStats transactions carry no id).

Value conventions (the contract writers and warehouses rely on):

* ``decimal`` columns hold :class:`decimal.Decimal`, built from the JSON number with
  ``Decimal(str(x))``. ``str`` of a float is its shortest round-trip text, i.e. the digits
  CoinStats sent, so ``0.1`` stays ``Decimal("0.1")`` instead of
  ``0.1000000000000000055511151231257827``; warehouses get exact NUMERIC values. Derived
  amounts (``value_usd = count * price_usd``) are multiplied exactly, without the 28-digit
  rounding of the default decimal context. The scale varies (prices of 1e-10 BTC exist), so a
  SQL writer must choose its NUMERIC precision/scale. NaN and infinities become ``None``.
  Text renderings (:func:`to_jsonable`, for CSV/JSONL) write plain digits, never an exponent.
* ``timestamp`` columns hold timezone-aware UTC :class:`datetime.datetime`. Numbers are epoch
  milliseconds (CoinStats charts document seconds but send 13-digit ms; values below 1e11 are
  taken as seconds), strings are ISO-8601 (a trailing ``Z`` is accepted; naive means UTC).
* ``integer`` is ``int``, ``boolean`` is ``bool``, ``string`` is ``str``.
* A missing or malformed optional field gives ``None``, never ``KeyError``. Key columns and the
  columns declared not-null are never ``None``: an item without them raises
  :class:`~airflow_provider_coinstats.exceptions.CoinStatsValidationError`, because a row that
  cannot be keyed cannot be loaded.
* Rows never contain dicts or lists: nested parts are flattened into named columns, lists are
  counted or joined.

The module is pure (standard library plus this provider's exceptions): operator modules import it
at DAG-parse time.

Example::

    hook = CoinStatsHook()
    now = datetime.now(UTC)
    rows = list(iter_rows("coins", hook.get_portfolio_coins(pid), portfolio_id=pid, extracted_at=now))
    rows[0]["price_usd"]          # Decimal('95120.0')
    to_jsonable(rows[0])["extracted_at"]  # '2026-01-01T00:00:00Z'
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from airflow_provider_coinstats.exceptions import CoinStatsValidationError

ColumnType = Literal["string", "decimal", "integer", "boolean", "timestamp"]

#: The Python type every column type maps to (``None`` aside).
PYTHON_TYPES: Final[Mapping[str, type]] = MappingProxyType(
    {"string": str, "decimal": Decimal, "integer": int, "boolean": bool, "timestamp": datetime}
)


_COLUMN_TYPE_NAMES: Final = frozenset(get_args(ColumnType))


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

    def __post_init__(self) -> None:
        if self.type not in _COLUMN_TYPE_NAMES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")


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


def _col(name: str, type_: ColumnType, description: str, *, nullable: bool = True) -> Column:
    return Column(name=name, type=type_, nullable=nullable, description=description)


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

#: (JSON period key, column suffix, wording) of the PortfolioItem profit/average maps.
_PERIODS: Final = (
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
    _col("price_usd", "decimal", "Current price in USD (price.USD)."),
    _col("price_btc", "decimal", "Current price in BTC (price.BTC)."),
    _col("price_eth", "decimal", "Current price in ETH (price.ETH)."),
    _col("value_usd", "decimal", "Holding value in USD: count x price_usd, multiplied exactly."),
    _col("price_change_1h_percent", "decimal", "Market price change over the last hour, percent."),
    _col("price_change_24h_percent", "decimal", "Market price change over the last 24 hours, percent."),
    _col("price_change_7d_percent", "decimal", "Market price change over the last 7 days, percent."),
    _col("volume_usd", "decimal", "The coin's market trading volume in USD as CoinStats reports it (coin.volume)."),
    *(
        _col(f"profit_{suffix}_usd", "decimal", f"Profit in USD, {words} (profit.{key}.USD).")
        for key, suffix, words in _PERIODS
    ),
    *(
        _col(
            f"profit_percent_{suffix}_usd",
            "decimal",
            f"Profit percent in USD terms, {words} (profitPercent.{key}.USD).",
        )
        for key, suffix, words in _PERIODS
    ),
    _col("average_buy_all_time_usd", "decimal", "Average buy price in USD over all time (averageBuy.allTime.USD)."),
    _col("average_buy_last_trade_usd", "decimal", "Buy price in USD of the last trade (averageBuy.lastTrade.USD)."),
    _col(
        "average_sell_all_time_usd",
        "decimal",
        "Average sell price in USD over all time; CoinStats sends 0 if never sold.",
    ),
    _col("average_sell_last_trade_usd", "decimal", "Sell price in USD of the last trade (averageSell.lastTrade.USD)."),
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
    _col("value_btc", "decimal", "Portfolio value in BTC at that time."),
    _col("value_eth", "decimal", "Portfolio value in ETH at that time."),
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
    _col("fee_price", "decimal", "Fee coin price at the transaction date, in currency (fee.price)."),
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
    _col("asset_price_usd", "decimal", "Asset price in USD (price.USD)."),
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
    _col("price_per_unit", "decimal", "Coin price that day, USD; null where CoinStats has no price (it sends 0)."),
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


# --------------------------------------------------------------------------- value conversion

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Exact arithmetic: the product of two JSON numbers never needs more digits than this, whereas the
# default context would round to 28 significant digits.
_EXACT: Final = Context(prec=400)
# Epoch numbers below this are seconds (up to year 5138), above it milliseconds (after 1973-03).
_MS_THRESHOLD: Final = 1e11


# ``type(x) is dict`` first: JSON answers are plain dicts, and the ABC check costs several times more.


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if type(obj) is not dict and not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _mapping(obj: Any) -> Mapping[str, Any]:
    return obj if type(obj) is dict or isinstance(obj, Mapping) else {}


def _list(obj: Any) -> list[Any]:
    return list(obj) if isinstance(obj, list | tuple) else []


def _dec(value: Any) -> Decimal | None:
    if type(value) is float:  # the common case, first
        return Decimal(repr(value)) if math.isfinite(value) else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return result if result.is_finite() else None


def _mul(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else _EXACT.multiply(a, b)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = _dec(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


#: One encoder for every call: json.dumps with options builds a new encoder each time.
_CANONICAL_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _canonical_json(value: Any) -> str:
    return _CANONICAL_ENCODER.encode(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _canonical_json(value)


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if len(text) >= 10 and text[4] == "-":  # YYYY-MM-DD...: skip the Decimal parse that would fail
            try:
                return _ts(datetime.fromisoformat(text))
            except ValueError:
                return None
        number = _dec(text)
        if number is None:
            try:
                return _ts(datetime.fromisoformat(text))
            except ValueError:
                return None
        value = number
    if isinstance(value, int | float | Decimal):
        number_f = float(value)
        if not math.isfinite(number_f):
            return None
        ms = number_f if abs(number_f) >= _MS_THRESHOLD else number_f * 1000
        try:
            return _EPOCH + timedelta(milliseconds=ms)
        except OverflowError:
            return None
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class DefiPosition:
    """One asset of one investment of a GET /portfolio/defi answer: the item a ``defi`` row is made from.

    ``asset`` is ``None`` (and ``asset_index`` 0) for an investment that lists no assets, so its
    value still gets a row. Build them with :func:`defi_positions`.

    Example::

        positions = defi_positions(hook.get_portfolio_defi(pid))
        flatten("defi", positions[0], portfolio_id=pid, extracted_at=now)
    """

    protocol: Mapping[str, Any]
    investment: Mapping[str, Any]
    asset: Mapping[str, Any] | None
    asset_index: int


@dataclass(frozen=True)
class SnapshotBalance:
    """One coin balance of one daily snapshot: the item a ``snapshot_items`` row is made from.

    Build them with :func:`snapshot_balances`.

    Example::

        for snapshot in hook.iter_portfolio_snapshot_items(pid):
            for balance in snapshot_balances(snapshot):
                flatten("snapshot_items", balance, portfolio_id=pid, extracted_at=now)
    """

    snapshot: Mapping[str, Any]
    balance: Mapping[str, Any]


def defi_positions(payload: Any) -> list[DefiPosition]:
    """Split a GET /portfolio/defi answer (``{totalAssets, protocols}``) into per-asset records.

    Protocols without investments give no record (they hold nothing to report).

    Example::

        defi_positions({"protocols": [{"id": "lido", "investments": [{"id": "st", "assets": [a]}]}]})
        # -> [DefiPosition(protocol={...}, investment={...}, asset=a, asset_index=0)]
    """
    out: list[DefiPosition] = []
    for protocol in _list(_get(payload, "protocols")):
        protocol_map = _mapping(protocol)
        for investment in _list(protocol_map.get("investments")):
            investment_map = _mapping(investment)
            assets = [_mapping(a) for a in _list(investment_map.get("assets"))]
            if not assets:
                out.append(DefiPosition(protocol_map, investment_map, None, 0))
            out.extend(DefiPosition(protocol_map, investment_map, a, i) for i, a in enumerate(assets))
    return out


def snapshot_balances(item: Any) -> list[SnapshotBalance]:
    """Split one GET /portfolio/snapshot/items item into per-coin records.

    A day with no coin balances gives no record.

    Example::

        snapshot_balances({"date": "2025-01-01T00:00:00.000Z", "coinBalances": [b1, b2]})
        # -> [SnapshotBalance(snapshot={...}, balance=b1), SnapshotBalance(snapshot={...}, balance=b2)]
    """
    snapshot = _mapping(item)
    return [SnapshotBalance(snapshot, _mapping(b)) for b in _list(snapshot.get("coinBalances"))]


# --------------------------------------------------------------------------- transaction row key


def _key_number(value: Any) -> str | None:
    number = _dec(value)
    if number is None:
        return None if value is None else _text(value)
    if number.is_zero():
        return "0"  # 0, 0.0, -0.0 and 0E-8 are the same quantity
    return format(number.normalize(_EXACT), "f")


def _key_text(value: Any) -> str | None:
    text = _text(value)
    # EVM addresses and hashes are case-insensitive hex; other encodings (base58) are not.
    if text is not None and text[:2].lower() == "0x":
        return text.lower()
    return text


def _coin_id(coin: Any) -> Any:
    """``identifier`` of a CoinDto; wallet-style payloads name it ``id``."""
    coin_map = _mapping(coin)
    identifier = coin_map.get("identifier")
    return identifier if identifier is not None else coin_map.get("id")


def _key_coin(coin: Any) -> str | None:
    return _key_text(_coin_id(coin))


def _key_hash(value: Any) -> str | None:
    return _key_text(value.get("id") if isinstance(value, Mapping) else value)


#: Identifier-like fields of a transfer item that are kept in the row key when present.
_TRANSFER_ID_FIELDS: Final = ("hash", "txHash", "id")


def transaction_row_key(item: Mapping[str, Any]) -> str:
    """Deterministic id of a CoinStats transaction item, which carries no id of its own.

    The key is the first 32 hex characters (128 bits) of the SHA-256 of a canonical JSON
    (sorted keys, no spaces) of these fields, and only these:

    * ``date`` (parsed; rendered as UTC ISO-8601 so ``Z`` and ``+00:00`` agree),
    * ``transactionType``,
    * ``coinData.identifier`` and ``coinData.count``,
    * ``fee.count`` and ``fee.coin.identifier``,
    * ``hash.id`` (or ``hash`` when it is a string), present on wallet-style items only,
    * for every transfer, ``transferType`` and for each of its items ``coin.identifier``,
      ``count``, ``fromAddress``, ``toAddress`` and, when present, ``hash``, ``txHash``, ``id``.

    Transfers, and items within a transfer, are sorted, so the order CoinStats lists them in does
    not matter. Numbers are compared by value (``5``, ``5.0`` and ``"5.00"`` agree); ``0x`` hex
    strings are lower-cased; a coin's ``id`` stands in for a missing ``identifier``; missing fields
    count as ``null``.

    Left out on purpose, because they change while the transaction does not: ``totalWorth``,
    ``currentValue``, ``profitLoss``, prices, coin market data (rank, price changes, volume), the
    portfolio's name and icon and the note. Every amount used is a coin quantity, not a value, so
    the key is also the same whatever ``currency`` the transactions were read in.

    Two items that agree on every field above (same time to the millisecond, same coins, amounts,
    fee and addresses) get the same key; they describe the same movement.

    Example::

        transaction_row_key({"date": "2025-08-28T08:35:50.384Z", "transactionType": "Received",
                             "coinData": {"identifier": "ethereum", "count": 0.5}})
        # -> a 32-character lower-case hex string, identical on every run
    """
    if not isinstance(item, Mapping):
        raise CoinStatsValidationError("item", "a transaction must be a JSON object")
    moment = _ts(item.get("date"))
    transfers = []
    for transfer in _list(item.get("transfers")):
        entries = []
        for entry in _list(_get(transfer, "items")):
            entry_map = _mapping(entry)
            stable = {
                "coin": _key_coin(entry_map.get("coin")),
                "count": _key_number(entry_map.get("count")),
                "from": _key_text(entry_map.get("fromAddress")),
                "to": _key_text(entry_map.get("toAddress")),
            }
            for name in _TRANSFER_ID_FIELDS:
                if entry_map.get(name) is not None:
                    stable[name] = _key_hash(entry_map[name])
            entries.append(stable)
        entries.sort(key=_canonical_json)
        transfers.append({"type": _key_text(_get(transfer, "transferType")), "items": entries})
    transfers.sort(key=_canonical_json)
    canonical = {
        "date": _iso(moment) if moment is not None else _key_text(item.get("date")),
        "type": _key_text(item.get("transactionType")),
        "coin": _key_text(_get(item, "coinData", "identifier")),
        "count": _key_number(_get(item, "coinData", "count")),
        "fee_count": _key_number(_get(item, "fee", "count")),
        "fee_coin": _key_coin(_get(item, "fee", "coin")),
        "hash": _key_hash(item.get("hash")),
        "transfers": transfers,
    }
    return hashlib.sha256(_canonical_json(canonical).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- flatteners


@dataclass(frozen=True)
class _Context:
    portfolio_id: str
    extracted_at: datetime
    currency: str


def _coins(item: Any, ctx: _Context) -> dict[str, Any]:
    coin = _mapping(item.get("coin"))
    count = _dec(item.get("count"))
    price_usd = _dec(_get(item, "price", "USD"))
    row: dict[str, Any] = {
        "coin_id": _text(coin.get("identifier")),
        "symbol": _text(coin.get("symbol")),
        "name": _text(coin.get("name")),
        "rank": _int(coin.get("rank")),
        "is_fiat": _bool(coin.get("isFiat")),
        "is_fake": _bool(coin.get("isFake")),
        "count": count,
        "price_usd": price_usd,
        "price_btc": _dec(_get(item, "price", "BTC")),
        "price_eth": _dec(_get(item, "price", "ETH")),
        "value_usd": _mul(count, price_usd),
        "price_change_1h_percent": _dec(coin.get("priceChange1h")),
        "price_change_24h_percent": _dec(coin.get("priceChange24h")),
        "price_change_7d_percent": _dec(coin.get("priceChange7d")),
        "volume_usd": _dec(coin.get("volume")),
        "average_buy_all_time_usd": _dec(_get(item, "averageBuy", "allTime", "USD")),
        "average_buy_last_trade_usd": _dec(_get(item, "averageBuy", "lastTrade", "USD")),
        "average_sell_all_time_usd": _dec(_get(item, "averageSell", "allTime", "USD")),
        "average_sell_last_trade_usd": _dec(_get(item, "averageSell", "lastTrade", "USD")),
        "liquidity_score": _dec(item.get("liquidityScore")),
        "volatility_score": _dec(item.get("volatilityScore")),
        "market_cap_score": _dec(item.get("marketCapScore")),
        "risk_score": _dec(item.get("riskScore")),
        "avg_change": _dec(item.get("avgChange")),
    }
    for key, suffix, _ in _PERIODS:
        row[f"profit_{suffix}_usd"] = _dec(_get(item, "profit", key, "USD"))
        row[f"profit_percent_{suffix}_usd"] = _dec(_get(item, "profitPercent", key, "USD"))
    return row


def _value(item: Any, ctx: _Context) -> dict[str, Any]:
    fields = {
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
    return {"currency": ctx.currency, **{column: _dec(item.get(key)) for column, key in fields.items()}}


def _chart(item: Any, ctx: _Context) -> dict[str, Any]:
    # Older answers sent [timestamp_ms, value] pairs: the missing currencies become None.
    point = [*item[:4], None, None, None]
    return {
        "timestamp": _ts(point[0]),
        "value_usd": _dec(point[1]),
        "value_btc": _dec(point[2]),
        "value_eth": _dec(point[3]),
    }


def _first_transfer_item(item: Any, transfer_type: str) -> Mapping[str, Any]:
    for transfer in _list(item.get("transfers")):
        if _get(transfer, "transferType") == transfer_type:
            entries = _list(_get(transfer, "items"))
            if entries:
                return _mapping(entries[0])
    return {}


def _transactions(item: Any, ctx: _Context) -> dict[str, Any]:
    coin_data = _mapping(item.get("coinData"))
    profit_loss = _mapping(item.get("profitLoss"))
    fee = _mapping(item.get("fee"))
    fee_coin = _mapping(fee.get("coin"))
    sent = _first_transfer_item(item, "Sent")
    received = _first_transfer_item(item, "Received")
    current_value = profit_loss.get("currentValue")
    return {
        "row_key": transaction_row_key(item),
        "currency": ctx.currency,
        "date": _ts(item.get("date")),
        "transaction_type": _text(item.get("transactionType")),
        "coin_id": _text(coin_data.get("identifier")),
        "symbol": _text(coin_data.get("symbol")),
        "count": _dec(coin_data.get("count")),
        "total_worth": _dec(coin_data.get("totalWorth")),
        "current_value": _dec(current_value if current_value is not None else coin_data.get("currentValue")),
        "profit": _dec(profit_loss.get("profit")),
        "profit_percent": _dec(profit_loss.get("profitPercent")),
        "fee_coin_id": _text(_coin_id(fee_coin)),
        "fee_symbol": _text(fee_coin.get("symbol")),
        "fee_count": _dec(fee.get("count")),
        "fee_price": _dec(fee.get("price")),
        "fee_total_worth": _dec(fee.get("totalWorth")),
        "transfer_count": sum(len(_list(_get(t, "items"))) for t in _list(item.get("transfers"))),
        "sent_coin_id": _text(_coin_id(sent.get("coin"))),
        "sent_count": _dec(sent.get("count")),
        "received_coin_id": _text(_coin_id(received.get("coin"))),
        "received_count": _dec(received.get("count")),
        "portfolio_name": _text(_get(item, "portfolioInfo", "name")),
        "note": _text(item.get("note")),
    }


def _defi(item: DefiPosition, ctx: _Context) -> dict[str, Any]:
    protocol, investment = item.protocol, item.investment
    asset = _mapping(item.asset)
    amount = _dec(asset.get("amount"))
    price_usd = _dec(_get(asset, "price", "USD"))
    symbols = _list(investment.get("symbols"))
    chain = protocol.get("chain") or _get(protocol, "blockchain", "name")
    investment_id = investment.get("id") or investment.get("name")
    return {
        "protocol_id": _text(protocol.get("id")),
        "chain": _text(chain),
        "investment_id": _text(investment_id),
        "asset_index": item.asset_index,
        "protocol_name": _text(protocol.get("name")),
        "protocol_url": _text(protocol.get("url")),
        "blockchain_name": _text(_get(protocol, "blockchain", "name")),
        "wallet_address": _text(protocol.get("walletAddress")),
        "protocol_value_usd": _dec(_get(protocol, "totalValue", "USD")),
        "investment_name": _text(investment.get("name")),
        "investment_value_usd": _dec(_get(investment, "value", "USD")),
        "investment_symbols": ",".join(str(s) for s in symbols) if symbols else None,
        "pool_address": _text(investment.get("poolAddress")),
        "pool_project_id": _text(investment.get("poolProjectId")),
        "health_rate": _dec(investment.get("healthRate")),
        "debt_ratio": _dec(investment.get("debtRatio")),
        "unlock_at": _ts(investment.get("unlockAt")),
        "end_at": _ts(investment.get("endAt")),
        "is_proxy": _bool(investment.get("isProxy")),
        "asset_title": _text(asset.get("title")),
        "asset_coin_id": _text(asset.get("coinId")),
        "asset_symbol": _text(asset.get("symbol")),
        "asset_address": _text(asset.get("address")),
        "asset_amount": amount,
        "asset_price_usd": price_usd,
        "asset_value_usd": _mul(amount, price_usd),
        "asset_danger": _bool(asset.get("danger")),
    }


def _snapshot_items(item: SnapshotBalance, ctx: _Context) -> dict[str, Any]:
    snapshot, balance = item.snapshot, item.balance
    price = _dec(balance.get("pricePerUnit"))
    # CoinStats sends 0 for "no price data"; a real price of exactly 0 does not exist.
    has_price = price is not None and not price.is_zero()
    return {
        "date": _ts(snapshot.get("date")),
        "symbol": _text(balance.get("symbol")),
        "quantity": _dec(balance.get("quantity")),
        "quantity_change": _dec(balance.get("quantityChange")),
        "balance": _dec(balance.get("balance")),
        "balance_change": _dec(balance.get("balanceChange")),
        "price_per_unit": price if has_price else None,
        "price_percent_change": _dec(balance.get("pricePercentChange")) if has_price else None,
        "total_balance": _dec(snapshot.get("totalBalance")),
        "total_balance_change": _dec(snapshot.get("totalBalanceChange")),
        "total_balance_percent_change": _dec(snapshot.get("totalBalancePercentChange")),
    }


def _pl_history(item: Any, ctx: _Context) -> dict[str, Any]:
    moment = item.get("date") if item.get("date") is not None else item.get("timestamp")
    return {
        "timestamp": _ts(moment),
        "currency": ctx.currency,
        "profit_loss": _dec(item.get("profitLoss")),
        "profit_loss_percent": _dec(item.get("profitLossPercent")),
        "value": _dec(item.get("value")),
        "net_flow": _dec(item.get("netFlow")),
    }


def _is_point(item: Any) -> bool:
    return isinstance(item, Sequence) and not isinstance(item, str | bytes) and len(item) >= 1


#: dataset -> (accepts item?, what the item must be, flattener)
_FLATTENERS: Final[Mapping[str, tuple[Callable[[Any], bool], str, Callable[[Any, _Context], dict[str, Any]]]]] = {
    "coins": (lambda i: isinstance(i, Mapping), "a JSON object", _coins),
    "value": (lambda i: isinstance(i, Mapping), "a JSON object", _value),
    "chart": (_is_point, "a [timestamp, usd, btc, eth] list", _chart),
    "transactions": (lambda i: isinstance(i, Mapping), "a JSON object", _transactions),
    "defi": (lambda i: isinstance(i, DefiPosition), "a DefiPosition (see defi_positions)", _defi),
    "snapshot_items": (
        lambda i: isinstance(i, SnapshotBalance),
        "a SnapshotBalance (see snapshot_balances)",
        _snapshot_items,
    ),
    "pl_history": (lambda i: isinstance(i, Mapping), "a JSON object", _pl_history),
}


def _context(portfolio_id: Any, extracted_at: Any, currency: Any) -> _Context:
    if not isinstance(portfolio_id, str) or not portfolio_id:
        raise CoinStatsValidationError("portfolio_id", "must be a non-empty string")
    if not isinstance(extracted_at, datetime) or extracted_at.utcoffset() is None:
        raise CoinStatsValidationError("extracted_at", "must be a timezone-aware datetime")
    if not isinstance(currency, str) or not currency.strip():
        raise CoinStatsValidationError("currency", "must be a non-empty string such as USD")
    return _Context(portfolio_id, extracted_at.astimezone(UTC), currency.strip().upper())


def _flatten(schema: DatasetSchema, item: Any, ctx: _Context) -> dict[str, Any]:
    accepts, expected, flattener = _FLATTENERS[schema.name]
    if not accepts(item):
        raise CoinStatsValidationError("item", f"a {schema.name} item must be {expected}, got {type(item).__name__}")
    values = flattener(item, ctx)
    values["portfolio_id"] = ctx.portfolio_id
    values["extracted_at"] = ctx.extracted_at
    row = {name: values.get(name) for name in schema.column_names()}
    for column in schema.columns:
        if row[column.name] is None and not column.nullable:
            raise CoinStatsValidationError("item", f"{schema.name} item has no usable value for {column.name}")
    return row


def flatten(
    dataset: str, item: Any, *, portfolio_id: str, extracted_at: datetime, currency: str = "USD"
) -> dict[str, Any]:
    """One flat row of ``dataset`` from one CoinStats item; keys are ``get_schema(dataset).column_names()``.

    ``item`` is what the hook yields per record: a coins/transactions/pl_history JSON object, the
    whole /portfolio/value object, a chart point list, a :class:`DefiPosition` or a
    :class:`SnapshotBalance`. ``currency`` fills the ``currency`` column of ``value``,
    ``transactions`` and ``pl_history`` and must be the currency the data was requested in; other
    datasets ignore it (their amount columns name their currency).

    Example::

        row = flatten("chart", [1755864000000, 1234.5, 0.012, 0.35], portfolio_id="p1",
                      extracted_at=datetime(2026, 1, 1, tzinfo=UTC))
        row["timestamp"], row["value_usd"]  # (datetime(2025, 8, 22, 12, 0, tzinfo=UTC), Decimal('1234.5'))
    """
    return _flatten(get_schema(dataset), item, _context(portfolio_id, extracted_at, currency))


def flatten_value(
    payload: Mapping[str, Any], *, portfolio_id: str, extracted_at: datetime, currency: str = "USD"
) -> dict[str, Any]:
    """The single ``value`` row of one GET /portfolio/value answer.

    Example::

        flatten_value(hook.get_portfolio_value(pid, "EUR"), portfolio_id=pid, extracted_at=now, currency="EUR")
    """
    return flatten("value", payload, portfolio_id=portfolio_id, extracted_at=extracted_at, currency=currency)


def _unwrap(payload: Any, keys: tuple[str, ...]) -> Iterable[Any]:
    if isinstance(payload, Mapping):
        for key in keys:
            if isinstance(payload.get(key), list):
                return payload[key]  # type: ignore[no-any-return]
        raise CoinStatsValidationError("payload", f"expected a list or an object with {' or '.join(keys)}")
    if isinstance(payload, str | bytes) or not isinstance(payload, Iterable):
        raise CoinStatsValidationError("payload", "expected a list of items")
    return payload


def iter_records(dataset: str, payload: Any) -> Iterator[Any]:
    """The items :func:`flatten` takes, from what the hook returns for ``dataset``.

    ``payload`` is the hook's answer: a list or iterator of items (coins, chart, transactions,
    snapshot_items, pl_history; a raw ``{"result": [...]}``/``{"data": [...]}`` envelope works
    too) or one object (value, defi). Iterators are consumed lazily, so a 100,000-transaction
    portfolio never sits in memory.

    Example::

        list(iter_records("snapshot_items", hook.iter_portfolio_snapshot_items(pid)))  # SnapshotBalance, ...
    """
    get_schema(dataset)
    if dataset == "value":
        yield payload
    elif dataset == "defi":
        yield from defi_positions(payload)
    elif dataset == "snapshot_items":
        for item in _unwrap(payload, ("result", "data")):
            yield from snapshot_balances(item)
    else:
        yield from _unwrap(payload, ("result", "data"))


def iter_rows(
    dataset: str, payload: Any, *, portfolio_id: str, extracted_at: datetime, currency: str = "USD"
) -> Iterator[dict[str, Any]]:
    """Flat rows of ``dataset`` from a whole hook answer (see :func:`iter_records` and :func:`flatten`).

    Example::

        now = datetime.now(UTC)
        for row in iter_rows("transactions", hook.iter_portfolio_transactions(pid), portfolio_id=pid,
                             extracted_at=now):
            writer.write(to_jsonable(row))
    """
    schema = get_schema(dataset)
    ctx = _context(portfolio_id, extracted_at, currency)
    for item in iter_records(dataset, payload):
        yield _flatten(schema, item, ctx)


def to_jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` that ``json.dumps`` accepts, for CSV/JSONL writers.

    ``Decimal`` becomes a plain digit string without exponent (``Decimal("1E-10")`` ->
    ``"0.0000000001"``), so no precision is lost to JSON floats; ``datetime`` becomes UTC
    ISO-8601 ending in ``Z``. Strings, ints, bools and ``None`` are kept.

    Example::

        to_jsonable({"price_usd": Decimal("1.112E-5"), "extracted_at": datetime(2026, 1, 1, tzinfo=UTC)})
        # -> {'price_usd': '0.00001112', 'extracted_at': '2026-01-01T00:00:00Z'}
    """
    out: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, Decimal):
            out[name] = format(value, "f")
        elif isinstance(value, datetime):
            out[name] = _iso(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
        else:
            out[name] = value
    return out
