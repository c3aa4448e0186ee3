"""The row key of a transaction: CoinStats transactions carry no id, so one is derived from stable fields.

The key is stored in warehouses (the ``transactions`` primary key), so its text never changes
between releases: :func:`transaction_row_key` documents exactly what goes in. It runs once per
exported transaction, so the common shapes (float amounts, one transfer with one item) take
short paths that give the same text as the general ones.

Example::

    transaction_row_key({"date": "2025-08-28T08:35:50.384Z", "transactionType": "Received",
                         "coinData": {"identifier": "ethereum", "count": 0.5}})
    # -> a 32-character lower-case hex string, identical on every run
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.values import (
    EXACT,
    as_list,
    as_mapping,
    dig,
    iso_z,
    to_decimal,
    to_text,
    to_timestamp,
)

#: The standard library's JSON string quoting (its C version), as ``json.dumps`` uses it.
_quote: Final = json.encoder.encode_basestring
#: Integers up to this size print the same with ``str`` as through an exact ``Decimal``.
_PLAIN_INT_LIMIT: Final = 10**18


def key_number(value: Any) -> str | None:
    """A quantity's canonical text: compared by value (``5``, ``5.0``, ``"5.00"`` give ``'5'``), no exponent."""
    if type(value) is float and math.isfinite(value):
        # repr is the shortest round-trip text, which is what Decimal(repr(x)) keeps; without an
        # exponent, normalising it only strips trailing zeros (and a bare point).
        if value == 0:
            return "0"
        text = repr(value)
        if "e" not in text:
            return text.rstrip("0").rstrip(".") if "." in text else text
    elif type(value) is int and -_PLAIN_INT_LIMIT < value < _PLAIN_INT_LIMIT:
        return str(value)
    return exact_key_number(value)


def exact_key_number(value: Any) -> str | None:
    """:func:`key_number` through ``Decimal`` for every input (the short paths must agree with it)."""
    number = to_decimal(value)
    if number is None:
        return None if value is None else to_text(value)
    if number.is_zero():
        return "0"  # 0, 0.0, -0.0 and 0E-8 are the same quantity
    return format(number.normalize(EXACT), "f")


def _text_json(value: Any) -> str:
    """JSON of a text field: ``null``, or the text (canonical JSON for non-strings), ``0x`` hex lower-cased."""
    if type(value) is str:
        text = value
    elif value is None:
        return "null"
    else:
        text = to_text(value) or ""
    # EVM addresses and hashes are case-insensitive hex; other encodings (base58) are not.
    if text[:2] in ("0x", "0X"):
        text = text.lower()
    return _quote(text)


def _number_json(value: Any) -> str:
    text = key_number(value)
    if text is None:
        return "null"
    # Digits, sign and point need no escaping; anything else (a non-numeric string) is quoted properly.
    return f'"{text}"' if type(value) is float or type(value) is int else _quote(text)


def coin_id(coin: Any) -> Any:
    """``identifier`` of a CoinDto; wallet-style payloads name it ``id``."""
    coin_map = as_mapping(coin)
    identifier = coin_map.get("identifier")
    return identifier if identifier is not None else coin_map.get("id")


def _coin_json(coin: Any) -> str:
    return _text_json(coin_id(coin))


def _hash_json(value: Any) -> str:
    return _text_json(value.get("id") if isinstance(value, Mapping) else value)


def _json_list(texts: list[str]) -> str:
    # A list's order must not matter, and the canonical text is what it is sorted by.
    if len(texts) > 1:
        texts.sort()
    return "[" + ",".join(texts) + "]"


def _entry_json(entry: Any) -> str:
    # Keys in sorted order: coin, count, from, [hash, id,] to, [txHash].
    get = as_mapping(entry).get
    ids = ""  # usually: few transfer items carry ids
    if get("hash") is not None:
        ids = f',"hash":{_hash_json(get("hash"))}'
    if get("id") is not None:
        ids += f',"id":{_hash_json(get("id"))}'
    tx_hash = f',"txHash":{_hash_json(get("txHash"))}' if get("txHash") is not None else ""
    return (
        f'{{"coin":{_coin_json(get("coin"))},"count":{_number_json(get("count"))},'
        f'"from":{_text_json(get("fromAddress"))}{ids},"to":{_text_json(get("toAddress"))}{tx_hash}}}'
    )


def _transfer_json(transfer: Any) -> str:
    entries = _json_list([_entry_json(entry) for entry in as_list(dig(transfer, "items"))])
    return f'{{"items":{entries},"type":{_text_json(dig(transfer, "transferType"))}}}'


def row_key(item: Mapping[str, Any], moment: datetime | None, transfers: list[Any]) -> str:
    """:func:`transaction_row_key` of a transaction whose ``date`` and ``transfers`` are already read.

    The canonical JSON is written out directly, keys in sorted order, strings quoted by the
    standard library's own JSON string encoder: the same text as ``json.dumps(..., sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`` of the documented fields
    (``tests/export/test_row_key.py`` checks exactly that), in a third of the time.
    """
    coin_data = as_mapping(item.get("coinData"))
    fee = as_mapping(item.get("fee"))
    date = _quote(iso_z(moment)) if moment is not None else _text_json(item.get("date"))
    transfers_json = _json_list([_transfer_json(transfer) for transfer in transfers])
    canonical = (
        f'{{"coin":{_text_json(coin_data.get("identifier"))},"count":{_number_json(coin_data.get("count"))},'
        f'"date":{date},"fee_coin":{_coin_json(fee.get("coin"))},"fee_count":{_number_json(fee.get("count"))},'
        f'"hash":{_hash_json(item.get("hash"))},"transfers":{transfers_json},'
        f'"type":{_text_json(item.get("transactionType"))}}}'
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


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
    return row_key(item, to_timestamp(item.get("date")), as_list(item.get("transfers")))
