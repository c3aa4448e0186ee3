"""Deterministic, realistic fake CoinStats data.

Everything here is a pure function of ``(seed, portfolioId, index/timestamp)`` plus the
portfolio's connection and transaction counts, so repeated calls and overlapping pages always
agree. "Now" for the fake data is the fixed instant :data:`DATA_AS_OF` (not the wall clock), so
a test run next year sees the same numbers; transactions, charts and P&L windows end there.

Transactions are computed lazily from their index: page N of a 100,000-transaction portfolio is
O(limit) work (dates are strictly decreasing in the index, so date filters become an index range
found by bisection, and the coin of index ``i`` has a closed-form inverse for ``coinId`` filters).

A portfolio's transactions come in two runs. The *base* history (``transaction_count - appended``
transactions, spaced over up to :data:`HISTORY_MS` and ending at least an hour before
:data:`DATA_AS_OF`) and, newer than all of it, the *appended* transactions added by
``SandboxState.append_transactions``, numbered by arrival (0 = first appended) and packed into
that last hour. Each is generated from its number within its own run, so appending never changes
an existing transaction, only its position in the newest-first listing.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

#: The sandbox's "now" for all generated data (2026-01-01T00:00:00Z).
DATA_AS_OF: Final = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF_MS: Final = int(DATA_AS_OF.timestamp() * 1000)

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
#: How far back a portfolio's history reaches (transactions and the "all" chart/P&L range).
HISTORY_MS: Final = 3 * 365 * DAY_MS
#: Average spacing of transactions in small portfolios; large ones are packed into HISTORY_MS.
TX_SPACING_MS: Final = 6 * DAY_MS
#: Spacing of appended transactions. Their dates must not depend on how many follow them, so
#: they cannot be spread to fit a count; 100 ms leaves room for MAX_APPENDED of them.
APPEND_STEP_MS: Final = 100
#: Appended transactions per portfolio that fit strictly between the newest possible base
#: transaction (AS_OF_MS - HOUR_MS) and AS_OF_MS.
MAX_APPENDED: Final = (HOUR_MS - 1) // APPEND_STEP_MS

ICON_BASE: Final = "https://static.coinstats.app"

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------- deterministic noise


def _seed_int(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _unit(*parts: object) -> float:
    """A uniform float in [0, 1) that depends only on ``parts``."""
    return _seed_int(*parts) / 2**64


def _rng(*parts: object) -> random.Random:
    return random.Random(_seed_int(*parts))


def _r(value: float, digits: int = 10) -> float:
    """Round to significant digits: prices span 1e-6 (PEPE) to 1e5 (BTC)."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    return float(f"{value:.{digits}g}")


def _money(value: float) -> float:
    return round(value, 2) if abs(value) >= 1 else _r(value, 6)


# --------------------------------------------------------------------------- market


@dataclass(frozen=True)
class Coin:
    identifier: str
    symbol: str
    name: str
    rank: int
    price: float  # USD at DATA_AS_OF
    volume: float
    stable: bool = False


_COIN_ROWS: Final[tuple[Coin, ...]] = (
    Coin("bitcoin", "BTC", "Bitcoin", 1, 95_120.0, 38.2e9),
    Coin("ethereum", "ETH", "Ethereum", 2, 3_412.5, 21.4e9),
    Coin("tether", "USDT", "Tether", 3, 1.0, 61.0e9, stable=True),
    Coin("ripple", "XRP", "XRP", 4, 2.31, 4.1e9),
    Coin("binance-coin", "BNB", "BNB", 5, 642.8, 1.9e9),
    Coin("solana", "SOL", "Solana", 6, 187.4, 4.6e9),
    Coin("usd-coin", "USDC", "USDC", 7, 1.0, 8.7e9, stable=True),
    Coin("dogecoin", "DOGE", "Dogecoin", 8, 0.3215, 2.2e9),
    Coin("cardano", "ADA", "Cardano", 9, 0.8512, 0.9e9),
    Coin("tron", "TRX", "TRON", 10, 0.2437, 0.6e9),
    Coin("chainlink", "LINK", "Chainlink", 12, 19.84, 0.7e9),
    Coin("avalanche-2", "AVAX", "Avalanche", 13, 36.12, 0.5e9),
    Coin("shiba-inu", "SHIB", "Shiba Inu", 15, 0.00002105, 0.6e9),
    Coin("wrapped-bitcoin", "WBTC", "Wrapped Bitcoin", 16, 95_031.0, 0.3e9),
    Coin("polkadot", "DOT", "Polkadot", 18, 6.52, 0.3e9),
    Coin("dai", "DAI", "Dai", 20, 1.0, 0.2e9, stable=True),
    Coin("uniswap", "UNI", "Uniswap", 22, 12.07, 0.3e9),
    Coin("pepe", "PEPE", "Pepe", 24, 0.00001112, 1.1e9),
    Coin("matic-network", "POL", "POL (ex-MATIC)", 28, 0.4521, 0.2e9),
    Coin("aave", "AAVE", "Aave", 30, 281.6, 0.4e9),
    Coin("arbitrum", "ARB", "Arbitrum", 45, 0.7514, 0.3e9),
    Coin("optimism", "OP", "Optimism", 50, 1.912, 0.2e9),
    Coin("maker", "MKR", "Maker", 55, 1_502.0, 0.08e9),
    Coin("bonk", "BONK", "Bonk", 58, 0.00002531, 0.4e9),
    Coin("lido-dao", "LDO", "Lido DAO", 60, 1.634, 0.1e9),
    Coin("jupiter-exchange-solana", "JUP", "Jupiter", 65, 0.9034, 0.1e9),
    Coin("dogwifcoin", "WIF", "dogwifhat", 70, 1.812, 0.5e9),
    Coin("bittorrent", "BTT", "BitTorrent", 80, 0.00000091, 0.03e9),
    Coin("raydium", "RAY", "Raydium", 90, 4.215, 0.09e9),
    Coin("ordinals", "ORDI", "ORDI", 95, 28.4, 0.2e9),
    Coin("sun-token", "SUN", "Sun Token", 200, 0.0203, 0.01e9),
)
COINS: Final[dict[str, Coin]] = {c.identifier: c for c in _COIN_ROWS}


