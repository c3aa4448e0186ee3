"""Replace loads (coins, defi, value) take a key that comes again in a later batch: the last row wins.

CoinStats pages can repeat a holding when the portfolio changes mid-read; with ``batch_size=1``
every row is its own batch, so the repeat always lands in a later batch. Rows are the sandbox's
real answer, flattened, loaded through ``SqlTable.load`` into SQLite and a real PostgreSQL
(the ``warehouse`` fixture).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_coinstats.export.sql import SqlTable
from tests.export.helpers import assert_same_rows, db_hook, expected_rows, table_rows

#: A non-key column per dataset whose value tells the repeated row from the first one.
CHANGED_COLUMN = {"coins": "count", "defi": "asset_amount", "value": "total_value"}


@pytest.mark.parametrize("dataset", ["coins", "defi", "value"])
def test_a_key_repeated_in_a_later_batch_replaces_the_earlier_row(
    coinstats_conn: Any, portfolio: str, warehouse: str, dataset: str
) -> None:
    rows = expected_rows(dataset, portfolio)
    assert rows, dataset
    table = SqlTable(db_hook(warehouse), f"coinstats_{dataset}", dataset, batch_size=1)
    table.prepare(create=True)
    table.load(rows, portfolio_id=portfolio, scope={"currency": "USD"})  # what the last run left

    again = {**rows[0], CHANGED_COLUMN[dataset]: Decimal("42.5")}
    assert table.load([*rows, again], portfolio_id=portfolio, scope={"currency": "USD"}) == len(rows) + 1

    assert_same_rows(dataset, table_rows(warehouse, dataset, portfolio), [again, *rows[1:]])
