"""Flat export schemas: every sandbox item of every dataset becomes a typed row of its schema.

The sandbox is read over real HTTP through ``CoinStatsHook``; the rows are checked against the
declared column types and spot-checked against the raw JSON they came from.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export import (
    DATASETS,
    Column,
    DatasetSchema,
    DefiPosition,
    SnapshotBalance,
    defi_positions,
    flatten,
    flatten_value,
    get_schema,
    iter_records,
    iter_rows,
    snapshot_balances,
    to_jsonable,
    transaction_row_key,
)
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from tests.helpers import ADDRESS

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
DATASET_NAMES = ("coins", "value", "chart", "transactions", "defi", "snapshot_items", "pl_history")

#: Wallets and an exchange whose transactions differ in shape (UTXO, base58 addresses, Buy/Sell).
CONNECTIONS: dict[str, Callable[[CoinStatsHook], str]] = {
    "ethereum": lambda h: h.connect_wallet(ADDRESS, "ethereum").portfolio_id,
    "bitcoin": lambda h: h.connect_wallet("bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh", "bitcoin").portfolio_id,
    "solana": lambda h: h.connect_wallet("7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV", "solana").portfolio_id,
    "binance": lambda h: h.connect_exchange("binance", {"apiKey": "k-1", "apiSecret": "s-1"}).portfolio_id,
}


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


def assert_rows(dataset: str, rows: list[dict[str, Any]], portfolio_id: str) -> None:
    """Keys are the schema's columns in order, values have the declared types, keys are unique."""
    schema = get_schema(dataset)
    assert rows
    for row in rows:
        assert list(row) == schema.column_names()
        assert row["portfolio_id"] == portfolio_id
        assert row["extracted_at"] == NOW
        for column in schema.columns:
            value = row[column.name]
            if value is None:
                assert column.nullable, f"{dataset}.{column.name} is None"
            elif column.type == "decimal":
                assert type(value) is Decimal, column.name
                assert value.is_finite(), column.name
            elif column.type == "timestamp":
                assert type(value) is datetime, column.name
                assert value.tzinfo is UTC, column.name
            elif column.type == "integer":
                assert type(value) is int, column.name
            elif column.type == "boolean":
                assert type(value) is bool, column.name
            else:
                assert type(value) is str, column.name
        assert_jsonable(schema, row)
    keys = [tuple(row[name] for name in schema.key) for row in rows]
    assert len(set(keys)) == len(keys), f"{dataset}: duplicate keys"


def assert_jsonable(schema: DatasetSchema, row: dict[str, Any]) -> None:
    rendered = to_jsonable(row)
    back = json.loads(json.dumps(rendered))
    assert back == rendered
    for column in schema.columns:
        value, text = row[column.name], back[column.name]
        if value is None:
            assert text is None
        elif column.type == "decimal":
            assert isinstance(text, str)
            assert "e" not in text.lower()
            assert Decimal(text) == value
        elif column.type == "timestamp":
            assert text.endswith("Z")
            assert datetime.fromisoformat(text) == value
        else:
            assert text == value


def rows_of(dataset: str, payload: Any, pid: str, currency: str = "USD") -> list[dict[str, Any]]:
    return list(iter_rows(dataset, payload, portfolio_id=pid, extracted_at=NOW, currency=currency))


@pytest.fixture
def hook(coinstats_conn: Any) -> CoinStatsHook:
    coinstats_conn.state.configure(sync_polls=0)
    return CoinStatsHook()


@pytest.fixture
def wallet(hook: CoinStatsHook) -> str:
    return CONNECTIONS["ethereum"](hook)


# --- schemas ----------------------------------------------------------------------------------------