def coin_icon(coin: Coin) -> str:
    return f"{ICON_BASE}/coins/{coin.identifier}.png"


def price_at(coin: Coin, t_ms: int) -> float:
    """USD price of ``coin`` at ``t_ms``; equals ``coin.price`` at DATA_AS_OF, smooth elsewhere."""
    days = (t_ms - AS_OF_MS) / DAY_MS
    phase = 2 * math.pi * _unit("phase", coin.identifier)
    if coin.stable:
        return coin.price * (1 + 0.0008 * (math.sin(days / 3 + phase) - math.sin(phase)))
    slow = math.sin(2 * math.pi * days / 97 + phase) - math.sin(phase)
    fast = math.sin(2 * math.pi * days / 11 + 2 * phase) - math.sin(2 * phase)
    wiggle = math.sin(2 * math.pi * days * 1.7 + 3 * phase) - math.sin(3 * phase)
    return coin.price * (1 + 0.18 * slow + 0.05 * fast + 0.01 * wiggle)


def _three(usd: float, t_ms: int = AS_OF_MS) -> JsonDict:
    """A value as CoinStats' ``{USD, BTC, ETH}`` map, converted at the prices of ``t_ms``."""
    return {
        "USD": _r(usd),
        "BTC": _r(usd / price_at(COINS["bitcoin"], t_ms)),
        "ETH": _r(usd / price_at(COINS["ethereum"], t_ms)),
    }


def _pct(now: float, then: float) -> float:
    return round((now / then - 1) * 100, 2) if then else 0.0


@functools.cache
def coin_dto(identifier: str) -> JsonDict:
    """CoinDto (current market info) for a coin."""
    coin = COINS[identifier]
    price = coin.price
    return {
        "rank": coin.rank,
        "identifier": coin.identifier,
        "symbol": coin.symbol,
        "name": coin.name,
        "icon": coin_icon(coin),
        "isFake": False,
        "isFiat": False,
        "priceChange1h": _pct(price, price_at(coin, AS_OF_MS - HOUR_MS)),
        "priceChange24h": _pct(price, price_at(coin, AS_OF_MS - DAY_MS)),
        "priceChange7d": _pct(price, price_at(coin, AS_OF_MS - 7 * DAY_MS)),
        "volume": coin.volume,
    }


#: Fiat (and crypto) currencies the ``currency`` parameter accepts: units per 1 USD.
FX: Final[dict[str, float]] = {
    "USD": 1.0,
    "EUR": 0.9231,
    "GBP": 0.7874,
    "JPY": 151.42,
    "CHF": 0.8812,
    "CAD": 1.3685,
    "AUD": 1.5218,
    "INR": 83.47,
    "BRL": 5.102,
    "BTC": 1 / COINS["bitcoin"].price,
    "ETH": 1 / COINS["ethereum"].price,
}


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Chain:
    connection_id: str
    name: str
    chain: str
    family: str  # "evm", "bitcoin", "solana", "tron": drives addresses and token pools
    pool: tuple[str, ...]  # coin identifiers; the first is the native coin
    fee_usd: tuple[float, float]


_EVM_TOKENS = ("tether", "usd-coin", "chainlink", "uniswap", "aave", "dai", "wrapped-bitcoin")

CHAINS: Final[dict[str, Chain]] = {
    c.connection_id: c
    for c in (
        Chain(
            "ethereum",
            "Ethereum",
            "ethereum",
            "evm",
            ("ethereum", *_EVM_TOKENS, "pepe", "shiba-inu", "lido-dao", "maker"),
            (0.4, 14.0),
        ),
        Chain("bitcoin", "Bitcoin", "bitcoin", "bitcoin", ("bitcoin", "ordinals"), (0.5, 12.0)),
        Chain(
            "solana",
            "Solana",
            "solana",
            "solana",
            ("solana", "usd-coin", "tether", "bonk", "jupiter-exchange-solana", "raydium", "dogwifcoin"),
            (0.0005, 0.02),
        ),
        Chain(
            "binancesmartchain",
            "BNB Smart Chain",
            "binance_smart",
            "evm",
            ("binance-coin", "tether", "usd-coin", "ethereum", "cardano", "dogecoin", "ripple", "polkadot"),
            (0.03, 0.6),
        ),
        Chain(
            "polygon-wallet",
            "Polygon",
            "polygon",
            "evm",
            ("matic-network", *_EVM_TOKENS, "ethereum"),
            (0.005, 0.2),
        ),
        Chain("base-wallet", "Base", "base", "evm", ("ethereum", "usd-coin", "dai", "aave"), (0.01, 0.4)),
        Chain(
            "arbitrum-wallet",
            "Arbitrum",
            "arbitrum",
            "evm",
            ("ethereum", "arbitrum", *_EVM_TOKENS),
            (0.01, 0.5),
        ),
        Chain(
            "optimism-wallet",
            "Optimism",
            "optimism",
            "evm",
            ("ethereum", "optimism", *_EVM_TOKENS, "lido-dao"),
            (0.01, 0.5),
        ),
        Chain(
            "avalanche-wallet",
            "Avalanche C-Chain",
            "avalanche",
            "evm",
            ("avalanche-2", "usd-coin", "tether", "aave", "chainlink", "wrapped-bitcoin", "ethereum"),
            (0.02, 1.0),
        ),
        Chain(
            "tron",
            "Tron",
            "tron",
            "tron",
            ("tron", "tether", "usd-coin", "sun-token", "bittorrent"),
            (0.1, 4.0),
        ),
    )
}


