"""Provider metadata for Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

ProvidersManager imports this in the scheduler, API server, triggerer and every worker, so it
imports nothing but the dependency-free :mod:`.config`. ``package-name`` must equal the
distribution name or discovery fails for the whole installation.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_coinstats.config import provider_config

_PKG = "airflow_provider_coinstats"
_HOOK = f"{_PKG}.hooks.coinstats.CoinStatsHook"


def get_provider_info() -> dict[str, Any]:
    """Return the provider info dict (the shape of Apache providers' ``get_provider_info``)."""
    return {
        "package-name": "airflow-provider-coinstats",
        "name": "CoinStats",
        "description": (
            "Connect wallets and exchange accounts to CoinStats, wait for sync, "
            "and load portfolio data into files and SQL tables."
        ),
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": "CoinStats",
                "external-doc-url": "https://coinstats.app/api-docs/",
                "tags": ["service"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "coinstats",
                "hook-class-name": _HOOK,
                "hook-name": "CoinStats",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema", "port"],
                    "relabeling": {"password": "API Key", "host": "Base URL"},
                    "placeholders": {
                        "host": "https://openapiv1.coinstats.app",
                        "password": "your CoinStats API key",
                    },
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Timeout (seconds per request)",
                        "description": "Read and connect timeout of every request. Default 30.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 30},
                    },
                    "max_attempts": {
                        "label": "Max attempts per call",
                        "description": "Attempts for retryable failures (429, 5xx, timeouts). Default 5.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 5},
                    },
                    "auth_type": {
                        "label": "Auth header",
                        "description": "x-api-key (default) sends X-API-KEY; bearer sends Authorization: Bearer.",
                        "schema": {"type": ["string", "null"], "enum": ["x-api-key", "bearer", None]},
                    },
                },
            }
        ],
        "hooks": [{"integration-name": "CoinStats", "python-modules": [f"{_PKG}.hooks.coinstats"]}],
        "operators": [{"integration-name": "CoinStats", "python-modules": [f"{_PKG}.operators.portfolio"]}],
        "sensors": [{"integration-name": "CoinStats", "python-modules": [f"{_PKG}.sensors.portfolio"]}],
        "triggers": [{"integration-name": "CoinStats", "python-modules": [f"{_PKG}.triggers.portfolio"]}],
        "transfers": [
            {
                "source-integration-name": "CoinStats",
                "target-integration-name": "Common SQL",
                "python-module": f"{_PKG}.transfers.coinstats_to_sql",
            },
            {
                "source-integration-name": "CoinStats",
                "target-integration-name": "Common IO",
                "python-module": f"{_PKG}.transfers.coinstats_to_file",
            },
        ],
        "extra-links": [f"{_PKG}.links.portfolio.CoinStatsPortfolioLink"],
        "config": provider_config(),
    }
