"""The hook closes what it opens: as a context manager, and after ``test_connection``.

"Closed" is checked on the objects themselves: the transport is dropped, the requests session's
connection pool is closed (urllib3 sets a closed pool's queue to ``None``) and the pooled
connection's socket is closed (urllib3 sets ``sock`` to ``None``).
"""

from __future__ import annotations

from typing import Any

import psutil
import pytest

from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook


def open_pools(hook: CoinStatsHook) -> list[Any]:
    """The connection pools the hook's session holds right now (one per host)."""
    manager = hook.get_conn().adapters["http://"].poolmanager
    pools = [manager.pools[key] for key in manager.pools.keys()]  # noqa: SIM118 - a container, not a dict
    assert len(pools) == 1
    assert pools[0].pool is not None
    return pools


def idle_connections(pools: list[Any]) -> list[Any]:
    """The pooled (idle, kept-alive) connections, each with an open socket."""
    connections = [conn for pool in pools for conn in list(pool.pool.queue) if conn is not None]
    assert connections
    assert all(conn.sock is not None for conn in connections)
    return connections


def test_context_manager_closes_the_session(coinstats_conn: Any) -> None:
    with CoinStatsHook() as hook:
        assert hook.get_usage_credits()["remainingCredits"] > 0
        session = hook.get_conn()
        pools = open_pools(hook)
        connections = idle_connections(pools)
    assert hook._transport is None
    assert session.adapters["http://"].poolmanager.pools.keys() == set()
    assert all(pool.pool is None for pool in pools)
    assert all(conn.sock is None for conn in connections)


def test_context_manager_closes_on_error(coinstats_conn: Any) -> None:
    hook = CoinStatsHook()

    def task_code() -> None:
        with hook:
            hook.get_usage_credits()
            connections.extend(idle_connections(open_pools(hook)))
            raise RuntimeError("task code failed")

    connections: list[Any] = []
    with pytest.raises(RuntimeError, match="task code failed"):
        task_code()
    assert hook._transport is None
    assert all(conn.sock is None for conn in connections)


def open_connections_to(port: int) -> int:
    """TCP connections this process holds open to ``port`` (what the sandbox would see)."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


@pytest.mark.parametrize("api_key", [None, "wrong-key"])
def test_test_connection_closes_what_it_opened(
    coinstats_conn: Any, monkeypatch: pytest.MonkeyPatch, api_key: str | None
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(api_key=api_key))
    before = open_connections_to(coinstats_conn.port)
    hook = CoinStatsHook()
    ok, _ = hook.test_connection()
    assert ok is (api_key is None)
    assert [r.endpoint for r in coinstats_conn.state.requests()] == ["usage_credits"]
    assert hook._transport is None
    # The kept-alive connection the check used is closed, not left to the garbage collector.
    assert open_connections_to(coinstats_conn.port) == before


def test_hook_reopens_after_close(coinstats_conn: Any) -> None:
    hook = CoinStatsHook()
    with hook:
        hook.get_usage_credits()
    with hook:
        assert hook.get_usage_credits()["usedCredits"] == 0
    assert hook._transport is None