@dataclass(frozen=True)
class Exchange:
    connection_id: str
    name: str
    fields: tuple[tuple[str, str], ...]  # (display name, key)


_KEY_SECRET = (("API Key", "apiKey"), ("API Secret", "apiSecret"))
_KEY_SECRET_PASS = (*_KEY_SECRET, ("Passphrase", "passphrase"))

EXCHANGES: Final[dict[str, Exchange]] = {
    e.connection_id: e
    for e in (
        Exchange("binance", "Binance", _KEY_SECRET),
        Exchange("coinbase", "Coinbase", _KEY_SECRET),
        Exchange("kraken", "Kraken", _KEY_SECRET),
        Exchange("bybit", "Bybit", _KEY_SECRET),
        Exchange("okx", "OKX", _KEY_SECRET_PASS),
        Exchange("kucoin", "KuCoin", _KEY_SECRET_PASS),
        Exchange("bitget", "Bitget", _KEY_SECRET_PASS),
        Exchange("bitvavo", "Bitvavo", _KEY_SECRET),
        # Sandbox only: field names Airflow's secrets masker does not recognise as sensitive,
        # for tests that every credential value is hidden whatever its name.
        Exchange(
            "uid-exchange",
            "UID Exchange (sandbox)",
            (("API Key", "apiKey"), ("Private Key", "privateKey"), ("UID", "uid")),
        ),
    )
}

_EXCHANGE_POOL: Final = (
    "bitcoin",
    "ethereum",
    "tether",
    "binance-coin",
    "solana",
    "usd-coin",
    "ripple",
    "dogecoin",
    "cardano",
    "avalanche-2",
    "chainlink",
    "polkadot",
    "shiba-inu",
    "pepe",
    "uniswap",
    "tron",
)


def blockchains() -> list[JsonDict]:
    """GET /wallet/blockchains."""
    return [
        {
            "name": c.name,
            "connectionId": c.connection_id,
            "chain": c.chain,
            "icon": f"{ICON_BASE}/portfolio_images/{c.connection_id}.png",
        }
        for c in CHAINS.values()
    ]


def exchanges() -> list[JsonDict]:
    """GET /exchange/support."""
    return [
        {
            "connectionId": e.connection_id,
            "name": e.name,
            "icon": f"{ICON_BASE}/portfolio_images/{e.connection_id}_dark.png",
            "connectionFields": [{"name": name, "key": key} for name, key in e.fields],
        }
        for e in EXCHANGES.values()
    ]


def is_evm(connection_id: str) -> bool:
    chain = CHAINS.get(connection_id)
    return chain is not None and chain.family == "evm"


def connection_icon(kind: str, connection_id: str) -> str:
    suffix = "_dark" if kind == "exchange" else ""
    return f"{ICON_BASE}/portfolio_images/{connection_id}{suffix}.png"


def default_name(kind: str, connection_id: str, address: str | None) -> str:
    if kind == "exchange":
        return EXCHANGES[connection_id].name
    label = CHAINS[connection_id].name
    if address and len(address) > 12:
        return f"{label} {address[:6]}...{address[-4:]}"
    return f"{label} {address}"


# --------------------------------------------------------------------------- portfolios


@dataclass(frozen=True)
class PortfolioProfile:
    """Everything the generators need to know about one portfolio."""

    seed: int
    portfolio_id: str
    kind: str  # "wallet" | "exchange"
    connection_id: str
    name: str
    #: Every transaction the portfolio lists, the appended ones included.
    transaction_count: int
    address: str | None = None
    #: How many of the newest transactions were appended (see the module docstring).
    appended: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.appended <= self.transaction_count:
            raise ValueError("appended must be between 0 and transaction_count")
        if self.appended > MAX_APPENDED:
            raise ValueError(f"at most {MAX_APPENDED} transactions can be appended")

    @property
    def base_count(self) -> int:
        """Transactions of the base history (the ones not appended)."""
        return self.transaction_count - self.appended

    @property
    def chain(self) -> Chain | None:
        return CHAINS.get(self.connection_id) if self.kind == "wallet" else None

    @property
    def pool(self) -> tuple[str, ...]:
        chain = self.chain
        return chain.pool if chain is not None else _EXCHANGE_POOL

    @property
    def icon(self) -> str:
        return connection_icon(self.kind, self.connection_id)


@dataclass(frozen=True)
class Holding:
    coin: Coin
    count: float
    avg_buy: float
    avg_sell: float  # 0 when the coin was never sold
    last_trade: float
    realized: float  # USD

    @property
    def value(self) -> float:
        return self.count * self.coin.price

    @property
    def cost(self) -> float:
        return self.count * self.avg_buy


def _qty(value: float) -> float:
    return _r(value, 8)


