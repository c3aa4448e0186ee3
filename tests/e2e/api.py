"""A small client for Airflow's public REST API v2, as an operator's tooling would use it.

It logs in with ``POST /auth/token`` (SimpleAuthManager user and password) and sends the JWT as
``Authorization: Bearer``. Only the calls the e2e tests need are wrapped; ``request`` reaches any
other endpoint.

Example::

    api = AirflowApi("http://127.0.0.1:8080", "e2e", password)
    api.login()
    api.unpause("my_dag")
    run = api.trigger("my_dag", "run-1", conf={"account": 0})
    runs = api.wait_for_runs("my_dag", ["run-1"], timeout=120)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import requests

from tests.e2e.processes import DeploymentError, poll_until

#: DAG run states after which a run never changes again on its own.
FINISHED_RUN_STATES = frozenset({"success", "failed"})


class ApiError(RuntimeError):
    """A REST API call answered with a non-2xx status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]}")
        self.status = status


class AirflowApi:
    """Airflow REST API v2 over ``requests``, authenticated with a JWT from ``/auth/token``."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self.timeout = timeout
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def login(self) -> None:
        answer = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": self._username, "password": self._password},
            timeout=self.timeout,
        )
        if answer.status_code != 201:
            raise ApiError("POST", "/auth/token", answer.status_code, answer.text)
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of a ``/api/v2`` call (``path`` starts after it); ApiError on a non-2xx answer."""
        answer = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=self.timeout, **kwargs)
        if not answer.ok:
            raise ApiError(method, path, answer.status_code, answer.text)
        return answer.json() if answer.content else None

    def health(self) -> dict[str, Any]:
        """``/monitor/health`` (no login needed): each component's status and latest heartbeat."""
        answer = self.session.get(f"{self.base_url}/api/v2/monitor/health", timeout=self.timeout)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def dag(self, dag_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/dags/{quote(dag_id)}")
        return result

    def import_errors(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/importErrors")["import_errors"]
        return result

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{quote(dag_id)}", json={"is_paused": False})

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        result: dict[str, Any] = self.request("POST", f"/dags/{quote(dag_id)}/dagRuns", json=body)
        return result

    def dag_runs(self, dag_id: str) -> dict[str, dict[str, Any]]:
        """Every run of the DAG, by run id (pages through the 100-per-page limit)."""
        runs: dict[str, dict[str, Any]] = {}
        while True:
            page = self.request("GET", f"/dags/{quote(dag_id)}/dagRuns", params={"limit": 100, "offset": len(runs)})
            runs.update((run["dag_run_id"], run) for run in page["dag_runs"])
            if not page["dag_runs"] or len(runs) >= page["total_entries"]:
                return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances"
        result: list[dict[str, Any]] = self.request("GET", path, params={"limit": 100})["task_instances"]
        return result

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/xcomEntries/{quote(key)}"
        return self.request("GET", path)["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The task's whole log for one try (worker and triggerer parts), one event per line."""
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/logs/{try_number}"
        content = self.request(
            "GET",
            path,
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )["content"]
        lines = []
        for item in content:
            if isinstance(item, dict):
                extras = " ".join(f"{k}={v}" for k, v in item.items() if k not in ("event", "timestamp"))
                lines.append(f"{item.get('timestamp', '')} {item.get('event', '')} {extras}".strip())
            else:
                lines.append(str(item))
        return "\n".join(lines)

    def wait_for_runs(self, dag_id: str, run_ids: Iterable[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Poll until every run has finished; the runs by id. DeploymentError names the unfinished ones."""
        wanted = set(run_ids)
        runs: dict[str, dict[str, Any]] = {}

        def finished() -> bool:
            nonlocal runs
            runs = {k: v for k, v in self.dag_runs(dag_id).items() if k in wanted}
            return len(runs) == len(wanted) and all(r["state"] in FINISHED_RUN_STATES for r in runs.values())

        if not poll_until(finished, time.monotonic() + timeout, interval=0.5):
            pending = {k: runs.get(k, {}).get("state", "missing") for k in sorted(wanted)}
            pending = {k: v for k, v in pending.items() if v not in FINISHED_RUN_STATES}
            raise DeploymentError(f"{dag_id}: runs not finished after {timeout:.0f} s: {pending}")
        return runs
