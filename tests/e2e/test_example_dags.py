"""Issue 10: the example DAGs in the deployment users scale to, and the UI in a real browser.

A real CeleryExecutor deployment on loopback, started from nothing: PostgreSQL (metadata DB,
Celery result backend and the warehouse database), Redis (the broker), one ``airflow celery
worker``, scheduler, dag-processor, triggerer and api-server, each its own process group, and
the CoinStats sandbox as the API. Driven through the REST API v2 with a JWT, as an operator's
tooling would: unpause and trigger every example DAG (wallet, exchange, mapped many-wallets with
deferrable sensors, warehouse; the asset-scheduled report follows by itself). Then the named
checks of :mod:`tests.e2e.example_checks`: every run succeeded; connects and sensors deferred to
the triggerer process; the warehouse tables hold what the sandbox holds; the asset events exist
and the report DAG consumed them; no secret in any component's log, task log, API answer or
metadata DB table; nothing listens on a non-loopback address.

Meanwhile a real chromium (Playwright), logged in through the UI, adds a CoinStats connection
(the form is compared with the form definition the API serves, ``/ui/connections/hook_meta``),
tests it with the right and a wrong key, and later opens the connect task's "CoinStats Portfolio"
link, the warehouse run's graph and the asset graph. Screenshots go to
``$COINSTATS_E2E_SCREENSHOTS`` (``docs/images`` to refresh the committed ones), else to a temp dir.

Nothing is mocked. ``COINSTATS_E2E_BREAK`` (comma separated) breaks a run on purpose, to show the
checks fail and say which: ``run`` (the exchange run asks for an exchange the API does not
support), ``secret`` (the sandbox key is written into the scheduler's log), ``defer`` (the
sandbox reports every portfolio synced at once, so nothing needs to defer).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.api import AirflowApi, ApiError
from tests.e2e.checks import Checks, read_texts
from tests.e2e.deployment import API_USER, ROOT, Deployment, secrets_token
from tests.e2e.example_checks import Evidence, TaskLog, evaluate
from tests.e2e.processes import DeploymentError, poll_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("COINSTATS_E2E") != "1", reason="a real deployment: run with `make e2e`"),
]

BREAK = {b.strip() for b in os.environ.get("COINSTATS_E2E_BREAK", "").split(",") if b.strip()}
WAREHOUSE = "coinstats_warehouse"
REPORT = "coinstats_holdings_report"
WAREHOUSE_DAG = "coinstats_warehouse_pipeline"
RUN_ID = "e2e"
DATASETS = ("coins", "value", "transactions")
#: The link template the deployment's coinstats_default carries, so the link names the portfolio.
PORTFOLIO_URL_TEMPLATE = "https://coinstats.app/portfolio/?e2e={portfolio_id}"
#: Each run connects its own wallets and exchange accounts (the many-wallets DAG's three are fixed),
#: so no run finds a portfolio another run already synced: every wait below really waits.
RUNS: dict[str, dict[str, Any]] = {
    "coinstats_wallet_pipeline": {"address": "0x00000000219ab540356cBB839Cbe05303d7705Fa"},
    "coinstats_exchange_pipeline": {"exchange": "no-such-exchange" if "run" in BREAK else "coinbase"},
    "coinstats_many_wallets": {},
    WAREHOUSE_DAG: {"address": "0xBE0eB53F46cd790Cd13851d5EFf43D12404d33E8", "exchange": "kraken"},
}
#: (dag_id, task_id) that must defer: wait_for_sync connects and the deferrable mapped sensors.
MUST_DEFER = {
    ("coinstats_exchange_pipeline", "connect_exchange"),
    ("coinstats_many_wallets", "wait_for_sync"),
    (WAREHOUSE_DAG, "connect_wallet"),
    (WAREHOUSE_DAG, "connect_exchange"),
}
RUN_TIMEOUT = 240.0


def dag_files() -> list[Path]:
    return sorted((ROOT / "example_dags").glob("*.py"))


@pytest.fixture
def shots() -> Iterator[Path]:
    wanted = os.environ.get("COINSTATS_E2E_SCREENSHOTS")
    if wanted:
        yield (ROOT / wanted) if not Path(wanted).is_absolute() else Path(wanted)
        return
    with tempfile.TemporaryDirectory(prefix="coinstats-e2e-shots-") as tmp:
        yield Path(tmp)


def trigger_all(api: AirflowApi) -> None:
    """Trigger each example DAG once (while paused), then unpause them all, the report DAG too.

    The warehouse DAG runs ``@daily``: unpausing it would also start a scheduled run for the
    latest interval. Triggering our run for exactly that logical date makes it that run.
    """
    for dag_id, conf in RUNS.items():
        if dag_id == WAREHOUSE_DAG:
            due = api.dag(dag_id)["next_dagrun_logical_date"]
            body = {"dag_run_id": RUN_ID, "logical_date": due, "conf": conf}
            api.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
        else:
            api.trigger(dag_id, RUN_ID, conf=conf)
    for dag_id in [*RUNS, REPORT]:
        api.unpause(dag_id)


def task_logs(api: AirflowApi, dag_id: str, run_id: str) -> list[TaskLog]:
    logs = []
    for ti in api.task_instances(dag_id, run_id):
        tries = int(ti["try_number"] or 0)
        # A task that never ran (e.g. upstream_failed) has no try and no log.
        text = api.task_log(dag_id, run_id, ti["task_id"], tries, ti["map_index"]) if tries else ""
        logs.append(TaskLog(dag_id, run_id, ti["task_id"], ti["map_index"], ti["state"], text))
    return logs


def asset_events(api: AirflowApi, **filters: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api.request("GET", "/assets/events", params={"limit": 100, **filters})[
        "asset_events"
    ]
    return result


def report_runs_consumed(api: AirflowApi) -> dict[str, set[int]]:
    consumed = {}
    for run_id in api.dag_runs(REPORT):
        events = api.request("GET", f"/dags/{REPORT}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]
        consumed[run_id] = {e["id"] for e in events}
    return consumed


def warehouse_rows(uri: str, portfolios: list[str]) -> dict[str, dict[str, int]]:
    import psycopg2

    rows: dict[str, dict[str, int]] = {}
    conn = psycopg2.connect(uri)
    try:
        with conn.cursor() as cursor:
            for dataset in DATASETS:
                table = f"coinstats_{dataset}"
                cursor.execute(f"SELECT portfolio_id, COUNT(*) FROM {table} GROUP BY portfolio_id")
                rows[table] = {pid: n for pid, n in cursor.fetchall() if pid in portfolios}
    finally:
        conn.close()
    return rows


def sandbox_rows(portfolios: list[str]) -> dict[str, dict[str, int]]:
    """What the sandbox holds for each portfolio, read through the provider's own hook."""
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    expected: dict[str, dict[str, int]] = {f"coinstats_{d}": {} for d in DATASETS}
    with CoinStatsHook("coinstats_e2e_sandbox") as hook:
        for pid in portfolios:
            expected["coinstats_coins"][pid] = len(hook.get_portfolio_coins(pid))
            expected["coinstats_value"][pid] = 1  # one row per portfolio and currency (USD)
            expected["coinstats_transactions"][pid] = sum(1 for _ in hook.iter_portfolio_transactions(pid))
    return expected


