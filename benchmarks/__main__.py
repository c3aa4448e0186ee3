"""Run every benchmark: ``python -m benchmarks [name ...]``."""

from __future__ import annotations

import importlib
import sys

#: name -> module under benchmarks/ with a ``main()``; imported only when run.
ALL = {
    "hook_overhead": "bench_hook_overhead",
    "import_time": "bench_import_time",
    "triggers": "bench_triggers",
    "export": "bench_export",
}


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ALL)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{ALL[name]}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
