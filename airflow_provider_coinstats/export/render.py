"""Text renderings of rows for files: JSON-able values (:func:`to_jsonable`) and JSON Lines.

Decimals become plain digit strings (exact, never an exponent, never a float), timestamps UTC
ISO-8601 ending in ``Z``; strings, integers, booleans and ``None`` are kept. Both run once per
exported row, so the common types are tested first and a run's single ``extracted_at`` is
rendered once, not once per row.

JSON Lines are encoded with ``msgspec`` (already installed with Airflow's task SDK on every
supported Airflow line), which writes byte for byte what ``json.dumps(..., ensure_ascii=False,
separators=(",", ":"))`` writes for these values, about three times faster;
``tests/export/test_render.py`` compares the two over every Unicode code point.

Example::

    to_jsonable({"price_usd": Decimal("1.112E-5"), "extracted_at": datetime(2026, 1, 1, tzinfo=UTC)})
    # -> {'price_usd': '0.00001112', 'extracted_at': '2026-01-01T00:00:00Z'}
    jsonl_encoder()({"a": Decimal("1.50")})  # '{"a":"1.50"}'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from airflow_provider_coinstats.export.values import iso_z, plain_digits, remember_last

_KEPT = frozenset({str, int, bool, type(None)})

_extracted_at_text: Final = remember_last(iso_z)


def to_jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` that ``json.dumps`` accepts, for CSV/JSONL writers.

    ``Decimal`` becomes a plain digit string without exponent (``Decimal("1E-10")`` ->
    ``"0.0000000001"``), so no precision is lost to JSON floats; ``datetime`` becomes UTC
    ISO-8601 ending in ``Z`` (naive means UTC). Strings, ints, bools and ``None`` are kept.

    Example::

        to_jsonable({"price_usd": Decimal("1.112E-5"), "extracted_at": datetime(2026, 1, 1, tzinfo=UTC)})
        # -> {'price_usd': '0.00001112', 'extracted_at': '2026-01-01T00:00:00Z'}
    """
    out: dict[str, Any] = {}
    for name, value in row.items():
        kind = type(value)
        if kind is Decimal:
            out[name] = plain_digits(value)
        elif kind in _KEPT:
            out[name] = value
        elif isinstance(value, datetime):
            out[name] = _extracted_at_text(value) if name == "extracted_at" else iso_z(value)
        elif isinstance(value, Decimal):
            out[name] = plain_digits(value)
        else:
            out[name] = value
    return out


def jsonl_encoder() -> Callable[[Mapping[str, Any]], str]:
    """A function from a row to its JSON Lines line (no newline): compact, non-ASCII kept, keys in row order.

    Example::

        line = jsonl_encoder()
        line({"portfolio_id": "p1", "count": Decimal("0.5"), "note": None})
        # '{"portfolio_id":"p1","count":"0.5","note":null}'
    """
    import msgspec  # only file exports need it; importing the export package stays standard-library only

    encode = msgspec.json.Encoder().encode

    def line(row: Mapping[str, Any]) -> str:
        return encode(to_jsonable(row)).decode()

    return line
