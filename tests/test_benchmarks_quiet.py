"""``python -m benchmarks`` prints summaries only; everything a benchmark logs goes to a file.

A stand-in benchmark makes the noise the real ones make (Airflow's console logging, a logger with
its own terminal handler, warnings, a handler made mid-run, raw stderr writes) and prints a
summary. It runs in a child process, so the logging set-up it changes is not this test's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import ROOT

NOISY = """
import logging, sys, warnings

import airflow.sdk  # sets up Airflow's console logging, as importing the provider does

chatty = logging.getLogger("uvicorn.access")  # its own terminal handler, not propagating
chatty.addHandler(logging.StreamHandler(sys.stdout))
chatty.propagate = False
chatty.setLevel(logging.INFO)


def main():
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("airflow.task.hooks").info("NOISE-airflow-logger")
    chatty.info("NOISE-access-log")
    warnings.warn("NOISE-warning", UserWarning, stacklevel=1)
    late = logging.getLogger("made.late")
    late.addHandler(logging.StreamHandler())  # default stream: stderr at this moment
    late.propagate = False
    late.warning("NOISE-late-handler")
    print("NOISE-raw-stderr", file=sys.stderr)
    print("SUMMARY ratio 1.00")
"""

RUNNER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from benchmarks.__main__ import run
run(["noisy"], {"noisy": "bench_noisy"}, Path(sys.argv[2]), package="fakebench")
print("after: " + ("terminal" if __import__("logging").getLogger("uvicorn.access").handlers else "lost"))
"""


def test_only_the_summary_reaches_the_terminal_and_the_log_file_has_the_rest(tmp_path: Path) -> None:
    package = tmp_path / "src" / "fakebench"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "bench_noisy.py").write_text(textwrap.dedent(NOISY))
    logs = tmp_path / "logs"
    logs.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(package.parent), str(logs)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
        check=True,
    )
    assert done.stdout.splitlines() == ["== noisy", "SUMMARY ratio 1.00", "after: terminal"]
    assert "NOISE" not in done.stderr
    written = (logs / "noisy.log").read_text()
    assert written  # the file is not empty
    for noise in ("airflow-logger", "access-log", "warning", "late-handler", "raw-stderr"):
        assert f"NOISE-{noise}" in written, noise
