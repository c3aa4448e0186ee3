"""Helpers the export tests share: task contexts, operators, and reading back what landed."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from airflow_provider_coinstats.export import get_schema, to_jsonable
from airflow_provider_coinstats.export.extract import ExportOptions, extract_rows
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator
from airflow_provider_coinstats.transfers.coinstats_to_sql import CoinStatsToSqlOperator

ALL_DATASETS = ["coins", "value", "chart", "transactions", "defi", "snapshot_items", "pl_history"]


LOGICAL_DATE = datetime(2026, 1, 1, tzinfo=UTC)


DATA_ENDPOINTS = (
    "portfolio_coins",
    "portfolio_value",
    "portfolio_chart",
    "portfolio_transactions",
    "portfolio_defi",
    "portfolio_snapshot_items",
    "portfolio_pl_history",
)


def context(run_id: str = "scheduled__2026-01-01T00:00:00+00:00") -> dict[str, Any]:
    """The parts of the task context the export operators read."""
    return {"logical_date": LOGICAL_DATE, "dag_run": SimpleNamespace(run_id=run_id)}


def sql_export(conn_id: str, portfolio_id: str, datasets: list[str], **kwargs: Any) -> CoinStatsToSqlOperator:
    return CoinStatsToSqlOperator(
        task_id="load", portfolio_id=portfolio_id, datasets=datasets, sql_conn_id=conn_id, outlets=[], **kwargs
    )


def db_hook(conn_id: str) -> Any:
    return sql_export(conn_id, "unused", ["coins"]).get_db_hook()


def table_rows(conn_id: str, dataset: str, portfolio_id: str) -> list[dict[str, Any]]:
    names = get_schema(dataset).column_names()
    hook = db_hook(conn_id)
    records = hook.get_records(
        f"SELECT {', '.join(names)} FROM coinstats_{dataset} WHERE portfolio_id = {hook.placeholder}", (portfolio_id,)
    )
    return [dict(zip(names, record, strict=True)) for record in records]


def normalized(dataset: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row as comparable values: whatever type each database hands back for a column."""
    out: dict[str, Any] = {}
    for column in get_schema(dataset).columns:
        value = row[column.name]
        if value is None or column.name == "extracted_at":
            out[column.name] = None if column.name == "extracted_at" else value
        elif column.type == "decimal":
            out[column.name] = float(value)  # SQLite keeps NUMERIC as REAL: compare at double precision
        elif column.type == "timestamp":
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            out[column.name] = moment.astimezone(UTC)
        elif column.type == "boolean":
            out[column.name] = bool(value)
        else:
            out[column.name] = value
    return out


def assert_same_rows(dataset: str, actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    key = [name for name in get_schema(dataset).key if name != "extracted_at"]
    want = {tuple(r[k] for k in key): r for r in (normalized(dataset, row) for row in expected)}
    assert len(actual) == len(expected) == len(want), dataset
    for row in (normalized(dataset, row) for row in actual):
        expected_row = want[tuple(row[k] for k in key)]
        for name, value in expected_row.items():
            if isinstance(value, float):
                assert math.isclose(row[name], value, rel_tol=1e-12), (dataset, name, row[name], value)
            else:
                assert row[name] == value, (dataset, name, row[name], value)


def expected_rows(dataset: str, portfolio_id: str) -> list[dict[str, Any]]:
    """The sandbox's current answer for ``dataset``, flattened by the documented schema."""
    hook = CoinStatsHook()
    rows = extract_rows(
        hook, dataset, portfolio_id, extracted_at=datetime.now(UTC), options=ExportOptions(), since=None
    )
    return list(rows)


def data_requests(server: Any) -> list[Any]:
    return [r for r in server.state.requests() if r.endpoint in DATA_ENDPOINTS]


def file_export(path: Path | str, portfolio_id: str, datasets: list[str], **kwargs: Any) -> CoinStatsToFileOperator:
    return CoinStatsToFileOperator(
        task_id="files", portfolio_id=portfolio_id, datasets=datasets, path=str(path), outlets=[], **kwargs
    )


def read_file(path: Path, file_format: str) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        if file_format == "jsonl":
            return [json.loads(line) for line in handle]
        return list(csv.DictReader(handle))


def as_text(row: dict[str, Any], file_format: str) -> dict[str, Any]:
    """What a written row reads back as (CSV has only strings)."""
    values = to_jsonable(row)
    if file_format == "jsonl":
        return values
    return {
        k: "" if v is None else ("true" if v is True else "false" if v is False else str(v)) for k, v in values.items()
    }
