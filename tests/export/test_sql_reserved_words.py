"""Reserved words as table and column names, on real SQLite, PostgreSQL and MariaDB (``warehouse``).

``order`` and ``select`` are reserved everywhere; ``rank`` (a coins column) is reserved by MySQL 8
and quoted for MySqlHook; ``count``, ``name``, ``date`` and ``timestamp`` are columns too. Rows are the
sandbox's real answers, loaded through ``SqlTable`` and ``CoinStatsToSqlOperator``; replace loads,
upserts, reruns and incremental reads all run against the reserved names.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_coinstats.export.sql import SqlTable
from tests.export.helpers import assert_same_rows, context, data_requests, db_hook, expected_rows, sql_export


def read_back(table: SqlTable, portfolio_id: str) -> list[dict[str, Any]]:
    names = table.schema.column_names()
    hook = table.hook
    records = hook.get_records(
        f"SELECT {', '.join(table.quoted[n] for n in names)} FROM {table.quoted_table} "
        f"WHERE {table.quoted['portfolio_id']} = {hook.placeholder}",
        (portfolio_id,),
    )
    return [dict(zip(names, record, strict=True)) for record in records]


def qualified_order(warehouse: str) -> str:
    """A schema-qualified ``order`` table: ``"select"."order"`` where the test owns a schema to name."""
    hook = db_hook(warehouse)
    if hook.dialect_name == "postgresql":
        hook.run('CREATE SCHEMA "select"', autocommit=True)
        return "select.order"
    if hook.dialect_name == "mysql":  # a schema is a database: this test's own
        return f"{hook.get_first('SELECT DATABASE()')[0]}.order"
    return "main.order"


@pytest.mark.parametrize("qualified", [False, True], ids=["order", "schema.order"])
def test_replace_loads_and_reruns_into_a_table_named_order_with_a_rank_column(
    coinstats_conn: Any, portfolio: str, warehouse: str, qualified: bool
) -> None:
    name = qualified_order(warehouse) if qualified else "order"
    # column_types override reserved-word columns too: they are quoted like every other.
    table = SqlTable(db_hook(warehouse), name, "coins", batch_size=2, column_types={"rank": "INTEGER"})
    assert table.prepare(create=True)
    rows = expected_rows("coins", portfolio)
    assert len(rows) > 2 and any(row["rank"] is not None for row in rows)
    assert table.load(rows, portfolio_id=portfolio) == len(rows)
    assert_same_rows("coins", read_back(table, portfolio), rows)

    # A rerun replaces; a key repeated in a later batch keeps its last copy.
    again = {**rows[0], "count": Decimal("42.5"), "rank": 7}
    assert table.load([*rows[1:], again], portfolio_id=portfolio) == len(rows)
    assert_same_rows("coins", read_back(table, portfolio), [again, *rows[1:]])
    reopened = SqlTable(db_hook(warehouse), name, "coins")
    assert not reopened.prepare(create=True)  # found, not created again
    assert reopened.upsert == "native"  # its primary key was read back as the dataset key


def test_upserts_and_the_watermark_work_on_reserved_names(coinstats_conn: Any, portfolio: str, warehouse: str) -> None:
    chart = SqlTable(db_hook(warehouse), "select", "chart", batch_size=5)
    chart.prepare(create=True)
    points = expected_rows("chart", portfolio)
    chart.load(points, portfolio_id=portfolio)
    changed = {**points[3], "value_usd": Decimal("1234.5")}
    chart.load([points[3], changed], portfolio_id=portfolio)  # the last copy of a key wins
    assert_same_rows("chart", read_back(chart, portfolio), [*points[:3], changed, *points[4:]])

    transactions = SqlTable(db_hook(warehouse), "order", "transactions", batch_size=100)
    transactions.prepare(create=True)
    rows = expected_rows("transactions", portfolio)
    transactions.load(rows, portfolio_id=portfolio)
    assert transactions.watermark(portfolio) == max(row["date"] for row in rows)
    assert transactions.count(portfolio) == len(rows)


def test_an_existing_table_without_the_key_is_loaded_by_delete_and_insert(
    coinstats_conn: Any, portfolio: str, warehouse: str
) -> None:
    """A native upsert needs the key as a unique index; without one it must not duplicate rows."""
    table = SqlTable(db_hook(warehouse), "order", "chart")
    ddl = table.create_table_sql()
    db_hook(warehouse).run(ddl[: ddl.index(",\n    PRIMARY KEY")] + "\n)", autocommit=True)
    table.prepare(create=True)
    assert table.upsert == "delete_insert"
    points = expected_rows("chart", portfolio)
    table.load(points, portfolio_id=portfolio)
    table.load(points, portfolio_id=portfolio)
    assert table.count(portfolio) == len(points)


def test_the_operator_loads_reserved_table_names_reruns_and_reads_incrementally(
    coinstats_conn: Any, portfolio: str, warehouse: str
) -> None:
    tables = {"coins": "order", "chart": "select", "transactions": "group"}
    first = sql_export(warehouse, portfolio, list(tables), tables=tables).execute(context())
    assert first["datasets"]["transactions"]["rows_in_table"] == 250
    assert first["datasets"]["coins"]["rows_in_table"] == len(expected_rows("coins", portfolio))

    coinstats_conn.state.clear_requests()
    second = sql_export(warehouse, portfolio, list(tables), tables=tables).execute(context())
    assert second["datasets"]["transactions"]["incremental_since"] is not None
    for dataset in tables:
        assert second["datasets"][dataset]["rows_in_table"] == first["datasets"][dataset]["rows_in_table"]
    assert data_requests(coinstats_conn)  # the rerun did read


def test_mariadb_through_mysql_connector_python_loads_the_same(
    coinstats_conn: Any, portfolio: str, mariadb_test_db_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MySqlHook's other client (connection extra ``client``): same quoting, types and REPLACE upsert."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_TEST_MYSQL_CONNECTOR", f"{mariadb_test_db_uri}?client=mysql-connector-python"
    )
    hook = db_hook("coinstats_test_mysql_connector")
    assert hook.connection.extra_dejson["client"] == "mysql-connector-python"
    table = SqlTable(hook, "order", "coins", batch_size=2)
    table.prepare(create=True)
    rows = expected_rows("coins", portfolio)
    again = {**rows[0], "count": Decimal("0.000000000000000001"), "rank": 3}
    table.load([*rows, again], portfolio_id=portfolio)
    assert_same_rows("coins", read_back(table, portfolio), [again, *rows[1:]])