def test_schema_invariants() -> None:
    assert tuple(DATASETS) == DATASET_NAMES
    for name, schema in DATASETS.items():
        assert schema.name == name
        assert get_schema(name) is schema
        names = schema.column_names()
        assert names[:2] == ["portfolio_id", "extracted_at"]
        assert schema.columns[0].type == "string"
        assert schema.columns[1].type == "timestamp"
        assert len(set(names)) == len(names)
        for column in schema.columns:
            assert column.description.strip(), f"{name}.{column.name} undocumented"
            assert column.name.isidentifier()
            assert column.name == column.name.lower()
        for key in schema.key:
            assert not schema.column(key).nullable
    transactions = get_schema("transactions")
    assert transactions.column_names()[2] == "row_key"
    assert transactions.key == ("portfolio_id", "row_key")
    assert get_schema("coins").key == ("portfolio_id", "coin_id")
    assert get_schema("chart").key == ("portfolio_id", "timestamp")


def test_schema_rejects_bad_layouts() -> None:
    with pytest.raises(ValueError, match="unknown type"):
        Column("a", "float")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must start with"):
        DatasetSchema("x", DATASETS["chart"].columns[2:], ("timestamp",))
    with pytest.raises(ValueError, match="key column"):
        DatasetSchema("x", DATASETS["chart"].columns, ("portfolio_id", "value_usd"))


@pytest.mark.parametrize(
    "call",
    [
        lambda: get_schema("nope"),
        lambda: flatten("nope", {}, portfolio_id="p", extracted_at=NOW),
        lambda: list(iter_rows("Coins", [], portfolio_id="p", extracted_at=NOW)),
        lambda: list(iter_records("", [])),
    ],
)
def test_unknown_dataset(call: Callable[[], Any]) -> None:
    with pytest.raises(CoinStatsValidationError, match="dataset") as info:
        call()
    assert info.value.field == "dataset"
    assert "coins" in str(info.value)


# --- every dataset against the sandbox ---------------------------------------------------------------


@pytest.mark.parametrize("include_risk", [False, True])
def test_coins(hook: CoinStatsHook, wallet: str, include_risk: bool) -> None:
    items = hook.get_portfolio_coins(wallet, include_risk_score=include_risk)
    rows = rows_of("coins", items, wallet)
    assert_rows("coins", rows, wallet)
    assert len(rows) == len(items)
    for item, row in zip(items, rows, strict=True):
        assert row["coin_id"] == item["coin"]["identifier"]
        assert row["symbol"] == item["coin"]["symbol"]
        assert row["rank"] == item["coin"]["rank"]
        assert row["is_fiat"] is item["coin"]["isFiat"]
        assert row["count"] == dec(item["count"])
        assert row["price_usd"] == dec(item["price"]["USD"])
        assert row["price_btc"] == dec(item["price"]["BTC"])
        assert row["value_usd"] == dec(item["count"]) * dec(item["price"]["USD"])
        assert row["profit_all_time_usd"] == dec(item["profit"]["allTime"]["USD"])
        assert row["profit_percent_24h_usd"] == dec(item["profitPercent"]["hour24"]["USD"])
        assert row["average_buy_all_time_usd"] == dec(item["averageBuy"]["allTime"]["USD"])
        assert row["average_sell_last_trade_usd"] == dec(item["averageSell"]["lastTrade"]["USD"])
        if include_risk:
            assert row["risk_score"] == dec(item["riskScore"])
            assert row["liquidity_score"] == dec(item["liquidityScore"])
        else:
            assert row["risk_score"] is None


@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_value(hook: CoinStatsHook, wallet: str, currency: str) -> None:
    payload = hook.get_portfolio_value(wallet, currency)
    rows = rows_of("value", payload, wallet, currency)
    assert_rows("value", rows, wallet)
    assert rows == [flatten_value(payload, portfolio_id=wallet, extracted_at=NOW, currency=currency.lower())]
    row = rows[0]
    assert row["currency"] == currency
    assert row["total_value"] == dec(payload["totalValue"])
    assert row["all_time_profit_loss_percent"] == dec(payload["allTimeProfitLossPercent"])
    assert row["defi_value"] == dec(payload["defiValue"])


