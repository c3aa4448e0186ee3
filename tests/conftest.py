"""Test set-up: an isolated AIRFLOW_HOME, set before Airflow is imported, and the sandbox fixtures.

Connections come from ``AIRFLOW_CONN_*`` environment variables, the only source a plain pytest
process sees under the Task SDK.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="coinstats-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")

pytest_plugins = ["airflow_provider_coinstats.sandbox.pytest_plugin"]

#: Retry timing for tests: the same policy, with millisecond backoff so retries do not slow the suite.
FAST_RETRY = {
    "timeout": 5,
    "max_attempts": 5,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "retry_after_max": 5,
}


@pytest.fixture
def coinstats_conn(coinstats_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox, reset, with ``coinstats_default`` pointing at it."""
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_sandbox.airflow_connection(extra=FAST_RETRY))
    return coinstats_sandbox
