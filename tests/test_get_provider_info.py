"""Airflow discovers the provider through its entry point."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import distribution, entry_points
from pathlib import Path

from airflow_provider_coinstats.get_provider_info import get_provider_info


def test_package_name_matches_distribution() -> None:
    info = get_provider_info()
    assert info["package-name"] == distribution("airflow-provider-coinstats").metadata["Name"]
    (ep,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_provider_coinstats")
    ]
    assert ep.load() is get_provider_info


def test_every_listed_module_and_class_imports() -> None:
    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for item in info[section]:
            for module in item["python-modules"]:
                importlib.import_module(module)
    for transfer in info["transfers"]:
        importlib.import_module(transfer["python-module"])
    for dotted in [*info["extra-links"], info["connection-types"][0]["hook-class-name"]]:
        module, _, name = dotted.rpartition(".")
        assert getattr(importlib.import_module(module), name)


def _airflow(*args: str) -> str:
    airflow = Path(sys.executable).with_name("airflow")
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    return subprocess.run([str(airflow), *args], check=True, capture_output=True, text=True, env=env).stdout


def test_airflow_cli_lists_provider_and_conn_type() -> None:
    assert "airflow-provider-coinstats" in _airflow("providers", "list")
    hooks = _airflow("providers", "hooks")
    line = next(line for line in hooks.splitlines() if line.startswith("coinstats "))
    assert "airflow_provider_coinstats.hooks.coinstats.CoinStatsHook" in line
    assert "airflow_provider_coinstats.triggers.portfolio" in _airflow("providers", "triggers")


def test_airflow_config_shows_the_coinstats_section_with_its_declared_defaults() -> None:
    from airflow_provider_coinstats.config import OPTIONS

    env_free = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__COINSTATS__")}
    airflow = Path(sys.executable).with_name("airflow")
    for option, (default, _) in OPTIONS.items():
        shown = subprocess.run(
            [str(airflow), "config", "get-value", "coinstats", option],
            check=True,
            capture_output=True,
            text=True,
            env={**env_free, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
        ).stdout.strip()
        # Airflow 3.0 logs ProvidersManager's INFO lines to stdout before the value.
        assert float(shown.splitlines()[-1]) == default, option


# --- declared once: the version and the connection form ---------------------------------------------


def test_one_version_for_the_distribution_the_package_and_the_provider_info() -> None:
    import tomllib

    import airflow_provider_coinstats

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]  # written only in __init__.py
    installed = distribution("airflow-provider-coinstats").version
    assert installed == airflow_provider_coinstats.__version__ == get_provider_info()["versions"][0]


_LOADED_BY_PROVIDER_INFO = """
import json, sys
from airflow_provider_coinstats.get_provider_info import get_provider_info
get_provider_info()
print(json.dumps(sorted(sys.modules)))
"""


def test_the_provider_info_imports_nothing_heavy() -> None:
    """ProvidersManager loads it in every Airflow process: no Airflow, HTTP client or form library."""
    out = subprocess.run([sys.executable, "-c", _LOADED_BY_PROVIDER_INFO], check=True, capture_output=True, text=True)
    loaded = json.loads(out.stdout)
    ours = {m for m in loaded if m.startswith("airflow_provider_coinstats")}
    assert "airflow_provider_coinstats.hooks.connection_form" in ours  # the import really happened
    heavy = ("airflow", "requests", "aiohttp", "wtforms", "urllib3", "tenacity")
    assert [m for m in loaded if m.split(".")[0] in heavy] == []
    # Airflow 3.3 loads every provider's info on `import airflow.sdk`: what it pulls in, every
    # Airflow process (every DAG parse) pays. Only the declarations, not the parser or catalog.
    assert ours == {
        "airflow_provider_coinstats",
        "airflow_provider_coinstats.api",
        "airflow_provider_coinstats.api.connection_fields",
        "airflow_provider_coinstats.config",
        "airflow_provider_coinstats.get_provider_info",
        "airflow_provider_coinstats.hooks",
        "airflow_provider_coinstats.hooks.connection_form",
    }


_PROVIDERS_MANAGER = """
import json
from airflow.providers_manager import ProvidersManager
pm = ProvidersManager()
widgets = {k: v.field_name for k, v in pm.connection_form_widgets.items() if k.startswith("extra__coinstats__")}
print(json.dumps({"widgets": widgets, "behaviour": pm.field_behaviours.get("coinstats")}))
"""


def test_airflows_providers_manager_reads_the_declared_connection_form() -> None:
    """On 3.2+ from the provider info's conn-fields, on 3.0/3.1 from the hook's legacy methods."""
    from airflow_provider_coinstats.api.connection_fields import FIELDS, HIDDEN_FIELDS, RELABELING

    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        [sys.executable, "-c", _PROVIDERS_MANAGER], check=True, capture_output=True, text=True, env=env
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["widgets"] == {f"extra__coinstats__{name}": name for name in FIELDS}
    assert seen["behaviour"]["hidden_fields"] == list(HIDDEN_FIELDS)
    assert seen["behaviour"]["relabeling"] == dict(RELABELING)