@pytest.mark.parametrize("chart_type", ["24h", "1w", "1y", "all"])
def test_chart(hook: CoinStatsHook, wallet: str, chart_type: str) -> None:
    points = hook.get_portfolio_chart(wallet, chart_type)
    rows = rows_of("chart", points, wallet)
    assert_rows("chart", rows, wallet)
    assert len(rows) == len(points)
    for (ts, usd, btc, eth), row in zip(points, rows, strict=True):
        assert row["timestamp"] == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts)
        assert int(row["timestamp"].timestamp() * 1000) == ts
        assert (row["value_usd"], row["value_btc"], row["value_eth"]) == (dec(usd), dec(btc), dec(eth))
    # Oldest first, ending at the sandbox's "now" (the weekly "all" series stops at the last full step).
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
    assert timedelta(0) <= datetime(2026, 1, 1, tzinfo=UTC) - rows[-1]["timestamp"] < timedelta(days=7)


@pytest.mark.parametrize("connection", sorted(CONNECTIONS))
def test_transactions(hook: CoinStatsHook, connection: str) -> None:
    pid = CONNECTIONS[connection](hook)
    items = list(hook.iter_portfolio_transactions(pid))
    rows = rows_of("transactions", items, pid)
    assert_rows("transactions", rows, pid)
    assert len(rows) == len(items) > 0
    for item, row in zip(items, rows, strict=True):
        assert row["row_key"] == transaction_row_key(item)
        assert len(row["row_key"]) == 32
        assert int(row["row_key"], 16) >= 0
        assert row["date"] == datetime.fromisoformat(item["date"].replace("Z", "+00:00"))
        assert row["transaction_type"] == item["transactionType"]
        assert row["coin_id"] == item["coinData"]["identifier"]
        assert row["count"] == dec(item["coinData"]["count"])
        assert row["total_worth"] == dec(item["coinData"]["totalWorth"])
        assert row["current_value"] == dec(item["profitLoss"]["currentValue"])
        assert row["profit"] == dec(item["profitLoss"]["profit"])
        assert row["fee_coin_id"] == item["fee"]["coin"]["identifier"]
        assert row["fee_count"] == dec(item["fee"]["count"])
        assert row["transfer_count"] == sum(len(t["items"]) for t in item["transfers"])
        assert row["portfolio_name"] == item["portfolioInfo"]["name"]
        if item["transactionType"] in ("Swap", "Buy", "Sell"):
            assert row["sent_coin_id"] is not None
            assert row["received_coin_id"] is not None
            assert row["sent_count"] < 0 < row["received_count"]

    # Same item fetched again, and the same transactions read in another currency: same keys.
    again = [r["row_key"] for r in rows_of("transactions", hook.iter_portfolio_transactions(pid), pid)]
    assert again == [r["row_key"] for r in rows]
    euro = rows_of("transactions", hook.iter_portfolio_transactions(pid, currency="EUR"), pid, "EUR")
    assert [r["row_key"] for r in euro] == again
    assert {r["currency"] for r in euro} == {"EUR"}
    assert [r["total_worth"] for r in euro] != [r["total_worth"] for r in rows]


def test_row_keys_unique_over_5000_transactions(coinstats_conn: Any, hook: CoinStatsHook, wallet: str) -> None:
    coinstats_conn.state.set_transaction_count(wallet, 5000)
    rows = rows_of("transactions", hook.iter_portfolio_transactions(wallet), wallet)
    assert len(rows) == 5000
    assert_rows("transactions", rows, wallet)  # includes: all 5,000 row keys distinct
    assert {r["transaction_type"] for r in rows} == {"Received", "Sent", "Swap", "Roll In", "Dust Convert"}
    # Pages read again (from the middle) give the same keys.
    page = list(hook.iter_portfolio_transactions(wallet, limit=100, start_page=25))
    assert [transaction_row_key(t) for t in page] == [r["row_key"] for r in rows[2400:]]


