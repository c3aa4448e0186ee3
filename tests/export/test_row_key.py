"""The transaction row key is exactly what its docstring promises, on every shape a transaction can take.

Row keys are primary keys in users' warehouses, so the text they hash must never change. The
test builds that text from the documented field list with the standard library
(``json.dumps(sort_keys=True)``) and compares: on sandbox transactions read over HTTP (wallets
and an exchange) and on thousands of generated items with odd values (numbers as strings, hex in
both cases, objects where strings belong, several transfers, id fields, control characters).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import pytest

from airflow_provider_coinstats.export import transaction_row_key
from airflow_provider_coinstats.export.row_key import exact_key_number, key_number
from airflow_provider_coinstats.export.values import iso_z, to_timestamp
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from tests.export.test_flatteners import CONNECTIONS


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else canonical(value)


def hex_lower(value: Any) -> str | None:
    """``0x`` hex strings are lower-cased."""
    found = text(value)
    return found.lower() if found is not None and found[:2].lower() == "0x" else found


def by_value(value: Any) -> str | None:
    """Numbers are compared by value: ``5``, ``5.0`` and ``"5.00"`` agree; never an exponent."""
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        return text(value)
    if not number.is_finite():
        return text(value)
    return "0" if number.is_zero() else format(number.normalize(Context(prec=400)), "f")


def coin(value: Any) -> str | None:
    """A coin's ``id`` stands in for a missing ``identifier``."""
    if not isinstance(value, Mapping):
        return None
    return hex_lower(value["identifier"] if value.get("identifier") is not None else value.get("id"))


def tx_hash(value: Any) -> str | None:
    return hex_lower(value.get("id") if isinstance(value, Mapping) else value)


def listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def field(item: Any, *path: str) -> Any:
    for name in path:
        item = item.get(name) if isinstance(item, Mapping) else None
    return item


def documented_key(item: Mapping[str, Any]) -> str:
    """The row key as :func:`transaction_row_key`'s docstring describes it, field by field."""
    transfers = []
    for transfer in listed(item.get("transfers")):
        entries = []
        for entry in listed(field(transfer, "items")):
            entry = entry if isinstance(entry, Mapping) else {}
            stable = {
                "coin": coin(entry.get("coin")),
                "count": by_value(entry.get("count")),
                "from": hex_lower(entry.get("fromAddress")),
                "to": hex_lower(entry.get("toAddress")),
            }
            stable |= {name: tx_hash(entry[name]) for name in ("hash", "txHash", "id") if entry.get(name) is not None}
            entries.append(stable)
        transfers.append({"type": hex_lower(field(transfer, "transferType")), "items": sorted(entries, key=canonical)})
    moment = to_timestamp(item.get("date"))
    fields = {
        "date": iso_z(moment) if moment is not None else hex_lower(item.get("date")),
        "type": hex_lower(item.get("transactionType")),
        "coin": hex_lower(field(item, "coinData", "identifier")),
        "count": by_value(field(item, "coinData", "count")),
        "fee_count": by_value(field(item, "fee", "count")),
        "fee_coin": coin(field(item, "fee", "coin")),
        "hash": tx_hash(item.get("hash")),
        "transfers": sorted(transfers, key=canonical),
    }
    return hashlib.sha256(canonical(fields).encode()).hexdigest()[:32]


ODD_VALUES: list[Any] = [
    'é\u2028\x00\x1f"\\/',
    "0XABC",
    "0xAbC",
    "bc1Qxy",
    5,
    5.0,
    "5.00",
    " 7 ",
    None,
    {"b": 1, "a": [1, "x"]},
    True,
    1e-9,
    -0.0,
    1e22,
    float("nan"),
    10**25,
    "NaN",
]


def generated_items(count: int, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def odd() -> Any:
        return rng.choice(ODD_VALUES)

    def entry() -> dict[str, Any]:
        found = {
            "coin": rng.choice([{"identifier": odd()}, {"id": odd()}, odd(), None]),
            "count": odd(),
            "fromAddress": odd(),
            "toAddress": odd(),
        }
        for name in ("hash", "txHash", "id"):
            if rng.random() < 0.4:
                found[name] = rng.choice([odd(), {"id": odd()}])
        return found

    return [
        {
            "date": rng.choice(["2025-01-01T00:00:00Z", "2025-01-01T01:00:00+01:00", 1755864000000, "soon", odd()]),
            "transactionType": odd(),
            "coinData": rng.choice([{"identifier": odd(), "count": odd()}, odd()]),
            "fee": rng.choice([{"count": odd(), "coin": {"identifier": odd()}}, odd()]),
            "hash": rng.choice([odd(), {"id": odd()}]),
            "transfers": rng.choice(
                [
                    None,
                    odd(),
                    [
                        {"transferType": odd(), "items": [entry() for _ in range(rng.randint(0, 3))]}
                        for _ in range(rng.randint(0, 3))
                    ],
                ]
            ),
        }
        for _ in range(count)
    ]


@pytest.mark.parametrize("connection", list(CONNECTIONS))
def test_sandbox_transactions_get_the_documented_key(coinstats_conn: Any, connection: str) -> None:
    coinstats_conn.state.configure(sync_polls=0)
    with CoinStatsHook() as hook:
        pid = CONNECTIONS[connection](hook)
        coinstats_conn.state.set_transaction_count(pid, 500)
        items = list(hook.iter_portfolio_transactions(pid))
    assert len(items) == 500
    assert any(len(item["transfers"]) > 1 for item in items) or connection != "ethereum"  # swaps: two transfers
    assert [transaction_row_key(item) for item in items] == [documented_key(item) for item in items]


def test_generated_items_get_the_documented_key() -> None:
    items = generated_items(4000)
    assert [transaction_row_key(item) for item in items] == [documented_key(item) for item in items]


def test_the_short_number_path_agrees_with_the_exact_one() -> None:
    rng = random.Random(1)
    values: list[Any] = [0.0, -0.0, 5.0, 100.0, 1e15, 1e16, 1e-7, 0.1, 1.7976931348623157e308, 5e-324]
    values += [10**17, -(10**17), 10**18, 10**30, 0, -5, True, None, "5.00", "abc", float("inf")]
    for _ in range(50_000):
        values.append(rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30))
        values.append(round(rng.uniform(-1000, 1000), rng.randint(0, 12)))
        values.append(rng.randint(-(10**19), 10**19))
    assert [key_number(v) for v in values] == [exact_key_number(v) for v in values]
    assert [key_number(v) for v in values] == [by_value(v) for v in values]