@functools.lru_cache(maxsize=4096)
def holdings(profile: PortfolioProfile) -> tuple[Holding, ...]:
    """6-15 holdings (fewer on chains with few tokens), largest value first."""
    rng = _rng(profile.seed, profile.portfolio_id, "holdings")
    pool = profile.pool
    n = min(len(pool), 6 + rng.randrange(10))
    chosen = [pool[0], *rng.sample(pool[1:], n - 1)]
    out = []
    for identifier in chosen:
        coin = COINS[identifier]
        usd = math.exp(rng.uniform(math.log(40), math.log(30_000)))
        sold = rng.random() < 0.6
        avg_buy = coin.price * (rng.uniform(0.998, 1.002) if coin.stable else rng.uniform(0.55, 1.35))
        avg_sell = coin.price * rng.uniform(0.7, 1.4) if sold else 0.0
        out.append(
            Holding(
                coin=coin,
                count=_qty(usd / coin.price),
                avg_buy=_r(avg_buy),
                avg_sell=_r(avg_sell),
                last_trade=_r(avg_buy * rng.uniform(0.9, 1.1)),
                realized=round(usd * rng.uniform(-0.1, 0.35), 2) if sold else 0.0,
            )
        )
    out.sort(key=lambda h: h.value, reverse=True)
    return tuple(out)


def market_value_usd(profile: PortfolioProfile, t_ms: int) -> float:
    return sum(h.count * price_at(h.coin, t_ms) for h in holdings(profile))


def _risk(coin: Coin) -> JsonDict:
    rng = _rng("risk", coin.identifier)
    liquidity = rng.randint(40, 100) if coin.rank < 30 else rng.randint(10, 70)
    volatility = rng.randint(1, 10) if coin.stable else rng.randint(20, 95)
    market_cap = max(1, 100 - coin.rank)
    return {
        "liquidityScore": liquidity,
        "volatilityScore": volatility,
        "marketCapScore": market_cap,
        "riskScore": round((100 - liquidity + volatility + 100 - market_cap) / 3, 1),
        "avgChange": round(rng.uniform(-3, 3), 2),
    }


def _portfolio_item(h: Holding, include_risk: bool) -> JsonDict:
    coin, count = h.coin, h.count
    price = coin.price
    then = price_at(coin, AS_OF_MS - DAY_MS)
    cost = h.cost or 1.0
    unrealized = count * (price - h.avg_buy)
    hour24 = count * (price - then)
    last_trade = count * (price - h.last_trade)
    all_time = unrealized + h.realized

    def pct(usd: float, base: float) -> JsonDict:
        value = round(usd / base * 100, 2) if base else 0.0
        return {"USD": value, "BTC": value, "ETH": value}

    item: JsonDict = {
        "count": count,
        "coin": coin_dto(coin.identifier),
        "price": _three(price),
        "profit": {
            "allTime": _three(all_time),
            "hour24": _three(hour24),
            "lastTrade": _three(last_trade),
            "unrealized": _three(unrealized),
            "realized": _three(h.realized),
        },
        "profitPercent": {
            "allTime": pct(all_time, cost),
            "hour24": pct(hour24, count * then),
            "lastTrade": pct(last_trade, count * h.last_trade),
            "unrealized": pct(unrealized, cost),
            "realized": pct(h.realized, cost),
        },
        "averageBuy": {
            "allTime": _three(h.avg_buy),
            "hour24": _three(then),
            "lastTrade": _three(h.last_trade),
            "unrealized": _three(h.avg_buy),
        },
        "averageSell": {
            "allTime": _three(h.avg_sell),
            "hour24": _three(0.0),
            "lastTrade": _three(h.avg_sell),
            "unrealized": _three(0.0),
        },
    }
    if include_risk:
        item.update(_risk(coin))
    return item


def portfolio_coins(profile: PortfolioProfile, page: int, limit: int, include_risk: bool) -> list[JsonDict]:
    """GET /portfolio/coins ``result`` for one page."""
    start = (page - 1) * limit
    return [_portfolio_item(h, include_risk) for h in holdings(profile)[start : start + limit]]


def portfolio_value(profile: PortfolioProfile, currency: str) -> JsonDict:
    """GET /portfolio/value: flat totals, consistent with coins and defi."""
    fx = FX[currency]
    items = holdings(profile)
    total = sum(h.value for h in items)
    cost = sum(h.cost for h in items)
    realized = sum(h.realized for h in items)
    unrealized = total - cost
    defi_usd = defi_total_usd(profile)
    total_cost = cost or 1.0
    return {
        "totalValue": _money(total * fx),
        "defiValue": _money(defi_usd * fx),
        "totalCost": _money(cost * fx),
        "unrealizedProfitLoss": _money(unrealized * fx),
        "unrealizedProfitLossPercent": round(unrealized / total_cost * 100, 2),
        "realizedProfitLoss": _money(realized * fx),
        "realizedProfitLossPercent": round(realized / total_cost * 100, 2),
        "allTimeProfitLoss": _money((unrealized + realized) * fx),
        "allTimeProfitLossPercent": round((unrealized + realized) / total_cost * 100, 2),
    }


# --------------------------------------------------------------------------- chart

#: type -> (span, step) in ms; granularity per the CoinStats chart guide.
CHART_WINDOWS: Final[dict[str, tuple[int, int]]] = {
    "24h": (DAY_MS, HOUR_MS),
    "1w": (7 * DAY_MS, 6 * HOUR_MS),
    "1m": (30 * DAY_MS, DAY_MS),
    "3m": (90 * DAY_MS, DAY_MS),
    "6m": (180 * DAY_MS, DAY_MS),
    "1y": (365 * DAY_MS, DAY_MS),
    "all": (HISTORY_MS, 7 * DAY_MS),
}


