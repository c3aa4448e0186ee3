"""No module imports a layer above it: the package's layering, read from the source with ``ast``.

Every import counts, wherever it is written: at module level, inside a function (the lazy imports
that keep DAG parsing cheap), under ``TYPE_CHECKING``, relative or absolute, and
``importlib.import_module("...")`` with a literal name. The layer map is data (below); a module the
map does not place fails the test, so a new module has to be given a layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import airflow_provider_coinstats

PKG = airflow_provider_coinstats.__name__
ROOT = Path(airflow_provider_coinstats.__file__).parent

#: Module (dotted, relative to the package; "" is the package itself) -> layer. The longest
#: matching prefix wins, so ``api.catalog`` is "api-data" and ``api.transport`` is "api".
LAYER_OF: Mapping[str, str] = {
    "": "base",
    "config": "base",
    "exceptions": "base",
    # The API as data (no transport): the sandbox may use these and nothing else of the package.
    "api.catalog": "api-data",
    "api.connection_fields": "api-data",
    "api.settings": "api-data",
    "api": "api",
    # Airflow import shims and the permanent-error boundary shared by operators and transfers.
    "_compat": "airflow",
    "task_failure": "airflow",
    "hooks": "hooks",
    # Provider metadata: built from the connection form, loaded by ProvidersManager everywhere.
    "get_provider_info": "metadata",
    "links": "links",
    "triggers": "triggers",
    # The AssetWatcher trigger fires on a new transaction's row key, which the export layer defines.
    "triggers.events": "event-triggers",
    "sync_probe": "triggers",  # the probe the sensor, the connect operators and the trigger share
    "credits": "triggers",  # the task credit budget every operator, sensor and transfer mixes in
    "export": "export",
    "operators": "operators",
    "sensors": "sensors",
    "transfers": "transfers",
    "sandbox": "sandbox",
    "demo": "tools",  # `python -m airflow_provider_coinstats.demo`: sandbox plus a DAG, a tool on top
}

_BELOW_OPERATORS = {"base", "api-data", "api", "airflow", "hooks", "links", "triggers", "export"}

#: Layer -> the layers its modules may import besides their own. Operators, sensors and transfers
#: are all on top and must not import each other.
MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "base": frozenset(),
    "api-data": frozenset({"base"}),
    "api": frozenset({"base", "api-data"}),
    "airflow": frozenset({"base"}),
    "hooks": frozenset({"base", "api-data", "api", "airflow"}),
    "metadata": frozenset({"base", "api-data", "hooks"}),
    "links": frozenset({"base", "api-data", "api", "airflow", "hooks"}),
    "triggers": frozenset({"base", "api-data", "api", "airflow", "hooks"}),
    "event-triggers": frozenset({"base", "api-data", "api", "airflow", "hooks", "triggers", "export"}),
    "export": frozenset({"base", "api-data", "api", "airflow", "hooks"}),
    "operators": frozenset(_BELOW_OPERATORS),
    "sensors": frozenset(_BELOW_OPERATORS),
    "transfers": frozenset(_BELOW_OPERATORS),
    "sandbox": frozenset({"base", "api-data"}),
    "tools": frozenset(LAYER_OF.values()) - {"tools"},
}

#: Layers that run where Airflow may not be installed or must not be loaded (the sandbox, the
#: request core): they import no ``airflow`` module at all.
AIRFLOW_FREE = frozenset({"base", "api-data", "api", "sandbox"})


def layer_of(module: str) -> str | None:
    """The layer of ``module`` (dotted, relative to the package), or None when the map misses it."""
    if not module:
        return LAYER_OF[""]
    parts = module.split(".")
    for n in range(len(parts), 0, -1):  # "" is the package itself, not a prefix of everything
        prefix = ".".join(parts[:n])
        if prefix in LAYER_OF:
            return LAYER_OF[prefix]
    return None


def package_modules() -> dict[str, Path]:
    """Every module of the package: relative dotted name -> file."""
    modules: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(module: str, source: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of everything ``source`` imports, at any depth."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = [PKG, *module.split(".")] if module else [PKG]
                anchor = here if is_package else here[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from pkg import sub`` imports the submodule when there is one.
                yield node.lineno, f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _package_target(name: str, known: Mapping[str, object]) -> str | None:
    """The package module ``name`` refers to (an attribute import resolves to its module)."""
    if name != PKG and not name.startswith(f"{PKG}."):
        return None
    relative = name.removeprefix(PKG).removeprefix(".")
    while relative not in known and relative:
        relative = relative.rpartition(".")[0]
    return relative


def violations(sources: Mapping[str, str], packages: frozenset[str] = frozenset()) -> list[str]:
    """Every import that breaks the layer map, as readable lines; ``packages`` names the __init__s."""
    problems: list[str] = []
    for module, source in sources.items():
        layer = layer_of(module)
        if layer is None:
            problems.append(f"{module or PKG}: not in the layer map")
            continue
        allowed = MAY_IMPORT[layer] | {layer}
        for line, name in imported_names(module, source, module in packages or module == ""):
            if name.split(".")[0] == "airflow" and layer in AIRFLOW_FREE:
                problems.append(f"{module}:{line} ({layer}) imports {name}: this layer must not use Airflow")
            target = _package_target(name, sources)
            if target is None:
                continue
            target_layer = layer_of(target)
            if target_layer is not None and target_layer not in allowed:
                problems.append(f"{module}:{line} ({layer}) imports {target or PKG} ({target_layer})")
    return problems


def _read_package() -> tuple[dict[str, str], frozenset[str]]:
    modules = package_modules()
    sources = {name: path.read_text(encoding="utf-8") for name, path in modules.items()}
    packages = frozenset(name for name, path in modules.items() if path.name == "__init__.py")
    return sources, packages


def test_no_module_imports_a_layer_above_it() -> None:
    sources, packages = _read_package()
    assert len(sources) > 30  # the walk found the package, not an empty folder
    assert violations(sources, packages) == []


def test_the_layer_map_is_a_hierarchy() -> None:
    """No two layers may import each other, directly or through others (the map has no cycle)."""

    def reachable(layer: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        below = MAY_IMPORT[layer] - seen
        return below.union(*(reachable(b, seen | below) for b in below)) if below else frozenset()

    for layer in MAY_IMPORT:
        assert layer not in reachable(layer), layer
    assert set(LAYER_OF.values()) == set(MAY_IMPORT)


# --- the checker catches what it is meant to catch ---------------------------------------------------

_FAKE = {  # a healthy miniature of the package the checker is tried on
    "": "",
    "exceptions": "",
    "api": "",
    "api.catalog": "",
    "api.transport": "import requests\nfrom airflow_provider_coinstats.api import catalog\n",
    "hooks": "",
    "hooks.coinstats": "from airflow_provider_coinstats.api.transport import send\n",
    "operators": "",
    "operators.portfolio": "from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook\n",
    "transfers": "",
    "transfers._export": "from airflow_provider_coinstats.exceptions import CoinStatsError\n",
    "export": "",
    "export.extract": "from typing import TYPE_CHECKING\n",
    "sandbox": "",
    "sandbox.app": "from airflow_provider_coinstats.api.catalog import ENDPOINTS\n",
}
_FAKE_PACKAGES = frozenset({"", "api", "hooks", "operators", "transfers", "export", "sandbox"})


def test_the_checker_passes_the_healthy_miniature() -> None:
    assert violations(_FAKE, _FAKE_PACKAGES) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        pytest.param(  # the import transfers/_export.py had until issue 9
            "transfers._export",
            "from airflow_provider_coinstats.operators.portfolio import fail_fast_on_permanent_errors\n",
            "transfers._export:1 (transfers) imports operators.portfolio (operators)",
            id="transfers-over-operators",
        ),
        pytest.param(
            "hooks.coinstats",
            "def execute():\n    from airflow_provider_coinstats.operators import portfolio\n",
            "hooks.coinstats:2 (hooks) imports operators.portfolio (operators)",
            id="lazy-import-in-a-function",
        ),
        pytest.param(
            "export.extract",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..transfers._export import X\n",
            "export.extract:3 (export) imports transfers._export (transfers)",
            id="relative-import-under-type-checking",
        ),
        pytest.param(
            "api.transport",
            "import airflow_provider_coinstats.hooks.coinstats as h\n",
            "api.transport:1 (api) imports hooks.coinstats (hooks)",
            id="plain-import-as",
        ),
        pytest.param(
            "api.catalog",
            "import importlib\nm = importlib.import_module('airflow_provider_coinstats.api.transport')\n",
            "api.catalog:2 (api-data) imports api.transport (api)",
            id="import-module-call",
        ),
        pytest.param(
            "sandbox.app",
            "from airflow_provider_coinstats.api.transport import send\n",
            "sandbox.app:1 (sandbox) imports api.transport (api)",
            id="sandbox-uses-a-transport",
        ),
        pytest.param(
            "sandbox.app",
            "from airflow.sdk import BaseHook\n",
            "sandbox.app:1 (sandbox) imports airflow.sdk.BaseHook: this layer must not use Airflow",
            id="sandbox-imports-airflow",
        ),
        pytest.param(
            "export.extract",
            "from airflow_provider_coinstats.sensors import portfolio\n",
            "export.extract:1 (export) imports sensors.portfolio (sensors)",
            id="export-over-sensors",
        ),
    ],
)
def test_the_checker_reports_a_deliberate_violation(module: str, source: str, expected: str) -> None:
    fake = {**_FAKE, module: source, "sensors": "", "sensors.portfolio": ""}
    assert violations(fake, _FAKE_PACKAGES | {"sensors"}) == [expected]


def test_an_unplaced_module_is_reported() -> None:
    assert violations({**_FAKE, "newthing": ""}, _FAKE_PACKAGES) == ["newthing: not in the layer map"]
