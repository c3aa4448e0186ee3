"""The column catalogue is the single source of column names: a flattener cannot drift from it.

Every flattener runs on real sandbox answers (read over HTTP through the hook, for wallets and an
exchange whose data differ in shape) and must return exactly its dataset's own columns, in
catalogue order. A flattener with a misspelt, missing, extra or misplaced column fails on its
first row instead of exporting an always-null column.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_coinstats.export import flatteners, get_schema, iter_records, iter_rows
from airflow_provider_coinstats.export.columns import DATASETS
from airflow_provider_coinstats.export.flatteners import FLATTENERS, FlattenerSpec, RowContext
from airflow_provider_coinstats.export.rows import ColumnMismatchError
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from tests.helpers import ADDRESS

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CONNECTIONS: dict[str, Callable[[CoinStatsHook], str]] = {
    "ethereum": lambda h: h.connect_wallet(ADDRESS, "ethereum").portfolio_id,
    "bitcoin": lambda h: h.connect_wallet("bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh", "bitcoin").portfolio_id,
    "solana": lambda h: h.connect_wallet("7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV", "solana").portfolio_id,
    "binance": lambda h: h.connect_exchange("binance", {"apiKey": "k-1", "apiSecret": "s-1"}).portfolio_id,
}


def sandbox_answers(hook: CoinStatsHook, pid: str) -> dict[str, Any]:
    """What the hook returns for every dataset of one portfolio."""
    return {
        "coins": hook.get_portfolio_coins(pid, include_risk_score=True),
        "value": hook.get_portfolio_value(pid, "EUR"),
        "chart": hook.get_portfolio_chart(pid, "1y"),
        "transactions": list(hook.iter_portfolio_transactions(pid)),
        "defi": hook.get_portfolio_defi(pid),
        "snapshot_items": list(hook.iter_portfolio_snapshot_items(pid)),
        "pl_history": hook.get_portfolio_pl_history(pid),
    }


def own_columns(dataset: str) -> list[str]:
    return [name for name in get_schema(dataset).column_names() if name not in ("portfolio_id", "extracted_at")]


@pytest.fixture
def answers(coinstats_conn: Any, request: pytest.FixtureRequest) -> dict[str, Any]:
    coinstats_conn.state.configure(sync_polls=0)
    with CoinStatsHook() as hook:
        pid = CONNECTIONS[request.param](hook)
        coinstats_conn.state.set_transaction_count(pid, 300)
        return {"pid": pid, **sandbox_answers(hook, pid)}


def test_every_dataset_has_a_flattener_and_a_schema() -> None:
    assert set(FLATTENERS) == set(DATASETS)


@pytest.mark.parametrize("answers", list(CONNECTIONS), indirect=True)
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_each_flattener_fills_exactly_its_catalogue_columns(answers: dict[str, Any], dataset: str) -> None:
    ctx = RowContext(answers["pid"], NOW, "EUR")
    records = list(iter_records(dataset, answers[dataset]))
    assert records, f"the sandbox gave no {dataset} records"
    for record in records:
        assert list(FLATTENERS[dataset].flatten(record, ctx)) == own_columns(dataset)
    rows = list(iter_rows(dataset, answers[dataset], portfolio_id=answers["pid"], extracted_at=NOW, currency="EUR"))
    assert [list(row) for row in rows] == [get_schema(dataset).column_names()] * len(records)


def misspelt(flatten: flatteners.Flattener, rename: dict[str, str]) -> flatteners.Flattener:
    """``flatten`` with keys renamed as a typo would (``None`` as the new name drops the key)."""

    def flatten_with_typo(item: Any, ctx: RowContext) -> dict[str, Any]:
        values = flatten(item, ctx)
        out = {}
        for name, value in values.items():
            new = rename.get(name, name)
            if new is not None:
                out[new] = value
        return out

    return flatten_with_typo


@pytest.mark.parametrize("answers", ["ethereum"], indirect=True)
@pytest.mark.parametrize(
    ("dataset", "rename", "message"),
    [
        ("coins", {"symbol": "symbl"}, "missing symbol; not in the catalogue: symbl"),
        ("transactions", {"fee_price": None}, "missing fee_price"),
        ("chart", {"value_btc": "value_btc", "value_eth": "value_ether"}, "not in the catalogue: value_ether"),
        ("pl_history", {"net_flow": "net_flows"}, "missing net_flow; not in the catalogue: net_flows"),
    ],
)
def test_a_misspelt_or_missing_column_fails_the_first_row(
    answers: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    dataset: str,
    rename: dict[str, str | None],
    message: str,
) -> None:
    """Before the catalogue check, ``symbl`` was dropped and ``symbol`` exported as null on every row."""
    spec = FLATTENERS[dataset]
    monkeypatch.setitem(
        FLATTENERS,
        dataset,
        FlattenerSpec(spec.accepts, spec.expected, misspelt(spec.flatten, rename)),
    )
    rows = iter_rows(dataset, answers[dataset], portfolio_id=answers["pid"], extracted_at=NOW)
    with pytest.raises(ColumnMismatchError, match=f"{dataset} flattener does not match the column catalogue") as raised:
        next(rows)
    assert message in str(raised.value)


@pytest.mark.parametrize("answers", ["ethereum"], indirect=True)
def test_an_extra_or_misplaced_column_fails_the_first_row(
    answers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = FLATTENERS["value"]

    def extra(item: Any, ctx: RowContext) -> dict[str, Any]:
        return {**spec.flatten(item, ctx), "total_value_usd": 1}

    def swapped(item: Any, ctx: RowContext) -> dict[str, Any]:
        values = spec.flatten(item, ctx)
        first, second, *rest = values
        return {second: values[second], first: values[first], **{name: values[name] for name in rest}}

    for flatten, message in ((extra, "not in the catalogue: total_value_usd"), (swapped, "total_value comes where")):
        monkeypatch.setitem(FLATTENERS, "value", FlattenerSpec(spec.accepts, spec.expected, flatten))
        with pytest.raises(ColumnMismatchError, match=message):
            list(iter_rows("value", answers["value"], portfolio_id=answers["pid"], extracted_at=NOW))