def portfolio_chart(profile: PortfolioProfile, chart_type: str) -> list[list[float]]:
    """GET /portfolio/chart ``result``: ``[[ts_ms, usd, btc, eth], ...]`` oldest first."""
    span, step = CHART_WINDOWS[chart_type]
    points = []
    for t in range(AS_OF_MS - span, AS_OF_MS + 1, step):
        usd = market_value_usd(profile, t)
        points.append(
            [
                t,
                round(usd, 2),
                _r(usd / price_at(COINS["bitcoin"], t), 8),
                _r(usd / price_at(COINS["ethereum"], t), 8),
            ]
        )
    return points


# --------------------------------------------------------------------------- transactions

_WALLET_TYPES: Final = (("Received", 36), ("Sent", 30), ("Swap", 26), ("Roll In", 5), ("Dust Convert", 3))
_UTXO_TYPES: Final = (("Received", 55), ("Sent", 45))
_EXCHANGE_TYPES: Final = (
    ("Buy", 40),
    ("Sell", 28),
    ("Received", 13),
    ("Sent", 10),
    ("Dust Convert", 5),
    ("Roll In", 4),
)
_OUTGOING: Final = frozenset({"Sent", "Sell", "Dust Convert"})


def iso_ms(t_ms: int) -> str:
    """ISO-8601 with milliseconds and Z, the API's date format (``2025-08-28T08:35:50.384Z``)."""
    moment = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t_ms % 1000:03d}Z"


def _tx_step(count: int) -> int:
    span = min(count * TX_SPACING_MS, HISTORY_MS)
    return max(1, span // max(count, 1))


#: Key parts naming a run: the base history keeps the keys it always had, so its data is unchanged.
_BASE: Final = ("tx", "jitter", "block")
_APPENDED: Final = ("appended-tx", "appended-jitter", "appended-block")
_Run = tuple[str, str, str]


def _run_of(profile: PortfolioProfile, index: int) -> tuple[_Run, int]:
    """The run holding listing index ``index`` (0 = newest) and the number within that run."""
    if index < profile.appended:
        # The listing is newest first but appended numbers count up with arrival.
        return _APPENDED, profile.appended - 1 - index
    return _BASE, index - profile.appended


def tx_date_ms(profile: PortfolioProfile, index: int) -> int:
    """Date of transaction ``index`` (0 = newest); strictly decreasing, so never repeated."""
    run, number = _run_of(profile, index)
    if run == _APPENDED:
        # AS_OF_MS - HOUR_MS + 1 is just after the newest base date; MAX_APPENDED keeps it < AS_OF_MS.
        jitter = _seed_int(profile.seed, profile.portfolio_id, run[1], number) % APPEND_STEP_MS
        return AS_OF_MS - HOUR_MS + 1 + number * APPEND_STEP_MS + jitter
    step = _tx_step(profile.base_count)
    # jitter < step keeps dates strictly decreasing while looking irregular.
    jitter = _seed_int(profile.seed, profile.portfolio_id, run[1], number) % step
    return AS_OF_MS - HOUR_MS - number * step - jitter


def _block_offset(profile: PortfolioProfile, run: _Run, block: int, k: int) -> int:
    return _seed_int(profile.seed, profile.portfolio_id, run[2], block) % k


def _coin_slot(profile: PortfolioProfile, run: _Run, number: int, k: int) -> int:
    """Holding used by transaction ``number`` of ``run``: each block of k numbers uses every holding once."""
    block, pos = divmod(number, k)
    return (pos + _block_offset(profile, run, block, k)) % k


def _slot_number(profile: PortfolioProfile, run: _Run, block: int, slot: int, k: int) -> int:
    """Inverse of :func:`_coin_slot` within ``block``."""
    return block * k + (slot - _block_offset(profile, run, block, k)) % k


def _first_index_before(profile: PortfolioProfile, t_ms: int) -> int:
    """Smallest index whose date is < t_ms (dates decrease with the index)."""
    lo, hi = 0, profile.transaction_count
    while lo < hi:
        mid = (lo + hi) // 2
        if tx_date_ms(profile, mid) < t_ms:
            hi = mid
        else:
            lo = mid + 1
    return lo


class _SlotMatches:
    """The numbers in ``[lo, hi)`` of one run whose coin slot is ``slot``, ascending, each in O(1)."""

    def __init__(self, profile: PortfolioProfile, run: _Run, slot: int, k: int, lo: int, hi: int) -> None:
        self._profile, self._run, self._slot, self._k = profile, run, slot, k
        self._first, self._count = 0, 0
        if slot < 0 or lo >= hi:
            return
        first, last = lo // k, (hi - 1) // k
        if _slot_number(profile, run, first, slot, k) < lo:
            first += 1
        if _slot_number(profile, run, last, slot, k) >= hi:
            last -= 1
        self._first, self._count = first, max(0, last - first + 1)

    def __len__(self) -> int:
        return self._count

    def at(self, j: int) -> int:
        return _slot_number(self._profile, self._run, self._first + j, self._slot, self._k)


class TransactionView:
    """The indices of a portfolio's transactions that pass the filters, without materialising them.

    Indices are listing positions (0 = newest). A ``coinId`` filter is solved per run in that
    run's own numbering (appended numbers run against the listing order), then mapped back.
    """

    def __init__(
        self,
        profile: PortfolioProfile,
        coin_id: str | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
    ) -> None:
        self._profile = profile
        n = profile.transaction_count
        # [from, to): "to" is exclusive so consecutive windows never overlap.
        lo = _first_index_before(profile, to_ms) if to_ms is not None else 0
        hi = _first_index_before(profile, from_ms) if from_ms is not None else n
        self._lo, self._hi = lo, max(lo, hi)
        self._filtered = coin_id is not None
        if coin_id is None:
            return
        items = holdings(profile)
        slots = [i for i, h in enumerate(items) if h.coin.identifier == coin_id]
        slot = slots[0] if slots else -1
        a, k = profile.appended, len(items)
        # Listing [lo, hi) split at a; listing index i < a is appended number a - 1 - i.
        self._appended = _SlotMatches(profile, _APPENDED, slot, k, a - min(self._hi, a), a - min(self._lo, a))
        self._base = _SlotMatches(profile, _BASE, slot, k, max(self._lo, a) - a, max(self._hi, a) - a)

    def __len__(self) -> int:
        if not self._filtered:
            return self._hi - self._lo
        return len(self._appended) + len(self._base)

    def at(self, j: int) -> int:
        """Transaction index of the ``j``-th match (0-based), in O(1)."""
        if not 0 <= j < len(self):
            raise IndexError(j)
        if not self._filtered:
            return self._lo + j
        a, newer = self._profile.appended, len(self._appended)
        if j < newer:
            # Newest first means the highest matching appended number first.
            return a - 1 - self._appended.at(newer - 1 - j)
        return a + self._base.at(j - newer)

    def window(self, start: int, stop: int) -> list[int]:
        return [self.at(j) for j in range(max(0, start), min(stop, len(self)))]


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    names = [name for name, _ in weighted]
    weights = [weight for _, weight in weighted]
    return rng.choices(names, weights)[0]


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _fake_address(rng: random.Random, family: str) -> str:
    if family == "bitcoin":
        return "bc1q" + "".join(rng.choice(_BECH32) for _ in range(38))
    if family == "solana":
        return "".join(rng.choice(_B58) for _ in range(44))
    if family == "tron":
        return "T" + "".join(rng.choice(_B58) for _ in range(33))
    return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))


