"""Fixtures shared by the export tests in this folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ADDRESS, connect_wallet


@pytest.fixture
def wallet(coinstats_conn: Any, http: Any) -> Callable[..., str]:
    """Connect a sandbox wallet (synced at once) and return its portfolio id; the request log starts empty.

    The connect goes to the sandbox directly, so ``name`` is stored verbatim, like a name given
    in the CoinStats app (the provider's own connect strips surrounding whitespace). The sandbox
    returns it as ``portfolioInfo.name`` in every transaction (the ``portfolio_name`` column).
    """

    def connect(address: str = ADDRESS, name: str | None = None, transactions: int = 250) -> str:
        coinstats_conn.state.configure(sync_polls=0)
        body = {"address": address, "connectionId": "ethereum"} | ({} if name is None else {"name": name})
        answer = http.post(f"{coinstats_conn.url}/portfolio/wallet", json=body)
        answer.raise_for_status()
        portfolio_id = str(answer.json()["portfolioId"])
        coinstats_conn.state.set_transaction_count(portfolio_id, transactions)
        coinstats_conn.state.clear_requests()
        return portfolio_id

    return connect


@pytest.fixture
def portfolio(coinstats_conn: Any) -> str:
    """A synced wallet with 250 transactions (3 pages); the request log starts empty."""
    return connect_wallet(coinstats_conn, transactions=250)


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Airflow connection id to an empty database: a SQLite file, a real PostgreSQL or MariaDB database."""
    if request.param in ("postgres", "mariadb"):
        return str(request.getfixturevalue(f"{request.param}_conn_id"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_TEST_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "wh.db")})
    )
    return "coinstats_test_sqlite"
