"""The e2e harness itself: it stops whole process groups (SIGKILL after the grace period), cleans
up after a failed start (PostgreSQL included), and its checker names every failed check.

The process-group and checker tests are fast and run in ``make test``; the failed-start test
starts a real PostgreSQL, so it is marked e2e and runs in ``make e2e``.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.e2e.checks import Checks, find_secrets
from tests.e2e.processes import DeploymentError, ProcessGroup, group_members, poll_until, stop_groups

#: A leader that forks a child which ignores SIGTERM, then both wait; "ready" once the child's
#: handler is in place (polled for, so the test never races the child's start-up).
STUBBORN_TREE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(sys.argv[1], 'w').close(); time.sleep(600)"), sys.argv[1]])
    time.sleep(600)
    """
)


def start(tmp_path: Path, name: str, code: str, *args: str) -> ProcessGroup:
    group = ProcessGroup(name, [sys.executable, "-c", code, *args], tmp_path / f"{name}.log")
    group.start(os.environ, cwd=tmp_path)
    return group


def test_stop_groups_kills_a_child_that_ignores_sigterm_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    group = start(tmp_path, "stubborn", STUBBORN_TREE, str(ready))
    assert poll_until(ready.exists, time.monotonic() + 30), group.tail()
    assert len(group_members(group.pgid)) == 2  # leader and child, one process group

    started = time.monotonic()
    ended = stop_groups([group], grace=1.0)

    assert ended["stubborn"].startswith("SIGKILL")
    assert 1.0 <= time.monotonic() - started < 10
    assert group_members(group.pgid) == []
    assert not group.alive()


def test_stop_groups_ends_well_behaved_groups_with_sigterm_and_leaves_nothing(tmp_path: Path) -> None:
    groups = [start(tmp_path, f"sleeper{i}", "import time; time.sleep(600)") for i in range(3)]
    assert all(g.running() for g in groups)

    ended = stop_groups(groups, grace=10.0)

    assert sorted(ended) == ["sleeper0", "sleeper1", "sleeper2"]
    assert all(how.startswith("SIGTERM") for how in ended.values()), ended
    assert all(group_members(g.pgid) == [] for g in groups)


def test_stop_groups_reports_groups_that_had_already_exited(tmp_path: Path) -> None:
    group = start(tmp_path, "quick", "pass")
    assert group.wait(30) == 0

    assert stop_groups([group], grace=1.0)["quick"].startswith("exited")


def test_checks_name_every_failed_check_and_secrets_are_reported_by_label_only() -> None:
    checks = Checks()
    checks.expect("runs succeeded", True)
    checks.expect("second connects succeeded (8 of 10)", False, "second-7: run failed")
    checks.expect("no secret in any log", False, "secret #1 in scheduler.log")

    with pytest.raises(AssertionError) as raised:
        checks.raise_if_failed()

    message = str(raised.value)
    assert message.startswith("2 of 3 e2e checks failed:")
    assert "- second connects succeeded (8 of 10): second-7: run failed" in message
    assert "- no secret in any log: secret #1 in scheduler.log" in message
    assert "runs succeeded" not in message

    leaks = find_secrets(["k3y-value", "s3cret-value"], [("a.log", "x s3cret-value y"), ("b.log", "clean")])
    assert leaks == {"secret #1": ["a.log"]}
    assert "s3cret-value" not in repr(leaks)


@pytest.mark.e2e
@pytest.mark.skipif(os.environ.get("COINSTATS_E2E") != "1", reason="starts PostgreSQL: run with `make e2e`")
def test_a_failed_start_names_the_component_and_stops_everything_including_postgres(tmp_path: Path) -> None:
    from tests.e2e.deployment import Deployment, pid_alive

    # The sandbox refuses a negative poll count and exits with status 2, after PostgreSQL started.
    deployment = Deployment(dag_files=[], dag_ids=[], sandbox_args=["--sync-polls", "-1"], out=lambda _: None)
    seen: dict[str, object] = {}
    original_stop_postgres = deployment._stop_postgres

    def spy_stop_postgres() -> None:
        assert deployment.pg_dir is not None
        seen["pg_dir"] = deployment.pg_dir
        seen["postmaster"] = int((deployment.pg_dir / "data" / "postmaster.pid").read_text().split()[0])
        original_stop_postgres()

    deployment._stop_postgres = spy_stop_postgres  # type: ignore[method-assign]

    with pytest.raises(DeploymentError, match="sandbox exited with 2"), deployment:
        pytest.fail("the deployment must not start")

    assert deployment.stopped["sandbox"].startswith("exited")
    assert deployment.stopped["postgres"] == "pg_ctl stop"
    assert not Path(str(seen["pg_dir"])).exists()
    assert not pid_alive(int(str(seen["postmaster"])))
    assert not deployment.root.exists()