def check_ui_connection(ui: Any, api: AirflowApi, deployment: Deployment, wrong_key: str, checks: Checks) -> None:
    """Admin -> Connections -> Add (type CoinStats), then Test with the sandbox key and a wrong key."""
    meta = next(
        m
        for m in api.session.get(f"{api.base_url}/ui/connections/hook_meta", timeout=30).json()
        if m["connection_type"] == "coinstats"
    )
    fields = ui.add_connection(
        "coinstats_ui",
        meta["hook_name"],
        {"host": deployment.sandbox_url, "password": deployment.sandbox_api_key},
        screenshot="connection-form",
    )
    standard = meta["standard_fields"]
    shown = [
        standard[name]["title"]
        for name in ("host", "password")
        if not standard[name]["hidden"] and standard[name]["title"] in fields
    ]
    checks.expect(
        f"UI connection form shows {', '.join(shown)}",
        len(shown) == 2,
        f"labels shown: {sorted(fields)}",
    )
    api_key = fields.get(standard["password"]["title"])
    checks.expect(
        "UI connection form masks the API key",
        api_key is not None and api_key.input_type() == "password",
        f"API key input: {api_key}",
    )
    wrong = []
    for name, extra in meta["extra_fields"].items():
        title, default = extra["schema"].get("title"), extra["schema"].get("default")
        field = fields.get(title)
        shown_value = field.value() if field else None
        if field is None or not same_value(shown_value, default) or (field.helper or None) != extra["description"]:
            wrong.append(f"{name}: expected {title!r} = {default!r}, shown {field}")
    checks.expect(
        f"UI connection form shows the {len(meta['extra_fields'])} extra fields with their titles and defaults",
        bool(meta["extra_fields"]) and not wrong,
        "\n".join(wrong),
    )
    title, message = click_test(ui, api, "coinstats_ui", "connection-test", checks)
    # The runs spend credits meanwhile: the toast's number is at least what is left now.
    shown = re.search(r"remaining credits: (\d+)", message)
    left = api_credits(deployment)
    checks.expect(
        "UI Test button succeeds on the sandbox key and shows the remaining credits",
        title == "Test Connection Successful" and shown is not None and int(shown.group(1)) >= left > 0,
        f"toast: {title!r} {message!r}; sandbox credits left now: {left}",
    )
    ui.add_connection(
        "coinstats_ui_wrong_key", meta["hook_name"], {"host": deployment.sandbox_url, "password": wrong_key}
    )
    title, message = click_test(ui, api, "coinstats_ui_wrong_key", None, checks)
    checks.expect(
        "UI Test button on a wrong key fails with a clear message without the key",
        title == "Test Connection Failed" and "401" in message and wrong_key not in message,
        f"toast: {title!r} {message!r}",
    )