def _transfer_item(
    coin: Coin, count: float, t_ms: int, fx: float, to_address: str | None, from_address: str | None
) -> JsonDict:
    price = price_at(coin, t_ms)
    return {
        "coin": coin_dto(coin.identifier),
        "count": count,
        "totalWorth": _money(abs(count) * price * fx),
        "price": _r(price * fx),
        "toAddress": to_address,
        "fromAddress": from_address,
    }


def transaction(profile: PortfolioProfile, index: int, currency: str) -> JsonDict:
    """TransactionItem ``index`` (0 = newest) of a portfolio."""
    fx = FX[currency]
    run, number = _run_of(profile, index)
    rng = _rng(profile.seed, profile.portfolio_id, run[0], number)
    items = holdings(profile)
    k = len(items)
    slot = _coin_slot(profile, run, number, k)
    coin = items[slot].coin
    t = tx_date_ms(profile, index)
    chain = profile.chain
    if chain is None:
        tx_type = _pick(rng, _EXCHANGE_TYPES)
    elif chain.family == "bitcoin" or k < 2:
        tx_type = _pick(rng, _UTXO_TYPES)
    else:
        tx_type = _pick(rng, _WALLET_TYPES)

    worth_usd = (
        rng.uniform(0.05, 2.0) if tx_type == "Dust Convert" else math.exp(rng.uniform(math.log(8), math.log(6000)))
    )
    price_then = price_at(coin, t)
    quantity = _qty(worth_usd / price_then)
    signed = -quantity if tx_type in _OUTGOING else quantity
    total_worth = quantity * price_then * fx
    current_value = quantity * coin.price * fx
    profit = current_value - total_worth if signed > 0 else total_worth - current_value

    own = profile.address
    family = chain.family if chain is not None else "evm"
    other = _fake_address(rng, family) if chain is not None else None
    transfers: list[JsonDict] = []
    if tx_type in ("Received", "Roll In"):
        transfers.append({"transferType": "Received", "items": [_transfer_item(coin, signed, t, fx, own, other)]})
    elif tx_type == "Sent":
        transfers.append({"transferType": "Sent", "items": [_transfer_item(coin, signed, t, fx, other, own)]})
    else:
        # Swaps, trades and dust conversions move two coins: one out, one in.
        if tx_type == "Dust Convert":
            counter = COINS["binance-coin"] if chain is None else COINS[chain.pool[0]]
            if counter is coin:
                counter = COINS["tether"]
        elif chain is None:
            counter = COINS["usd-coin"] if coin.identifier == "tether" else COINS["tether"]
        else:
            counter = items[(slot + 1 + rng.randrange(k - 1)) % k].coin
        counter_qty = _qty(worth_usd / price_at(counter, t))
        if signed > 0:
            out_coin, out_qty, in_coin, in_qty = counter, counter_qty, coin, quantity
        else:
            out_coin, out_qty, in_coin, in_qty = coin, quantity, counter, counter_qty
        transfers.append({"transferType": "Sent", "items": [_transfer_item(out_coin, -out_qty, t, fx, other, own)]})
        transfers.append({"transferType": "Received", "items": [_transfer_item(in_coin, in_qty, t, fx, own, other)]})

    if chain is None:
        fee_coin = COINS["tether"]
        fee_usd = worth_usd * 0.001 if tx_type in ("Buy", "Sell", "Sent") else 0.0
    else:
        fee_coin = COINS[chain.pool[0]]
        fee_usd = 0.0 if tx_type in ("Received", "Roll In") else rng.uniform(*chain.fee_usd)
    fee_price = price_at(fee_coin, t)
    fee_count = _qty(fee_usd / fee_price) if fee_usd else 0.0

    return {
        "transactionType": tx_type,
        "date": iso_ms(t),
        "coinData": {
            "identifier": coin.identifier,
            "count": signed,
            "symbol": coin.symbol,
            "totalWorth": _money(total_worth),
            "currentValue": _money(current_value),
        },
        "profitLoss": {
            "profit": _money(profit),
            "profitPercent": round(profit / total_worth * 100, 2) if total_worth else 0.0,
            "currentValue": _money(current_value),
        },
        "fee": {
            "coin": coin_dto(fee_coin.identifier),
            "count": fee_count,
            "totalWorth": _money(fee_count * fee_price * fx),
            "price": _r(fee_price * fx),
            "toAddress": None,
            "fromAddress": own,
        },
        "transfers": transfers,
        "portfolioInfo": {"name": profile.name, "icon": profile.icon},
    }


