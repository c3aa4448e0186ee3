"""Export CoinStats portfolio data to warehouses: flat, documented record schemas per dataset.

:mod:`.schemas` defines the columns and keys of each dataset and the pure functions that turn
CoinStats JSON into flat rows; file and SQL destinations build on it. Importing this package is
cheap (standard library only), so operator modules can use it at DAG-parse time.

Example::

    from airflow_provider_coinstats.export import iter_rows, to_jsonable

    rows = iter_rows("coins", hook.get_portfolio_coins(pid), portfolio_id=pid, extracted_at=now)
    lines = [json.dumps(to_jsonable(row)) for row in rows]
"""

from airflow_provider_coinstats.export.schemas import (
    DATASETS,
    Column,
    ColumnType,
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

__all__ = [
    "DATASETS",
    "Column",
    "ColumnType",
    "DatasetSchema",
    "DefiPosition",
    "SnapshotBalance",
    "defi_positions",
    "flatten",
    "flatten_value",
    "get_schema",
    "iter_records",
    "iter_rows",
    "snapshot_balances",
    "to_jsonable",
    "transaction_row_key",
]
