"""Dispatch: the hook's answer for a dataset -> records -> flat rows, each checked against the catalogue.

:func:`iter_records` unwraps what the hook returns into the items a flattener takes,
:func:`flatten`/:func:`iter_rows` turn them into rows. Every row is checked on its way out: its
keys must be exactly the catalogue's columns in order (else :class:`ColumnMismatchError`, a bug
in a flattener, never bad data), and key and not-null columns must have a value (else
:class:`~airflow_provider_coinstats.exceptions.CoinStatsValidationError`: a row that cannot be
keyed cannot be loaded). Both checks cost well under a microsecond per row.

Example::

    now = datetime.now(UTC)
    for row in iter_rows("transactions", hook.iter_portfolio_transactions(pid), portfolio_id=pid,
                         extracted_at=now):
        writer.write(to_jsonable(row))
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.columns import DATASETS, DatasetSchema, get_schema
from airflow_provider_coinstats.export.flatteners import FLATTENERS, RowContext
from airflow_provider_coinstats.export.records import defi_positions, snapshot_balances

_COMMON_COLUMNS = ("portfolio_id", "extracted_at")

if set(FLATTENERS) != set(DATASETS):  # pragma: no cover - a dataset added to one table only
    raise RuntimeError(f"datasets without a flattener or a schema: {sorted(set(FLATTENERS) ^ set(DATASETS))}")


class ColumnMismatchError(RuntimeError):
    """A flattener produced other columns than :mod:`.columns` declares: a bug in the provider, not in the data.

    Example::

        ColumnMismatchError("coins", expected=["symbol"], produced=["symbl"])
        # coins flattener does not match the column catalogue: missing symbol; not in the catalogue: symbl
    """

    def __init__(self, dataset: str, expected: Sequence[str], produced: Sequence[str]) -> None:
        missing = [name for name in expected if name not in produced]
        unknown = [name for name in produced if name not in expected]
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"not in the catalogue: {', '.join(unknown)}")
        if not problems:
            at = next(i for i, (a, b) in enumerate(zip(expected, produced, strict=True)) if a != b)
            problems.append(f"{produced[at]} comes where the catalogue has {expected[at]}")
        super().__init__(f"{dataset} flattener does not match the column catalogue: {'; '.join(problems)}")
        self.dataset = dataset
        self.missing = missing
        self.unknown = unknown


def row_context(portfolio_id: Any, extracted_at: Any, currency: Any) -> RowContext:
    """Validated :class:`~.flatteners.RowContext`: extraction time in UTC, currency upper-cased."""
    if not isinstance(portfolio_id, str) or not portfolio_id:
        raise CoinStatsValidationError("portfolio_id", "must be a non-empty string")
    if not isinstance(extracted_at, datetime) or extracted_at.utcoffset() is None:
        raise CoinStatsValidationError("extracted_at", "must be a timezone-aware datetime")
    if not isinstance(currency, str) or not currency.strip():
        raise CoinStatsValidationError("currency", "must be a non-empty string such as USD")
    return RowContext(portfolio_id, extracted_at.astimezone(UTC), currency.strip().upper())


def row_maker(schema: DatasetSchema, ctx: RowContext) -> Callable[[Any], dict[str, Any]]:
    """The function that makes one checked row of ``schema`` from one item, for one extraction.

    Everything per dataset (column names, required columns, the flattener) is looked up once here,
    not per row.
    """
    spec = FLATTENERS[schema.name]
    accepts, flattener, dataset, expected = spec.accepts, spec.flatten, schema.name, spec.expected
    names = schema.column_names()
    required = tuple(c.name for c in schema.columns if not c.nullable and c.name not in _COMMON_COLUMNS)
    portfolio_id, extracted_at = ctx.portfolio_id, ctx.extracted_at

    def make(item: Any) -> dict[str, Any]:
        if not accepts(item):
            raise CoinStatsValidationError("item", f"a {dataset} item must be {expected}, got {type(item).__name__}")
        row = {"portfolio_id": portfolio_id, "extracted_at": extracted_at, **flattener(item, ctx)}
        if list(row) != names:
            raise ColumnMismatchError(dataset, names, list(row))
        for name in required:
            if row[name] is None:
                raise CoinStatsValidationError("item", f"{dataset} item has no usable value for {name}")
        return row

    return make


def flatten(
    dataset: str, item: Any, *, portfolio_id: str, extracted_at: datetime, currency: str = "USD"
) -> dict[str, Any]:
    """One flat row of ``dataset`` from one CoinStats item; keys are ``get_schema(dataset).column_names()``.

    ``item`` is what the hook yields per record: a coins/transactions/pl_history JSON object, the
    whole /portfolio/value object, a chart point list, a :class:`~.records.DefiPosition` or a
    :class:`~.records.SnapshotBalance`. ``currency`` fills the ``currency`` column of ``value``,
    ``transactions`` and ``pl_history`` and must be the currency the data was requested in; other
    datasets ignore it (their amount columns name their currency).

    Example::

        row = flatten("chart", [1755864000000, 1234.5, 0.012, 0.35], portfolio_id="p1",
                      extracted_at=datetime(2026, 1, 1, tzinfo=UTC))
        row["timestamp"], row["value_usd"]  # (datetime(2025, 8, 22, 12, 0, tzinfo=UTC), Decimal('1234.5'))
    """
    return row_maker(get_schema(dataset), row_context(portfolio_id, extracted_at, currency))(item)


def flatten_value(
    payload: Mapping[str, Any], *, portfolio_id: str, extracted_at: datetime, currency: str = "USD"
) -> dict[str, Any]:
    """The single ``value`` row of one GET /portfolio/value answer.

    Example::

        flatten_value(hook.get_portfolio_value(pid, "EUR"), portfolio_id=pid, extracted_at=now, currency="EUR")
    """
    return flatten("value", payload, portfolio_id=portfolio_id, extracted_at=extracted_at, currency=currency)


def _unwrap(payload: Any, keys: tuple[str, ...]) -> Iterable[Any]:
    if isinstance(payload, Mapping):
        for key in keys:
            if isinstance(payload.get(key), list):
                return payload[key]  # type: ignore[no-any-return]
        raise CoinStatsValidationError("payload", f"expected a list or an object with {' or '.join(keys)}")
    if isinstance(payload, str | bytes) or not isinstance(payload, Iterable):
        raise CoinStatsValidationError("payload", "expected a list of items")
    return payload


def iter_records(dataset: str, payload: Any) -> Iterator[Any]:
    """The items :func:`flatten` takes, from what the hook returns for ``dataset``.

    ``payload`` is the hook's answer: a list or iterator of items (coins, chart, transactions,
    snapshot_items, pl_history; a raw ``{"result": [...]}``/``{"data": [...]}`` envelope works
    too) or one object (value, defi). Iterators are consumed lazily, so a 100,000-transaction
    portfolio never sits in memory.

    Example::

        list(iter_records("snapshot_items", hook.iter_portfolio_snapshot_items(pid)))  # SnapshotBalance, ...
    """
    get_schema(dataset)
    if dataset == "value":
        yield payload
    elif dataset == "defi":
        yield from defi_positions(payload)
    elif dataset == "snapshot_items":
        for item in _unwrap(payload, ("result", "data")):
            yield from snapshot_balances(item)
    else:
        yield from _unwrap(payload, ("result", "data"))


def iter_rows(
    dataset: str, payload: Any, *, portfolio_id: str, extracted_at: datetime, currency: str = "USD"
) -> Generator[dict[str, Any]]:
    """Flat rows of ``dataset`` from a whole hook answer (see :func:`iter_records` and :func:`flatten`).

    Example::

        now = datetime.now(UTC)
        for row in iter_rows("transactions", hook.iter_portfolio_transactions(pid), portfolio_id=pid,
                             extracted_at=now):
            writer.write(to_jsonable(row))
    """
    make = row_maker(get_schema(dataset), row_context(portfolio_id, extracted_at, currency))
    yield from map(make, iter_records(dataset, payload))
