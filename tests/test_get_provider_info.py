"""Airflow discovers the provider through its entry point."""

from __future__ import annotations

import importlib
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
        assert float(shown) == default, option