# Paths of fields that change over time (values, prices, market data, names): never in the key.
VOLATILE = [
    ("coinData", "totalWorth"),
    ("coinData", "currentValue"),
    ("coinData", "symbol"),
    ("profitLoss", "profit"),
    ("profitLoss", "profitPercent"),
    ("profitLoss", "currentValue"),
    ("fee", "totalWorth"),
    ("fee", "price"),
    ("fee", "coin", "priceChange24h"),
    ("fee", "coin", "rank"),
    ("transfers", 0, "items", 0, "totalWorth"),
    ("transfers", 0, "items", 0, "price"),
    ("transfers", 0, "items", 0, "coin", "volume"),
    ("portfolioInfo", "name"),
    ("note",),
]
# Paths of the fields the key is made of: changing any one must change the key.
STABLE = [
    ("date",),
    ("transactionType",),
    ("coinData", "identifier"),
    ("coinData", "count"),
    ("fee", "count"),
    ("fee", "coin", "identifier"),
    ("transfers", 0, "transferType"),
    ("transfers", 0, "items", 0, "coin", "identifier"),
    ("transfers", 0, "items", 0, "count"),
    ("transfers", 0, "items", 0, "fromAddress"),
    ("transfers", 0, "items", 0, "toAddress"),
    ("transfers", 0, "items", 0, "hash"),
    ("hash",),
]


