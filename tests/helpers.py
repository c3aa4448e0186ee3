"""Constants and helpers the tests share (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
    from airflow_provider_coinstats.triggers.portfolio import CoinStatsPortfolioSyncTrigger

ROOT = Path(__file__).resolve().parent.parent


def airflow_home() -> Path:
    """The suite's isolated AIRFLOW_HOME (made by ``tests/conftest.py``'s ``pytest_configure``)."""
    return Path(os.environ["AIRFLOW_HOME"])


def dags_folder() -> Path:
    """The DAGs folder ``dag.test()`` runs from: the example DAGs plus ``tests/dags``."""
    return airflow_home() / "dags"


def export_path() -> Path:
    """Where the example warehouse DAG writes its files."""
    return airflow_home() / "export"


#: The wallet every test connects unless it needs another one.
ADDRESS = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"

#: Retry timing for tests: the same policy, with millisecond backoff so retries do not slow the suite.
FAST_RETRY = {
    "timeout": 5,
    "max_attempts": 5,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "retry_after_max": 5,
}


def connect_wallet(
    server: Any,
    *,
    sync_polls: int = 0,
    transactions: int | None = None,
    syncing_forever: bool = False,
    hook: CoinStatsHook | None = None,
    address: str = ADDRESS,
    clear_log: bool = True,
) -> str:
    """Connect ``address`` through the hook; the portfolio answers 409 for ``sync_polls`` polls.

    ``transactions`` sets the portfolio's transaction count, ``syncing_forever`` makes it never
    sync, and ``clear_log`` empties the sandbox's request log so a test sees only its own calls.
    """
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    server.state.configure(sync_polls=sync_polls)
    if hook is None:
        with CoinStatsHook() as own:
            pid = own.connect_wallet(address, "ethereum").portfolio_id
    else:
        pid = hook.connect_wallet(address, "ethereum").portfolio_id
    if transactions is not None:
        server.state.set_transaction_count(pid, transactions)
    if syncing_forever:
        server.state.set_sync(pid, seconds=math.inf)
    if clear_log:
        server.state.clear_requests()
    return pid


def connect_wallet_http(
    server: Any, http: requests.Session, address: str = ADDRESS, connection_id: str = "ethereum"
) -> str:
    """Connect over raw HTTP (sandbox tests that must not depend on the hook)."""
    r = http.post(f"{server.url}/portfolio/wallet", json={"address": address, "connectionId": connection_id})
    assert r.status_code == 200, r.text
    return str(r.json()["portfolioId"])


def synced_wallet_http(
    server: Any, http: requests.Session, address: str = ADDRESS, connection_id: str = "ethereum"
) -> str:
    """:func:`connect_wallet_http`, already synced."""
    pid = connect_wallet_http(server, http, address, connection_id)
    server.state.set_sync(pid, polls=0, seconds=0)
    return pid


async def first_event(trigger: CoinStatsPortfolioSyncTrigger) -> dict[str, Any]:
    """Run ``trigger`` until its first event and return the payload."""
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("trigger ended without an event")


def requests_to(server: Any, endpoint: str) -> list[Any]:
    """The sandbox's log of ``endpoint`` (a catalog name)."""
    return list(server.state.requests(endpoint=endpoint))


def statuses(server: Any, endpoint: str) -> list[int | None]:
    """The statuses the sandbox answered ``endpoint`` with, in order."""
    return [r.status for r in requests_to(server, endpoint)]


@dataclass
class DagResult:
    """What a ``dag.test()`` run left in the metadata DB."""

    run_id: str
    state: str
    #: (task_id, map_index) -> (state, try_number)
    tasks: dict[tuple[str, int], tuple[str | None, int]]
    #: (task_id, map_index, key) -> value
    xcoms: dict[tuple[str, int, str], Any]

    def state_of(self, task_id: str, map_index: int = -1) -> str | None:
        return self.tasks[(task_id, map_index)][0]

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        return self.xcoms[(task_id, map_index, key)]


_DAGS: dict[str, Any] = {}


def load_dag(dag_id: str) -> Any:
    """The DAG object from the DAGs folder (files imported once per session)."""
    if not _DAGS:
        from airflow.sdk import DAG

        for path in sorted(dags_folder().glob("*.py")):
            spec = importlib.util.spec_from_file_location(f"cs_dagfile_{path.stem}", path)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for value in vars(module).values():
                if isinstance(value, DAG):
                    _DAGS[value.dag_id] = value
    return _DAGS[dag_id]


def dag_file_import_errors(path: Path, source: str) -> dict[str, str]:
    """Write ``source`` to ``path`` and parse it with a real DagBag; its import errors (file -> message)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    path.write_text(source)
    bag = DagBag(dag_folder=str(path))  # examples are off: AIRFLOW__CORE__LOAD_EXAMPLES in conftest
    return {str(k): str(v) for k, v in bag.import_errors.items()}


def server_uri(uri_env: str, require_env: str, server: str, script: str) -> str:
    """A test server's URI from ``uri_env``; skip without one, or fail when ``require_env`` is 1 (CI)."""
    import pytest

    uri = os.environ.get(uri_env, "").strip()
    if uri:
        return uri
    reason = (
        f"{uri_env} is not set: these tests need a {server} server. Start a throwaway one with "
        f"`export {uri_env}=$({script})` (stop it with `{script} stop <dir it prints>`)."
    )
    if os.environ.get(require_env) == "1":
        pytest.fail(f"{require_env}=1 but {reason}", pytrace=False)
    pytest.skip(reason)