#: Airflow 3.3.2's answer when the UI tests a stored connection without a port: its Test button
#: sends ``port: 0`` for a NULL port (apache/airflow#73298, fixed after 3.3.2).
PORTLESS_TEST_BUG = "The host or port to test differs from the stored connection"


def click_test(ui: Any, api: AirflowApi, conn_id: str, screenshot: str | None, checks: Checks) -> tuple[str, str]:
    """Click Test; on Airflow's port-0 bug, set port 0 through the REST API (the workaround) and retry."""
    title, message, answer = ui.test_connection(conn_id)
    if PORTLESS_TEST_BUG in answer:
        checks.expect(
            f"Airflow's Test button bug on a port-less connection seen ({conn_id}; apache/airflow#73298)", True
        )
        api.request(
            "PATCH",
            f"/connections/{conn_id}",
            params={"update_mask": "port"},
            json={"connection_id": conn_id, "conn_type": "coinstats", "port": 0},
        )
        title, message, answer = ui.test_connection(conn_id)
    if screenshot:
        ui.screenshot(screenshot)
    return title, message


def same_value(shown: str | None, default: Any) -> bool:
    if default is None:
        return shown in (None, "")
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        try:
            return float(shown or "nan") == float(default)
        except ValueError:
            return False
    return shown == str(default)


def api_credits(deployment: Deployment) -> int:
    import requests

    answer = requests.get(
        f"{deployment.sandbox_url}/usage/credits", headers={"X-API-KEY": deployment.sandbox_api_key}, timeout=10
    )
    return int(answer.json()["remainingCredits"])