def transactions_page(
    profile: PortfolioProfile,
    currency: str,
    page: int,
    limit: int,
    coin_id: str | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> list[JsonDict]:
    """GET /portfolio/transactions ``data``: newest first; O(limit) whatever the portfolio size."""
    view = TransactionView(profile, coin_id, from_ms, to_ms)
    start = (page - 1) * limit
    return [transaction(profile, i, currency) for i in view.window(start, start + limit)]


# --------------------------------------------------------------------------- defi

# (id, name, url, investment, title, coin ids, has health rate)
_Protocol = tuple[str, str, str, str, str, tuple[str, ...], bool]
_EVM_PROTOCOLS: Final[tuple[_Protocol, ...]] = (
    ("aave-v3", "Aave V3", "https://app.aave.com", "Lending", "Supplied", ("usd-coin", "ethereum"), True),
    ("lido", "Lido", "https://stake.lido.fi", "Staking", "Staked", ("ethereum",), False),
    (
        "uniswap-v3",
        "Uniswap V3",
        "https://app.uniswap.org",
        "Liquidity Pool",
        "Liquidity",
        ("ethereum", "usd-coin"),
        False,
    ),
    (
        "curve",
        "Curve",
        "https://curve.fi",
        "Liquidity Pool",
        "Liquidity",
        ("dai", "usd-coin", "tether"),
        False,
    ),
    (
        "compound-v3",
        "Compound V3",
        "https://app.compound.finance",
        "Lending",
        "Supplied",
        ("usd-coin",),
        True,
    ),
    ("eigenlayer", "EigenLayer", "https://app.eigenlayer.xyz", "Restaking", "Staked", ("ethereum",), False),
)
_PROTOCOLS: Final[dict[str, tuple[_Protocol, ...]]] = {
    "evm": _EVM_PROTOCOLS,
    "solana": (
        ("marinade", "Marinade", "https://marinade.finance", "Staking", "Staked", ("solana",), False),
        (
            "jupiter",
            "Jupiter",
            "https://jup.ag",
            "Liquidity Pool",
            "Liquidity",
            ("solana", "usd-coin"),
            False,
        ),
        (
            "raydium",
            "Raydium",
            "https://raydium.io",
            "Liquidity Pool",
            "Liquidity",
            ("raydium", "usd-coin"),
            False,
        ),
        ("kamino", "Kamino", "https://app.kamino.finance", "Lending", "Supplied", ("usd-coin",), True),
    ),
    "tron": (
        ("justlend", "JustLend DAO", "https://justlend.org", "Lending", "Supplied", ("tether",), True),
        (
            "sunswap-v2",
            "SunSwap V2",
            "https://sun.io",
            "Liquidity Pool",
            "Liquidity",
            ("tron", "tether"),
            False,
        ),
    ),
    "bitcoin": (
        ("babylon", "Babylon", "https://babylonlabs.io", "Staking", "Staked", ("bitcoin",), False),
        ("lombard", "Lombard", "https://www.lombard.finance", "Staking", "Staked", ("bitcoin",), False),
    ),
}


@functools.lru_cache(maxsize=1024)
def portfolio_defi(profile: PortfolioProfile) -> JsonDict:
    """GET /portfolio/defi: ``{totalAssets, protocols}`` with 2-4 protocols."""
    rng = _rng(profile.seed, profile.portfolio_id, "defi")
    chain = profile.chain
    family = chain.family if chain is not None else "evm"
    pool = _PROTOCOLS[family]
    chosen = rng.sample(pool, min(len(pool), rng.randint(2, 4)))
    chain_name = chain.name if chain is not None else "Ethereum"
    chain_id = chain.chain if chain is not None else "ethereum"
    wallet = profile.address or _fake_address(rng, family)
    protocols = []
    total = 0.0
    for pid, name, url, investment, title, coin_ids, has_health in chosen:
        assets = []
        value = 0.0
        for coin_id in coin_ids:
            coin = COINS[coin_id]
            usd = math.exp(rng.uniform(math.log(50), math.log(20_000)))
            amount = _qty(usd / coin.price)
            value += amount * coin.price
            assets.append(
                {
                    "address": _fake_address(rng, family),
                    "title": title,
                    "coinId": coin.identifier,
                    "logo": coin_icon(coin),
                    "amount": amount,
                    "symbol": coin.symbol,
                    "price": _three(coin.price),
                    "danger": False,
                }
            )
        total += value
        protocols.append(
            {
                "id": pid,
                "name": name,
                "logo": f"{ICON_BASE}/defi/{pid}.png",
                "url": url,
                "totalValue": _three(value),
                "blockchain": {"name": chain_name, "icon": f"{ICON_BASE}/portfolio_images/{chain_id}.png"},
                "chain": chain_id,
                "walletAddress": wallet,
                "investments": [
                    {
                        "id": f"{pid}-{investment.lower().replace(' ', '-')}",
                        "name": investment,
                        "value": _three(value),
                        "symbols": [COINS[c].symbol for c in coin_ids],
                        "assets": assets,
                        "poolAddress": _fake_address(rng, family),
                        "poolProjectId": pid,
                        "healthRate": round(rng.uniform(1.4, 4.0), 2) if has_health else None,
                        "healthRateLink": f"{url}/dashboard" if has_health else None,
                        "unlockAt": None,
                        "endAt": None,
                        "isProxy": False,
                        "debtRatio": round(rng.uniform(0.05, 0.6), 3) if has_health else None,
                        "debtRatioLink": f"{url}/dashboard" if has_health else None,
                    }
                ],
            }
        )
    return {"totalAssets": _three(total), "protocols": protocols}


def defi_total_usd(profile: PortfolioProfile) -> float:
    return float(portfolio_defi(profile)["totalAssets"]["USD"])


# --------------------------------------------------------------------------- snapshots


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _quantity_on(profile: PortfolioProfile, h: Holding, day: date) -> float:
    # Quantities change weekly, so quantityChange is mostly 0 with occasional moves.
    week = (_day_ms(day) - AS_OF_MS) // (7 * DAY_MS)
    if week >= 0:
        return h.count
    return _qty(h.count * (0.75 + 0.5 * _unit(profile.seed, profile.portfolio_id, h.coin.identifier, week)))


def snapshot_default_range() -> tuple[date, date]:
    end = DATA_AS_OF.date()
    return end - timedelta(days=29), end


def snapshot_items(
    profile: PortfolioProfile,
    page: int,
    limit: int,
    first_day: date,
    last_day: date,
    coin_ids: frozenset[str] | None,
) -> list[JsonDict]:
    """GET /portfolio/snapshot/items ``result``: daily, chronological, one page."""
    selected = [h for h in holdings(profile) if coin_ids is None or h.coin.identifier in coin_ids]
    start = first_day + timedelta(days=(page - 1) * limit)
    out: list[JsonDict] = []
    day = start
    while day <= last_day and len(out) < limit:
        previous = day - timedelta(days=1)
        t, t_prev = _day_ms(day), _day_ms(previous)
        balances = []
        total = total_prev = 0.0
        for h in selected:
            q, q_prev = _quantity_on(profile, h, day), _quantity_on(profile, h, previous)
            p, p_prev = price_at(h.coin, t), price_at(h.coin, t_prev)
            balance, balance_prev = q * p, q_prev * p_prev
            total += balance
            total_prev += balance_prev
            balances.append(
                {
                    "symbol": h.coin.symbol,
                    "icon": coin_icon(h.coin),
                    "quantity": q,
                    "balance": _money(balance),
                    "quantityChange": _qty(q - q_prev),
                    "balanceChange": _money(balance - balance_prev),
                    "pricePerUnit": _r(p),
                    "pricePercentChange": _pct(p, p_prev),
                }
            )
        out.append(
            {
                "date": iso_ms(t),
                "coinBalances": balances,
                "totalBalance": _money(total),
                "totalBalanceChange": _money(total - total_prev),
                "totalBalancePercentChange": _pct(total, total_prev),
            }
        )
        day += timedelta(days=1)
    return out


# --------------------------------------------------------------------------- P&L history

#: range -> span in ms, ending at DATA_AS_OF.
PL_RANGE_SPANS: Final[dict[str, int]] = {name: span for name, (span, _) in CHART_WINDOWS.items()}
MAX_PL_POINTS: Final = 5000


def _add_months(moment: datetime, months: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


def pl_points(interval: str, start_ms: int, end_ms: int, include_end: bool) -> list[int]:
    """Timestamps of a P&L series: from ``start`` (floored to the hour/day) stepping by ``interval``."""
    floor = HOUR_MS if interval == "hourly" else DAY_MS
    t = start_ms - start_ms % floor
    points: list[int] = []
    moment = datetime.fromtimestamp(t / 1000, tz=UTC)
    step = 0
    while t < end_ms or (include_end and t == end_ms):
        points.append(t)
        if len(points) > MAX_PL_POINTS:
            break
        step += 1
        if interval == "hourly":
            t = points[0] + step * HOUR_MS
        elif interval == "daily":
            t = points[0] + step * DAY_MS
        elif interval == "weekly":
            t = points[0] + step * 7 * DAY_MS
        elif interval == "monthly":
            t = int(_add_months(moment, step).timestamp() * 1000)
        else:
            t = int(_add_months(moment, 12 * step).timestamp() * 1000)
    return points


def pl_history(profile: PortfolioProfile, points: Sequence[int], currency: str) -> list[JsonDict]:
    """GET /portfolio/pl/history ``result``.

    The real response shape is not published; this sandbox answers
    ``[{date, profitLoss, profitLossPercent, value, netFlow}]`` where ``value`` includes net
    deposits/withdrawals and ``profitLoss`` is cash-flow adjusted (flows removed), relative to
    the first point of the window.
    """
    fx = FX[currency]
    out: list[JsonDict] = []
    flows = 0.0
    start_value = None
    for n, t in enumerate(points):
        market = market_value_usd(profile, t)
        u = _unit(profile.seed, profile.portfolio_id, "flow", t)
        flow = 0.0
        if n and u < 0.12:
            flow = market * (0.01 + 0.05 * u / 0.12) * (1 if u < 0.08 else -1)
        flows += flow
        value = market + flows
        if start_value is None:
            start_value = value
        profit = value - start_value - flows
        out.append(
            {
                "date": iso_ms(t),
                "profitLoss": _money(profit * fx),
                "profitLossPercent": round(profit / start_value * 100, 2) if start_value else 0.0,
                "value": _money(value * fx),
                "netFlow": _money(flow * fx),
            }
        )
    return out
