"""Flat, documented record schemas for CoinStats portfolio data, and the pure functions that fill them.

Each exportable dataset has a :class:`DatasetSchema`: an ordered tuple of typed, documented
:class:`Column` objects and the natural key a loader upserts on. :func:`flatten` turns one
CoinStats JSON item into one flat row (a ``dict`` whose keys are exactly
``schema.column_names()``, in order); :func:`iter_rows` does that for a whole hook answer.

==================  =========================================================  ==================================
dataset             one row per                                                key
==================  =========================================================  ==================================
``coins``           holding (GET /portfolio/coins item)                        portfolio_id, coin_id
``value``           extraction of GET /portfolio/value                         portfolio_id, extracted_at, currency
``chart``           chart point ``[ts_ms, usd, btc, eth]``                     portfolio_id, timestamp
``transactions``    transaction (GET /portfolio/transactions item)             portfolio_id, row_key
``defi``            asset of a DeFi investment (GET /portfolio/defi)           portfolio_id, protocol_id, chain,
                                                                               investment_id, asset_index
``snapshot_items``  coin balance of a daily snapshot                           portfolio_id, date, symbol
``pl_history``      point of GET /portfolio/pl/history                         portfolio_id, timestamp, currency
==================  =========================================================  ==================================

Every schema starts with ``portfolio_id`` and ``extracted_at``; ``transactions`` has ``row_key``
third (see :func:`transaction_row_key`: CoinStats transactions carry no id).

Value conventions (the contract writers and warehouses rely on):

* ``decimal`` columns hold :class:`decimal.Decimal`, built from the JSON number with
  ``Decimal(str(x))``. ``str`` of a float is its shortest round-trip text, i.e. the digits
  CoinStats sent, so ``0.1`` stays ``Decimal("0.1")`` instead of
  ``0.1000000000000000055511151231257827``; warehouses get exact NUMERIC values. Derived
  amounts (``value_usd = count * price_usd``) are multiplied exactly, without the 28-digit
  rounding of the default decimal context. The scale varies (prices of 1e-10 BTC exist), so a
  SQL writer must choose its NUMERIC precision/scale. NaN and infinities become ``None``.
  Text renderings (:func:`to_jsonable`, for CSV/JSONL) write plain digits, never an exponent.
* ``timestamp`` columns hold timezone-aware UTC :class:`datetime.datetime`. Numbers are epoch
  milliseconds (CoinStats charts document seconds but send 13-digit ms; values below 1e11 are
  taken as seconds), strings are ISO-8601 (a trailing ``Z`` is accepted; naive means UTC).
* ``integer`` is ``int``, ``boolean`` is ``bool``, ``string`` is ``str``.
* A missing or malformed optional field gives ``None``, never ``KeyError``. Key columns and the
  columns declared not-null are never ``None``: an item without them raises
  :class:`~airflow_provider_coinstats.exceptions.CoinStatsValidationError`, because a row that
  cannot be keyed cannot be loaded.
* Rows never contain dicts or lists: nested parts are flattened into named columns, lists are
  counted or joined.

This module gathers the public names of the modules that do the work, one job each:
:mod:`.columns` (the column catalogue, the single source of column names), :mod:`.values`
(value conversion), :mod:`.row_key` (the transaction row key), :mod:`.records` (DeFi and
snapshot records), :mod:`.flatteners` (item to row, per dataset), :mod:`.rows` (dispatch and the
per-row checks) and :mod:`.render` (text renderings). All are pure (standard library plus this
provider's exceptions): operator modules import them at DAG-parse time.

Example::

    hook = CoinStatsHook()
    now = datetime.now(UTC)
    rows = list(iter_rows("coins", hook.get_portfolio_coins(pid), portfolio_id=pid, extracted_at=now))
    rows[0]["price_usd"]          # Decimal('95120.0')
    to_jsonable(rows[0])["extracted_at"]  # '2026-01-01T00:00:00Z'
"""

from airflow_provider_coinstats.export.columns import (
    DATASETS,
    PYTHON_TYPES,
    Column,
    ColumnType,
    DatasetSchema,
    get_schema,
)
from airflow_provider_coinstats.export.records import (
    DefiPosition,
    SnapshotBalance,
    defi_positions,
    snapshot_balances,
)
from airflow_provider_coinstats.export.render import to_jsonable
from airflow_provider_coinstats.export.row_key import transaction_row_key
from airflow_provider_coinstats.export.rows import (
    ColumnMismatchError,
    flatten,
    flatten_value,
    iter_records,
    iter_rows,
)

__all__ = [
    "DATASETS",
    "PYTHON_TYPES",
    "Column",
    "ColumnMismatchError",
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