def get_path(item: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        item = item.get(step) if isinstance(item, dict) else item[step]
    return item


def set_path(item: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(item)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def mutated(value: Any) -> Any:
    if value is None:
        return "changed"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 1.37 + 1
    if isinstance(value, str) and value.endswith("Z"):
        return "2020-02-02T02:02:02.222Z"
    return f"{value}-changed"


def test_row_key_stable_fields_only(hook: CoinStatsHook, wallet: str) -> None:
    items = list(hook.iter_portfolio_transactions(wallet))
    for item in items:
        key = transaction_row_key(item)
        assert transaction_row_key(copy.deepcopy(item)) == key
        for path in VOLATILE:
            assert transaction_row_key(set_path(item, path, mutated(get_path(item, path)))) == key, path
        for path in STABLE:
            assert transaction_row_key(set_path(item, path, mutated(get_path(item, path)))) != key, path


def test_row_key_canonical_forms() -> None:
    base: dict[str, Any] = {
        "transactionType": "Swap",
        "date": "2025-08-28T08:35:50.384Z",
        "coinData": {"identifier": "pepe", "count": 596062, "totalWorth": 6.07},
        "fee": {"coin": {"identifier": "ethereum"}, "count": 0.001},
        "transfers": [
            {"transferType": "Sent", "items": [{"coin": {"identifier": "tether"}, "count": -6.0, "toAddress": "0xAB"}]},
            {"transferType": "Received", "items": [{"coin": {"identifier": "pepe"}, "count": 596062}]},
        ],
    }
    key = transaction_row_key(base)
    same = copy.deepcopy(base)
    same["date"] = "2025-08-28T10:35:50.384+02:00"
    same["coinData"]["count"] = 596062.0
    same["fee"]["count"] = "0.0010"
    same["fee"]["coin"] = {"id": "ethereum"}
    same["transfers"].reverse()
    same["transfers"][1]["items"][0]["count"] = "-6"
    same["transfers"][1]["items"][0]["toAddress"] = "0xab"
    same["transfers"][1]["items"][0]["fromAddress"] = None
    assert transaction_row_key(same) == key
    other = copy.deepcopy(base)
    other["transfers"][0]["items"][0]["toAddress"] = "0xAC"
    assert transaction_row_key(other) != key
    # Base58 addresses are case-sensitive: not folded.
    lower = set_path(base, ("transfers", 0, "items", 0, "toAddress"), "AbC")
    upper = set_path(base, ("transfers", 0, "items", 0, "toAddress"), "abc")
    assert transaction_row_key(lower) != transaction_row_key(upper)
    assert transaction_row_key({}) == transaction_row_key({"transfers": []})
    with pytest.raises(CoinStatsValidationError):
        transaction_row_key([])  # type: ignore[arg-type]


def test_defi(hook: CoinStatsHook, wallet: str) -> None:
    payload = hook.get_portfolio_defi(wallet)
    rows = rows_of("defi", payload, wallet)
    assert_rows("defi", rows, wallet)
    expected = [
        (p, inv, asset, i)
        for p in payload["protocols"]
        for inv in p["investments"]
        for i, asset in enumerate(inv["assets"])
    ]
    assert len(rows) == len(expected) == len(defi_positions(payload))
    for (protocol, investment, asset, index), row in zip(expected, rows, strict=True):
        assert row["protocol_id"] == protocol["id"]
        assert row["chain"] == protocol["chain"]
        assert row["investment_id"] == investment["id"]
        assert row["asset_index"] == index
        assert row["investment_symbols"] == ",".join(investment["symbols"])
        assert row["health_rate"] == (dec(investment["healthRate"]) if investment["healthRate"] is not None else None)
        assert row["asset_amount"] == dec(asset["amount"])
        assert row["asset_price_usd"] == dec(asset["price"]["USD"])
        assert row["asset_value_usd"] == dec(asset["amount"]) * dec(asset["price"]["USD"])
        assert row["protocol_value_usd"] == dec(protocol["totalValue"]["USD"])


def test_snapshot_items(hook: CoinStatsHook, wallet: str) -> None:
    items = list(hook.iter_portfolio_snapshot_items(wallet, from_date="2025-10-01", to_date="2025-11-29"))
    assert len(items) == 60
    rows = rows_of("snapshot_items", items, wallet)
    assert_rows("snapshot_items", rows, wallet)
    pairs = [(item, balance) for item in items for balance in item["coinBalances"]]
    assert len(rows) == len(pairs)
    for (item, balance), row in zip(pairs, rows, strict=True):
        assert row["date"] == datetime.fromisoformat(item["date"])
        assert row["date"].hour == row["date"].minute == 0
        assert row["symbol"] == balance["symbol"]
        assert row["quantity"] == dec(balance["quantity"])
        assert row["balance"] == dec(balance["balance"])
        assert row["price_per_unit"] == dec(balance["pricePerUnit"])
        assert row["total_balance"] == dec(item["totalBalance"])
        assert row["total_balance_percent_change"] == dec(item["totalBalancePercentChange"])


@pytest.mark.parametrize(("interval", "range_", "currency"), [("daily", "1m", "USD"), ("hourly", "24h", "GBP")])
def test_pl_history(hook: CoinStatsHook, wallet: str, interval: str, range_: str, currency: str) -> None:
    points = hook.get_portfolio_pl_history(wallet, interval=interval, range_=range_, currency=currency)
    rows = rows_of("pl_history", points, wallet, currency)
    assert_rows("pl_history", rows, wallet)
    assert len(rows) == len(points)
    for point, row in zip(points, rows, strict=True):
        assert row["timestamp"] == datetime.fromisoformat(point["date"])
        assert row["currency"] == currency
        assert row["profit_loss"] == dec(point["profitLoss"])
        assert row["value"] == dec(point["value"])
        assert row["net_flow"] == dec(point["netFlow"])


# --- pure behaviour -----------------------------------------------------------------------------------


def row(dataset: str, item: Any, **kwargs: Any) -> dict[str, Any]:
    return flatten(dataset, item, portfolio_id="p1", extracted_at=NOW, **kwargs)


def test_missing_optional_fields_give_none() -> None:
    minimal = {
        "coins": {"coin": {"identifier": "x"}},
        "value": {},
        "chart": [1755864000000],
        "transactions": {"date": "2025-08-28T08:35:50.384Z"},
        "defi": DefiPosition({"id": "lido", "chain": "ethereum"}, {"id": "st"}, None, 0),
        "snapshot_items": SnapshotBalance({"date": "2025-01-01"}, {"symbol": "ETH"}),
        "pl_history": {"date": "2025-01-01T00:00:00Z"},
    }
    assert set(minimal) == set(DATASETS)
    for dataset, item in minimal.items():
        schema = get_schema(dataset)
        result = row(dataset, item)
        assert list(result) == schema.column_names()
        filled = {name for name, value in result.items() if value is not None}
        # Only the key, the extraction's own columns and derived counts/keys are ever filled.
        always = {*schema.key, "portfolio_id", "extracted_at", "currency", "row_key", "date", "transfer_count"}
        assert filled == always & set(result), dataset


def test_key_columns_are_required() -> None:
    cases = [
        ("coins", {"count": 1}),
        ("chart", [None, 1.0, 2.0, 3.0]),
        ("transactions", {"transactionType": "Sent"}),
        ("defi", DefiPosition({"id": "lido"}, {"id": "st"}, None, 0)),
        ("snapshot_items", SnapshotBalance({"date": "2025-01-01"}, {"quantity": 1})),
        ("pl_history", {"date": "not a date", "value": 1}),
    ]
    for dataset, item in cases:
        with pytest.raises(CoinStatsValidationError, match=dataset) as info:
            row(dataset, item)
        assert info.value.field == "item"


def test_bad_arguments() -> None:
    with pytest.raises(CoinStatsValidationError) as info:
        flatten("value", {}, portfolio_id="p1", extracted_at=datetime(2026, 1, 1))
    assert info.value.field == "extracted_at"
    with pytest.raises(CoinStatsValidationError) as info:
        flatten("value", {}, portfolio_id="", extracted_at=NOW)
    assert info.value.field == "portfolio_id"
    with pytest.raises(CoinStatsValidationError) as info:
        flatten("value", {}, portfolio_id="p1", extracted_at=NOW, currency=" ")
    assert info.value.field == "currency"
    for dataset, item in [("defi", {"protocols": []}), ("coins", [1, 2]), ("chart", "1,2"), ("chart", [])]:
        with pytest.raises(CoinStatsValidationError) as info:
            row(dataset, item)
        assert info.value.field == "item"
    with pytest.raises(CoinStatsValidationError) as info:
        list(iter_rows("coins", {"unexpected": 1}, portfolio_id="p1", extracted_at=NOW))
    assert info.value.field == "payload"


def test_extracted_at_is_normalised_to_utc() -> None:
    local = NOW.astimezone(timezone_plus(5, 30))
    result = flatten("value", {}, portfolio_id="p1", extracted_at=local)
    assert result["extracted_at"] == NOW
    assert result["extracted_at"].tzinfo is UTC
    assert to_jsonable(result)["extracted_at"] == "2026-01-02T03:04:05.678000Z"


def timezone_plus(hours: int, minutes: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours, minutes=minutes))


def test_decimals_are_exact() -> None:
    coins = row("coins", {"coin": {"identifier": "x"}, "count": 0.1, "price": {"USD": 0.2, "BTC": 1.169049622e-10}})
    assert coins["count"] == Decimal("0.1")
    assert coins["value_usd"] == Decimal("0.02")  # 0.1 * 0.2 == 0.020000000000000004 in floats
    assert to_jsonable(coins)["price_btc"] == "0.0000000001169049622"
    # More significant digits than the default 28-digit decimal context keeps.
    big = row(
        "coins", {"coin": {"identifier": "x"}, "count": 12345678901234567, "price": {"USD": "0.12345678901234567"}}
    )
    assert to_jsonable(big)["value_usd"] == "1524157875323883.45526596755677489"
    # Strings, NaN, infinities and booleans.
    odd = row(
        "value", {"totalValue": "57950.04", "defiValue": float("nan"), "totalCost": True, "realizedProfitLoss": "x"}
    )
    assert odd["total_value"] == Decimal("57950.04")
    assert odd["defi_value"] is None
    assert odd["total_cost"] is None
    assert odd["realized_profit_loss"] is None


def test_to_jsonable() -> None:
    rendered = to_jsonable(
        {
            "a": Decimal("1E-10"),
            "b": Decimal("1E+3"),
            "c": Decimal("-0.000"),
            "d": datetime(2025, 8, 28, 8, 35, 50, 384000, tzinfo=UTC),
            "e": datetime(2025, 8, 28, 10, 0, tzinfo=timezone_plus(2, 0)),
            "f": 5,
            "g": None,
            "h": True,
            "i": "text",
        }
    )
    assert rendered == {
        "a": "0.0000000001",
        "b": "1000",
        "c": "-0.000",
        "d": "2025-08-28T08:35:50.384000Z",
        "e": "2025-08-28T08:00:00Z",
        "f": 5,
        "g": None,
        "h": True,
        "i": "text",
    }
    assert json.loads(json.dumps(rendered)) == rendered


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1755864000000, datetime(2025, 8, 22, 12, 0, tzinfo=UTC)),
        (1755864000, datetime(2025, 8, 22, 12, 0, tzinfo=UTC)),  # seconds, as the docs claim
        (1755864000123.0, datetime(2025, 8, 22, 12, 0, 0, 123000, tzinfo=UTC)),
        ("1755864000000", datetime(2025, 8, 22, 12, 0, tzinfo=UTC)),
        ("2025-08-22T12:00:00.000Z", datetime(2025, 8, 22, 12, 0, tzinfo=UTC)),
        ("2025-08-22T14:00:00+02:00", datetime(2025, 8, 22, 12, 0, tzinfo=UTC)),
        ("2025-08-22T12:00:00", datetime(2025, 8, 22, 12, 0, tzinfo=UTC)),
        ("2025-08-22", datetime(2025, 8, 22, tzinfo=UTC)),
    ],
)
def test_timestamps(raw: Any, expected: datetime) -> None:
    result = row("chart", [raw, 1])
    assert result["timestamp"] == expected
    assert result["timestamp"].tzinfo is UTC
    assert result["value_usd"] == Decimal(1)
    assert result["value_btc"] is None


