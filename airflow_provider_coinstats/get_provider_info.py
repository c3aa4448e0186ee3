"""Provider metadata for Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

ProvidersManager imports this in the scheduler, API server, triggerer and every worker, so it
imports only dependency-free modules: :mod:`.config`, the connection form's definition and the
package's ``__version__`` (the one place the version is written; the build reads it too).
``package-name`` must equal the distribution name or discovery fails for the whole installation.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_coinstats import __version__
from airflow_provider_coinstats.config import provider_config
from airflow_provider_coinstats.hooks.connection_form import conn_fields, ui_field_behaviour

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
        "versions": [__version__],
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
                "ui-field-behaviour": ui_field_behaviour(),
                "conn-fields": conn_fields(),
            }
        ],
        "hooks": [{"integration-name": "CoinStats", "python-modules": [f"{_PKG}.hooks.coinstats"]}],
        "operators": [
            {
                "integration-name": "CoinStats",
                "python-modules": [f"{_PKG}.operators.portfolio", f"{_PKG}.operators.lifecycle"],
            }
        ],
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
