"""A load keeps no batch of row dicts alive: each row becomes its key and value tuple as it arrives.

The rows are the sandbox's real transactions, flattened, loaded through ``SqlTable.load`` into
SQLite and a real PostgreSQL and MariaDB (the ``warehouse`` fixture). Each row is handed over as a
``dict`` subclass that can be weakly referenced, so the test sees how many rows the load still
holds when the next one is read; then the table is compared with the rows.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from airflow_provider_coinstats.export.sql import SqlTable
from tests.export.helpers import assert_same_rows, db_hook, expected_rows, table_rows


class Row(dict[str, Any]):
    """A row dict that can be weakly referenced (a plain ``dict`` cannot)."""


def test_a_load_holds_no_batch_of_row_dicts(coinstats_conn: Any, portfolio: str, warehouse: str) -> None:
    rows = expected_rows("transactions", portfolio)
    assert len(rows) == 250
    table = SqlTable(db_hook(warehouse), "coinstats_transactions", "transactions", batch_size=100)
    table.prepare(create=True)
    handed: list[weakref.ref[Row]] = []
    most_alive = 0

    def stream() -> Iterator[Row]:
        nonlocal most_alive
        for row in rows:
            # Rows handed over earlier that the load still references (the loop variable holds one).
            most_alive = max(most_alive, sum(ref() is not None for ref in handed))
            fresh = Row(row)
            handed.append(weakref.ref(fresh))
            yield fresh

    assert table.load(stream(), portfolio_id=portfolio) == 250
    # Before, a whole batch (here 100 rows) stayed alive until it was written.
    assert most_alive <= 1
    assert_same_rows("transactions", table_rows(warehouse, "transactions", portfolio), rows)
