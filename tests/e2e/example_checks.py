"""The checks of the example-DAG e2e run, as pure functions of what the run observed.

``test_example_dags.py`` gathers the evidence from a real deployment (REST API answers, task logs,
the warehouse database, the metadata DB, log files, sockets) into an :class:`Evidence`;
:func:`evaluate` turns it into named :class:`~tests.e2e.checks.Checks`. Keeping the judgement
apart from the gathering lets ``test_example_checks.py`` prove, without a deployment, that a
failed run, a leaked secret or a task that did not defer each fail the check that names it.

Example::

    checks = evaluate(evidence)
    checks.raise_if_failed()  # AssertionError: "1 of 9 e2e checks failed: - every DAG run succeeded ..."
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tests.e2e.checks import Checks, find_secrets
from tests.e2e.processes import is_loopback

#: What the task runner logs when a task defers (Airflow 3.0 to 3.3).
DEFERRED_MARKER = "Pausing task as DEFERRED"
#: What the triggerer logs into the task's log when the trigger fires.
TRIGGER_FIRED_MARKER = "Trigger fired event"
#: The triggerer writes its part of a task log to ``<attempt log>.trigger.<triggerer job id>.log``;
#: the API lists each part's file among the log's sources.
TRIGGER_LOG_SOURCE = re.compile(r"\.log\.trigger\.(\d+)\.log\b")


@dataclass(frozen=True)
class TaskLog:
    """One task instance of a run, with its whole log as the REST API returns it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None
    log: str

    @property
    def name(self) -> str:
        index = "" if self.map_index < 0 else f"[{self.map_index}]"
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}"


def triggerer_jobs_in(log: str) -> set[int]:
    """Ids of the triggerer jobs that wrote a part of this task log."""
    return {int(job) for job in TRIGGER_LOG_SOURCE.findall(log)}


def deferral_problem(task: TaskLog, triggerer_job_ids: set[int]) -> str | None:
    """Why ``task`` did not provably defer to a triggerer process, or None if it did.

    Proof is three-fold, all read through the API: the worker paused the task as deferred, the
    trigger fired, and the log part holding that came from a job the API lists as a TriggererJob.
    """
    if DEFERRED_MARKER not in task.log:
        return f"{task.name}: the worker never logged {DEFERRED_MARKER!r}"
    if TRIGGER_FIRED_MARKER not in task.log:
        return f"{task.name}: no {TRIGGER_FIRED_MARKER!r} in its log"
    jobs = triggerer_jobs_in(task.log)
    if not jobs & triggerer_job_ids:
        return f"{task.name}: log parts from jobs {sorted(jobs)}, none a triggerer job ({sorted(triggerer_job_ids)})"
    return None


@dataclass
class Evidence:
    """Everything a run observed; each field is read from the real deployment."""

    #: ``"dag_id/run_id"`` -> final state, for every run the deployment made.
    run_states: dict[str, str]
    #: Task instances that must have deferred (connects with ``wait_for_sync``, deferrable sensors).
    must_defer: list[TaskLog]
    #: Ids of the jobs ``/api/v2/jobs?job_type=TriggererJob`` lists.
    triggerer_job_ids: set[int]
    #: table -> portfolio id -> row count: what the sandbox holds, and what the warehouse holds.
    expected_rows: dict[str, dict[str, int]]
    warehouse_rows: dict[str, dict[str, int]]
    #: Asset URIs and portfolio ids the warehouse run must have emitted events for, and the
    #: ``(uri, portfolio_id)`` pairs of the events ``/api/v2/assets/events`` lists for that run.
    expected_asset_events: set[tuple[str, str]]
    asset_events: set[tuple[str, str]]
    #: Asset event ids the warehouse run emitted on the report DAG's asset, and the ids the report
    #: DAG's runs consumed (``upstreamAssetEvents``), by report run id. Airflow may fold several
    #: events into one run, so one consumed event of the warehouse run is the proof.
    report_asset_event_ids: set[int]
    report_runs_consumed: dict[str, set[int]]
    #: Secret values, and ``(source, text)`` of every log, API answer and metadata DB table.
    secrets: Sequence[str]
    haystack: list[tuple[str, str]]
    #: component -> listening TCP addresses of its processes.
    listeners: Mapping[str, list[str]] = field(default_factory=dict)


def evaluate(evidence: Evidence) -> Checks:
    """Every named check of the example-DAG run, all evaluated (a failure never hides another)."""
    checks = Checks()
    failed = {run: state for run, state in sorted(evidence.run_states.items()) if state != "success"}
    checks.expect(
        f"every DAG run succeeded ({len(evidence.run_states) - len(failed)} of {len(evidence.run_states)})",
        bool(evidence.run_states) and not failed,
        json.dumps(failed, indent=1) if evidence.run_states else "no runs at all",
    )
    problems = [p for t in evidence.must_defer if (p := deferral_problem(t, evidence.triggerer_job_ids))]
    checks.expect(
        f"connect and sensor tasks deferred to the triggerer ({len(evidence.must_defer) - len(problems)} "
        f"of {len(evidence.must_defer)})",
        bool(evidence.must_defer) and not problems,
        "\n".join(problems) or "no task to check",
    )
    wrong_tables = {
        table: {"expected": expected, "warehouse": evidence.warehouse_rows.get(table, {})}
        for table, expected in sorted(evidence.expected_rows.items())
        if evidence.warehouse_rows.get(table, {}) != expected
    }
    checks.expect(
        f"warehouse tables hold the expected rows ({', '.join(sorted(evidence.expected_rows))})",
        bool(evidence.expected_rows)
        and all(sum(v.values()) > 0 for v in evidence.expected_rows.values())
        and not wrong_tables,
        json.dumps(wrong_tables, indent=1),
    )
    missing_events = evidence.expected_asset_events - evidence.asset_events
    checks.expect(
        f"asset events exist for every table and file ({len(evidence.expected_asset_events)})",
        bool(evidence.expected_asset_events) and not missing_events,
        f"missing: {sorted(missing_events)}",
    )
    consumed = set().union(*evidence.report_runs_consumed.values()) if evidence.report_runs_consumed else set()
    checks.expect(
        f"the report DAG ran because of those asset events ({len(evidence.report_runs_consumed)} runs)",
        bool(evidence.report_asset_event_ids & consumed),
        f"the warehouse run's events {sorted(evidence.report_asset_event_ids)}; "
        f"consumed by the report runs: {json.dumps({k: sorted(v) for k, v in evidence.report_runs_consumed.items()})}",
    )
    leaks = find_secrets(evidence.secrets, evidence.haystack)
    checks.expect(
        f"no secret in {len(evidence.haystack)} logs, API answers and metadata DB tables",
        bool(evidence.haystack) and not leaks,
        json.dumps(leaks, indent=1) if evidence.haystack else "nothing was searched",
    )
    exposed = {name: [a for a in addresses if not is_loopback(a)] for name, addresses in evidence.listeners.items()}
    exposed = {name: addresses for name, addresses in exposed.items() if addresses}
    checks.expect(
        "nothing listens on a non-loopback address",
        bool(evidence.listeners) and not exposed,
        json.dumps(exposed) if evidence.listeners else "no listeners read",
    )
    return checks