def test_example_dags_on_celery_postgres_redis_and_the_ui(shots: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    exchange_key, exchange_secret = f"e2e-exchange-key-{secrets_token()}", f"e2e-exchange-secret-{secrets_token()}"
    wrong_key = f"e2e-wrong-key-{secrets_token()}"
    checks = Checks()
    export = Path(tempfile.mkdtemp(prefix="coinstats-e2e-export-"))
    try:
        run_and_check(shots, monkeypatch, checks, export, exchange_key, exchange_secret, wrong_key)
    finally:
        shutil.rmtree(export, ignore_errors=True)
    print(f"[e2e] screenshots in {shots}", flush=True)
    print(f"[e2e] total wall time: {time.monotonic() - started:.1f} s", flush=True)
    checks.raise_if_failed()


def run_and_check(
    shots: Path,
    monkeypatch: pytest.MonkeyPatch,
    checks: Checks,
    export: Path,
    exchange_key: str,
    exchange_secret: str,
    wrong_key: str,
) -> None:
    with Deployment(
        dag_files=dag_files(),
        dag_ids=[*RUNS, REPORT],
        celery=True,
        connections={
            "coinstats_example_exchange": json.dumps(
                {"conn_type": "generic", "login": exchange_key, "password": exchange_secret}
            )
        },
        databases={WAREHOUSE: WAREHOUSE},
        secret_values=[exchange_key, exchange_secret, wrong_key],
        # Two 409s after each connect; "defer" makes every portfolio synced at once.
        sandbox_args=["--sync-polls", "0" if "defer" in BREAK else "2"],
        coinstats_extra={"portfolio_url_template": PORTFOLIO_URL_TEMPLATE},
        airflow_env={
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "COINSTATS_EXAMPLE_POKE_INTERVAL": "1",
            "COINSTATS_EXAMPLE_EXPORT_PATH": str(export),
        },
        keep_dir=os.environ.get("COINSTATS_E2E_KEEP") == "1",
    ) as deployment:
        api = deployment.api
        monkeypatch.setenv(
            "AIRFLOW_CONN_COINSTATS_E2E_SANDBOX",
            json.dumps(
                {"conn_type": "coinstats", "host": deployment.sandbox_url, "password": deployment.sandbox_api_key}
            ),
        )
        with deployment.stage("trigger the example DAGs (REST API)"):
            trigger_all(api)
        from tests.e2e.ui import AirflowUi

        with AirflowUi.open(api.base_url, API_USER, deployment.api_password, shots) as ui:
            with deployment.stage("UI: add and test a CoinStats connection (chromium)"):
                check_ui_connection(ui, api, deployment, wrong_key, checks)
            with deployment.stage("example DAG runs finish"):
                for dag_id in RUNS:
                    api.wait_for_runs(dag_id, [RUN_ID], RUN_TIMEOUT)
            with deployment.stage("asset-triggered report runs finish"):
                report_ids = wait_for_reports(api)
            with deployment.stage("UI: extra link, graph, asset graph"):
                check_ui_views(ui, api, checks)

        with deployment.stage("read the evidence"):
            if "secret" in BREAK:
                with open(deployment.groups["scheduler"].log, "a") as log:
                    log.write(f"planted by COINSTATS_E2E_BREAK=secret: {deployment.sandbox_api_key}\n")
            evidence = gather(api, deployment, export, report_ids)
        checks.results += evaluate(evidence).results
        if checks.failed:
            # The deployment's folder is deleted on exit: keep the failed tasks' errors in the CI log.
            for path, line in task_log_errors(deployment.log_files()):
                print(f"[e2e] {path.name}: {line}", flush=True)


def task_log_errors(paths: list[Path], limit: int = 40) -> list[tuple[Path, str]]:
    """Error lines of the task logs (``tasks/`` under the deployment's log folder), at most ``limit``."""
    lines = [
        (path, line.strip()[:400])
        for path in paths
        if "tasks" in path.parts
        for line in path.read_text(errors="replace").splitlines()
        if "ERROR" in line or "Error:" in line
    ]
    return lines[:limit]


def queued_events(api: AirflowApi, dag_id: str) -> int:
    """Asset events queued for ``dag_id`` that no run has consumed yet (the API answers 404 for none)."""
    try:
        return int(api.request("GET", f"/dags/{dag_id}/assets/queuedEvents")["total_entries"])
    except ApiError as error:
        if error.status == 404:
            return 0
        raise


def wait_for_reports(api: AirflowApi) -> set[int]:
    """Wait until a report run consumed a coins-table event of our warehouse run, no event is
    queued for another run, and every report run has finished; the warehouse run's event ids."""
    from airflow_provider_coinstats.export.assets import sql_asset

    uri = sql_asset(WAREHOUSE, "coinstats_coins").uri
    wanted: set[int] = set()
    consumed: dict[str, set[int]] = {}

    def done() -> bool:
        nonlocal wanted, consumed
        events = asset_events(api, source_dag_id=WAREHOUSE_DAG, source_run_id=RUN_ID)
        wanted = {e["id"] for e in events if e["uri"] == uri}
        consumed = report_runs_consumed(api)
        states = {r["state"] for r in api.dag_runs(REPORT).values()}
        return (
            bool(wanted & set().union(*consumed.values(), set()))
            and states <= {"success", "failed"}
            and not queued_events(api, REPORT)
        )

    if not poll_until(done, time.monotonic() + 120, interval=1.0):
        raise DeploymentError(f"report runs did not consume events {sorted(wanted)}: {consumed}")
    return wanted


def check_ui_views(ui: Any, api: AirflowApi, checks: Checks) -> None:
    pid = api.xcom(WAREHOUSE_DAG, RUN_ID, "connect_wallet")
    href = ui.extra_link(WAREHOUSE_DAG, RUN_ID, "connect_wallet", "CoinStats Portfolio")
    ui.screenshot("extra-link")
    expected = api.xcom(WAREHOUSE_DAG, RUN_ID, "connect_wallet", "portfolio_url")
    checks.expect(
        "UI: the connect task's CoinStats Portfolio link points at the portfolio URL",
        href == expected == PORTFOLIO_URL_TEMPLATE.format(portfolio_id=pid),
        f"link {href!r}, XCom portfolio_url {expected!r}, portfolio {pid!r}",
    )
    tasks = api.task_instances(WAREHOUSE_DAG, RUN_ID)
    nodes = ui.graph(WAREHOUSE_DAG, RUN_ID, len(tasks), "warehouse-graph")
    checks.expect(
        "UI: the warehouse run's graph shows every task",
        sorted(nodes) == sorted(t["task_id"] for t in tasks),
        f"graph nodes: {nodes}",
    )
    from airflow_provider_coinstats.export.assets import sql_asset

    labels = ui.asset_graph(sql_asset(WAREHOUSE, "coinstats_coins").uri, "asset-graph")
    checks.expect(
        "UI: the asset graph links the warehouse DAG to the report DAG",
        WAREHOUSE_DAG in labels and REPORT in labels,
        f"asset graph nodes: {labels}",
    )


def gather(api: AirflowApi, deployment: Deployment, export: Path, report_ids: set[int]) -> Evidence:
    from airflow_provider_coinstats.export.assets import file_asset, sql_asset

    all_runs = {dag_id: api.dag_runs(dag_id) for dag_id in [*RUNS, REPORT]}
    run_states = {f"{dag_id}/{run_id}": r["state"] for dag_id, rs in all_runs.items() for run_id, r in rs.items()}
    logs = [log for dag_id, rs in all_runs.items() for run_id in rs for log in task_logs(api, dag_id, run_id)]
    must_defer = [t for t in logs if t.run_id == RUN_ID and (t.dag_id, t.task_id) in MUST_DEFER]
    triggerers = api.request("GET", "/jobs", params={"job_type": "TriggererJob", "limit": 100})["jobs"]

    portfolios = [api.xcom(WAREHOUSE_DAG, RUN_ID, f"connect_{kind}") for kind in ("wallet", "exchange")]
    export_root = str(export)
    expected_events = {
        (asset.uri, pid)
        for pid in portfolios
        for d in DATASETS
        for asset in (sql_asset(WAREHOUSE, f"coinstats_{d}"), file_asset(export_root, d))
    }
    events = asset_events(api, source_dag_id=WAREHOUSE_DAG, source_run_id=RUN_ID)

    # Secrets: every log file (components', tasks' and triggerer parts), the task logs and task
    # instances as the API serves them, and every metadata DB table.
    haystack = read_texts(deployment.log_files())
    haystack += [(f"API task log of {t.name}", t.log) for t in logs]
    haystack += [
        (f"API task instances of {dag_id}/{run_id}", json.dumps(api.task_instances(dag_id, run_id)))
        for dag_id, rs in all_runs.items()
        for run_id in rs
    ]
    haystack += deployment.metadata_db_text()
    # The haystack is real: task logs hold the provider's lines, the DB holds the portfolios.
    assert sum("CoinStats portfolio" in text for _, text in haystack) >= 10, "task logs not read"
    assert any(portfolios[0] in text for name, text in haystack if name.startswith("metadata DB")), "DB not read"

    return Evidence(
        run_states=run_states,
        must_defer=must_defer,
        triggerer_job_ids={j["id"] for j in triggerers},
        expected_rows=sandbox_rows(portfolios),
        warehouse_rows=warehouse_rows(deployment.database_uri(WAREHOUSE), portfolios),
        expected_asset_events=expected_events,
        asset_events={(e["uri"], (e.get("extra") or {}).get("portfolio_id")) for e in events},
        report_asset_event_ids=report_ids,
        report_runs_consumed=report_runs_consumed(api),
        secrets=deployment.secrets,
        haystack=haystack,
        listeners=deployment.listeners(),
    )
