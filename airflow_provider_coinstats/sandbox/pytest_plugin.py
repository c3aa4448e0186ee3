"""pytest fixtures for the CoinStats sandbox.

Enable with ``pytest_plugins = ["airflow_provider_coinstats.sandbox.pytest_plugin"]`` in a
``conftest.py``. One server runs per test session; every test that asks for
``coinstats_sandbox`` gets it freshly reset (portfolios, credits, log, faults, config).

Example::

    def test_reads_coins(coinstats_sandbox):
        coinstats_sandbox.state.configure(sync_polls=0)
        hook = CoinStatsHook(...)  # pointed at coinstats_sandbox.url / .api_key
        ...
        assert coinstats_sandbox.state.credits_used() == 48
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_coinstats.sandbox.server import SandboxServer


@pytest.fixture(scope="session")
def coinstats_sandbox_server() -> Iterator[SandboxServer]:
    """A started sandbox shared by the whole session (state is NOT reset; see coinstats_sandbox)."""
    server = SandboxServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def coinstats_sandbox(coinstats_sandbox_server: SandboxServer) -> SandboxServer:
    """The session sandbox, reset to its start-up config before the test."""
    coinstats_sandbox_server.state.reset()
    return coinstats_sandbox_server
