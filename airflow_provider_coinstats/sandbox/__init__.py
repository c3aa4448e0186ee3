"""CoinStats sandbox: a real HTTP server on loopback that behaves like the documented CoinStats API.

Tests and demos run against it instead of the real API. Importing this package is cheap;
FastAPI and uvicorn are imported only when a server starts.

Example::

    from airflow_provider_coinstats.sandbox import Fault, SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(sync_polls=1)) as sandbox:
        os.environ["AIRFLOW_CONN_COINSTATS_DEFAULT"] = sandbox.airflow_connection()
        sandbox.state.add_fault(Fault("status", endpoint="portfolio_coins", status=429, times=1))
        ...  # run the code under test against sandbox.url
        print(sandbox.state.credits_used(), sandbox.state.requests("portfolio_coins"))

Also: ``python -m airflow_provider_coinstats.sandbox --port 0`` (see ``__main__``) and the pytest
plugin ``airflow_provider_coinstats.sandbox.pytest_plugin``.
"""

from airflow_provider_coinstats.sandbox.config import SandboxConfig
from airflow_provider_coinstats.sandbox.faults import Fault
from airflow_provider_coinstats.sandbox.server import SandboxServer
from airflow_provider_coinstats.sandbox.state import RequestRecord, SandboxState, SharedPortfolio

__all__ = ["Fault", "RequestRecord", "SandboxConfig", "SandboxServer", "SandboxState", "SharedPortfolio"]
