"""Run every benchmark: ``python -m benchmarks [name ...]``.

Only the summaries reach the terminal: whatever a benchmark logs (the provider, Airflow, uvicorn,
warnings, stray writes to stderr) goes to ``<temp dir>/<name>.log``, and the last line says where,
so ``make bench`` fits on one screen.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

#: name -> module under benchmarks/ with a ``main()``; imported only when run.
ALL = {
    "hook_overhead": "bench_hook_overhead",
    "import_time": "bench_import_time",
    "triggers": "bench_triggers",
    "export": "bench_export",
    "load": "bench_load",
}


def _is_terminal_handler(handler: logging.Handler) -> bool:
    # FileHandler is a StreamHandler too, and keeps its file.
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


@contextlib.contextmanager
def logs_to(path: Path) -> Iterator[None]:
    """Send log records, warnings and stderr to ``path`` instead of the terminal; undone on exit.

    Every handler already writing to a stream (Airflow's console handler, uvicorn's) is detached,
    and loggers that do not propagate get the file handler in its place. Handlers made later with
    the default stream write to ``sys.stderr``, which points at the file meanwhile.

    Example::

        with logs_to(Path("/tmp/bench.log")):
            logging.getLogger("airflow.task").info("goes to the file")
            print("summary line")  # stdout: still the terminal
    """
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    saved = {logger: list(logger.handlers) for logger in loggers}
    for logger in loggers:
        detached = [h for h in logger.handlers if _is_terminal_handler(h)]
        for handler in detached:
            logger.removeHandler(handler)
        if logger is logging.getLogger() or (detached and not logger.propagate):
            logger.addHandler(file_handler)
    with (
        path.open("a", encoding="utf-8") as stderr_file,
        contextlib.redirect_stderr(stderr_file),
        warnings.catch_warnings(),
    ):
        logging.captureWarnings(True)
        try:
            yield
        finally:
            logging.captureWarnings(False)
            for logger, handlers in saved.items():
                logger.handlers[:] = handlers
            file_handler.close()


def run(names: list[str], registry: Mapping[str, str], log_dir: Path, package: str = "benchmarks") -> None:
    """Run ``names`` in order, each with its logs in ``log_dir/<name>.log``."""
    for name in names:
        print(f"== {name}", flush=True)
        log_file = log_dir / f"{name}.log"
        with logs_to(log_file):
            module = importlib.import_module(f"{package}.{registry[name]}")
        # Again once imported: importing Airflow sets up its console logging, which must go too.
        with logs_to(log_file):
            module.main()
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ALL)}", file=sys.stderr)
        return 2
    log_dir = Path(tempfile.mkdtemp(prefix="coinstats-bench-logs-"))
    run(names, ALL, log_dir)
    print(f"logs: {log_dir}/<name>.log")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
