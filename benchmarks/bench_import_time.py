"""(b) What importing the provider adds to DAG parsing once ``airflow.sdk`` is loaded.

Each sample is a fresh interpreter that imports ``airflow.sdk`` (the baseline every DAG file
pays), then the provider's DAG-facing modules, timing both. It also checks that ``requests`` is
still not imported afterwards. Goal: under 20 ms extra, ``requests`` absent.

Wall time is the goal's measure (what a DAG parse waits); CPU time is printed beside it because
imports are CPU-bound, and unlike wall time it does not count waiting for a core on a busy machine.

The provider is byte-compiled first, as a wheel install does: an editable install under
``PYTHONDONTWRITEBYTECODE=1`` would otherwise re-compile its source on every import and measure
the compiler, not the import.
"""

from __future__ import annotations

import compileall
import json
import pkgutil
import statistics
import subprocess
import sys

import airflow_provider_coinstats

SAMPLES = 9
# Triggers are loaded by the triggerer, not by DAG files (operators and sensors import them
# inside execute), so they are not part of what DAG parsing pays.
DAG_FACING_PACKAGES = ("hooks", "operators", "sensors", "transfers", "export")

PROBE = """
import json, sys, time, importlib
t0 = time.perf_counter()
import airflow.sdk
t1, c1 = time.perf_counter(), time.process_time()
for name in sys.argv[1:]:
    importlib.import_module(name)
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"sdk": t1 - t0, "provider": t2 - t1, "cpu": c2 - c1, "requests": "requests" in sys.modules}))
"""


def dag_facing_modules() -> list[str]:
    """The package root plus every public module under hooks/operators/sensors/transfers/export."""
    root = airflow_provider_coinstats.__name__
    names = [root]
    for sub in DAG_FACING_PACKAGES:
        try:
            package = __import__(f"{root}.{sub}", fromlist=["_"])
        except ImportError:
            continue
        names.extend(
            f"{root}.{sub}.{m.name}" for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")
        )
    return names


def main() -> None:
    modules = dag_facing_modules()
    compileall.compile_dir(airflow_provider_coinstats.__path__[0], quiet=1)
    samples = []
    for _ in range(SAMPLES):
        out = subprocess.run([sys.executable, "-c", PROBE, *modules], check=True, capture_output=True, text=True).stdout
        samples.append(json.loads(out.strip().splitlines()[-1]))
    sdk = statistics.median(s["sdk"] for s in samples) * 1e3
    extra = statistics.median(s["provider"] for s in samples) * 1e3
    cpu = statistics.median(s["cpu"] for s in samples) * 1e3
    print(f"modules                     : {len(modules)} (the package, {', '.join(DAG_FACING_PACKAGES)})")
    print(f"baseline import airflow.sdk : {sdk:.1f} ms (median of {SAMPLES} fresh interpreters)")
    print(f"provider modules on top     : {extra:.1f} ms wall (goal < 20 ms), {cpu:.1f} ms CPU; {extra / sdk:.3f}x sdk")
    leaked = any(s["requests"] for s in samples)
    print(f"requests imported at parse  : {'YES (goal: no)' if leaked else 'no'}")


if __name__ == "__main__":
    main()