def test_nested_values_never_leak() -> None:
    item = {"date": "2025-01-01T00:00:00Z", "note": {"name": "n", "icon": "i"}, "transactionType": ["x"]}
    result = row("transactions", item)
    assert result["note"] == '{"icon":"i","name":"n"}'
    assert result["transaction_type"] == '["x"]'
    assert not any(isinstance(v, dict | list) for v in result.values())


def test_snapshot_zero_price_means_unknown() -> None:
    item = {
        "date": "2025-01-01T00:00:00.000Z",
        "coinBalances": [{"symbol": "X", "pricePerUnit": 0, "pricePercentChange": 0}],
    }
    (balance,) = snapshot_balances(item)
    result = row("snapshot_items", balance)
    assert result["price_per_unit"] is None
    assert result["price_percent_change"] is None
    assert snapshot_balances({"date": "2025-01-01", "coinBalances": []}) == []


def test_records_from_envelopes_and_iterators() -> None:
    envelope = {"result": [[1755864000000, 1, 2, 3]]}
    assert list(iter_records("chart", envelope)) == [[1755864000000, 1, 2, 3]]
    assert list(iter_records("transactions", {"data": [{"date": "x"}]})) == [{"date": "x"}]
    assert list(iter_records("coins", iter([{"a": 1}]))) == [{"a": 1}]
    positions = defi_positions({"protocols": [{"id": "p", "chain": "c", "investments": [{"id": "i", "assets": []}]}]})
    assert positions == [
        DefiPosition(
            {"id": "p", "chain": "c", "investments": [{"id": "i", "assets": []}]}, {"id": "i", "assets": []}, None, 0
        )
    ]
    assert defi_positions({}) == []


def test_import_is_cheap_and_pure() -> None:
    code = (
        "import sys, airflow_provider_coinstats.export\n"
        "heavy = {'airflow', 'requests', 'aiohttp', 'tenacity', 'fastapi', 'pendulum'}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
