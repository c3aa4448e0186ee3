"""Value conversion: one CoinStats JSON value to the Python type of a column, or ``None``.

Every function takes whatever JSON gave (or ``None``) and never raises on malformed input: a
missing or malformed optional field becomes ``None`` (the conventions are documented in
:mod:`.schemas`). They run once per cell of every exported row, so the common JSON type is
tested first, with ``type(x) is ...`` (the ABC checks cost several times more).

Example::

    to_decimal(0.1)                           # Decimal('0.1'), the digits CoinStats sent
    to_timestamp("2025-08-28T08:35:50.384Z")  # datetime(2025, 8, 28, 8, 35, 50, 384000, tzinfo=UTC)
    iso_z(datetime(2026, 1, 1, tzinfo=UTC))   # '2026-01-01T00:00:00Z'
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Final, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Exact arithmetic: the product of two JSON numbers never needs more digits than this, whereas
#: the default context would round to 28 significant digits.
EXACT: Final = Context(prec=400)
# Epoch numbers below this are seconds (up to year 5138), above it milliseconds (after 1973-03).
_MS_THRESHOLD: Final = 1e11
#: One encoder for every call: json.dumps with options builds a new encoder each time.
_CANONICAL_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or ``None`` as soon as a step is not a JSON object."""
    for key in path:
        if type(obj) is not dict and not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def as_mapping(obj: Any) -> Mapping[str, Any]:
    """``obj`` if it is a JSON object, else an empty one."""
    return obj if type(obj) is dict or isinstance(obj, Mapping) else {}


def as_list(obj: Any) -> list[Any]:
    """``obj`` if it is a JSON array (a tuple is copied into a list), else an empty list."""
    if type(obj) is list:
        return obj
    return list(obj) if isinstance(obj, list | tuple) else []


def to_decimal(value: Any) -> Decimal | None:
    """A finite ``Decimal`` from a JSON number or numeric string; ``str`` of a float keeps its digits."""
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


def exact_product(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    """``a * b`` without rounding (``None`` if either is)."""
    return None if a is None or b is None else EXACT.multiply(a, b)


def to_int(value: Any) -> int | None:
    """An ``int`` from a JSON integer or an integral number; booleans are not integers."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    number = to_decimal(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def to_bool(value: Any) -> bool | None:
    """``True``/``False`` from a JSON boolean, ``"true"``/``"false"`` or ``1``/``0``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-ASCII kept: the same text for the same JSON value, every run."""
    return _CANONICAL_ENCODER.encode(value)


def to_text(value: Any) -> str | None:
    """A string as is; any other JSON value (objects too) as canonical JSON text."""
    if type(value) is str or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    return canonical_json(value)


def to_timestamp(value: Any) -> datetime | None:
    """An aware UTC ``datetime`` from epoch seconds or milliseconds, or ISO-8601 text (naive = UTC)."""
    if type(value) is str:
        text = value.strip()
        if len(text) >= 10 and text[4] == "-":  # YYYY-MM-DD...: skip the Decimal parse that would fail
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                return None
            return _utc(moment)
        return _timestamp_from_text(text) if text else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str):
        return to_timestamp(str(value))
    if isinstance(value, int | float | Decimal):
        return _from_epoch(float(value))
    return None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timestamp_from_text(text: str) -> datetime | None:
    number = to_decimal(text)
    if number is not None:
        return _from_epoch(float(number))
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _from_epoch(number: float) -> datetime | None:
    if not math.isfinite(number):
        return None
    ms = number if abs(number) >= _MS_THRESHOLD else number * 1000
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return None


def iso_z(moment: datetime) -> str:
    """UTC ISO-8601 text ending in ``Z`` (microseconds only when there are any); naive means UTC."""
    return _utc(moment).isoformat().replace("+00:00", "Z")


def plain_digits(number: Decimal) -> str:
    """The digits of ``number`` without exponent: ``Decimal("1E-10")`` -> ``'0.0000000001'``."""
    # str() writes plain digits exactly as format "f" does unless it needs an exponent, and it
    # costs half as much; amounts from JSON floats rarely need one.
    text = str(number)
    return text if "E" not in text else format(number, "f")


def remember_last(render: Callable[[T], R]) -> Callable[[T], R]:
    """``render`` that keeps its last argument (compared by identity) and answer, and reuses them.

    For the ``extracted_at`` column: every row of an extraction holds the same object, so it is
    rendered once per run instead of once per row (another column's values would evict it on
    every call). The pair is replaced as one tuple: a thread never sees one argument with
    another's answer.

    Example::

        text = remember_last(iso_z)
        text(now) is text(now)  # True: rendered once
    """
    last: list[tuple[object, Any]] = [(object(), None)]

    def cached(value: T) -> R:
        seen, answer = last[0]
        if seen is value:
            return answer  # type: ignore[no-any-return]
        answer = render(value)
        last[0] = (value, answer)
        return answer

    return cached
