"""A real multi-process Airflow deployment on loopback, started from nothing in a temp dir.

:class:`Deployment` starts, in this order, each as its own process group with its log in the
temp dir:

1. the CoinStats sandbox (``python -m airflow_provider_coinstats.sandbox``) and a throwaway
   PostgreSQL server for the metadata DB (``.ci/postgres.sh start``; pg_ctl runs it as a daemon,
   so ``.ci/postgres.sh stop`` stops it), plus any extra databases in it (e.g. a warehouse);
   with ``celery=True`` also a throwaway Redis (``.ci/redis.sh start``) as the Celery broker;
2. ``airflow db migrate``;
3. ``airflow scheduler`` (LocalExecutor, or CeleryExecutor with the PostgreSQL metadata DB as the
   result backend), ``airflow dag-processor``, ``airflow triggerer`` and ``airflow api-server``;
   with ``celery=True`` also one ``airflow celery worker``.

Readiness is polled, never slept for: the api-server's ``/api/v2/monitor/health`` must report
the metadata DB, scheduler, triggerer and dag-processor healthy, and every DAG the caller named
must be parsed with no import error. Connections come from ``AIRFLOW_CONN_*`` variables only.
The REST API is reached with :class:`~tests.e2e.api.AirflowApi`, logged in as a SimpleAuthManager
admin whose password the harness generates.

Leaving the ``with`` block, however it is left (an exception, pytest's timeout, SIGTERM), stops
everything it started: SIGTERM to each process group, SIGKILL after a grace period, then the
PostgreSQL and Redis servers (by their own pid files). Nothing is ever killed by name.

Each stage's wall time is printed and kept in ``timings``.

Example::

    with Deployment(dag_files=[dag_file], dag_ids=["my_dag"], connections={"x": "..."}) as dep:
        dep.api.unpause("my_dag")
        dep.api.trigger("my_dag", "run-1")
        dep.api.wait_for_runs("my_dag", ["run-1"], timeout=60)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import requests

from tests.e2e.api import AirflowApi
from tests.e2e.processes import DeploymentError, ProcessGroup, group_members, listening_sockets, poll_until, stop_groups

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SCRIPT = ROOT / ".ci" / "postgres.sh"
REDIS_SCRIPT = ROOT / ".ci" / "redis.sh"
#: The Airflow components, each started as ``airflow <args>`` in its own process group.
#: ``--skip-serve-logs``: Airflow's log server binds every interface (its host is hard-coded) on a
#: fixed port; the api-server reads the task logs from the shared log folder instead.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer", "--skip-serve-logs"),
    "api-server": ("api-server",),
}
#: The Celery worker of ``Deployment(celery=True)``. Without gossip and mingle it needs no other
#: worker to start; ``--skip-serve-logs`` as above (the task logs are on the shared local disk).
CELERY_WORKER: tuple[str, ...] = ("celery", "worker", "--skip-serve-logs", "--without-gossip", "--without-mingle")
#: What a Celery worker logs once it consumes from the broker.
CELERY_READY_MARKER = " ready."
#: Components ``/api/v2/monitor/health`` reports on, which must all be healthy.
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
API_USER = "e2e"


def free_port() -> int:
    """A port the kernel reports free on 127.0.0.1 (the api-server binds it moments later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def base_environment() -> dict[str, str]:
    """This process's environment without any Airflow or CoinStats setting.

    The pytest process has its own AIRFLOW_HOME, DAGs folder and connections (tests/conftest.py);
    none of it may leak into the deployment.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "COINSTATS_"))}
    # The components find each other's `airflow` entry point on PATH (as `airflow standalone` does).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class Deployment:
    """Scheduler, dag-processor, triggerer, api-server, PostgreSQL and the sandbox on loopback.

    ``connections`` maps conn ids to their ``AIRFLOW_CONN_*`` values (URI or JSON);
    ``coinstats_default`` is added, pointing at the sandbox with the sandbox's API key.
    ``airflow_env`` adds or overrides ``AIRFLOW__SECTION__KEY`` variables (e.g. another executor)
    and ``components`` the long-running ``airflow`` commands (e.g. plus ``("celery", "worker")``).
    ``secrets`` lists every secret the deployment holds: the sandbox key, the JWT and API secret
    keys, the Fernet key, the admin password, plus ``secret_values`` from the caller, for the tests
    that search logs and the metadata DB for them.
    ``celery=True`` runs CeleryExecutor: a Redis broker, the metadata DB as result backend and one
    ``airflow celery worker`` with ``worker_concurrency`` processes.
    ``databases`` maps conn ids to names of extra databases created in the PostgreSQL server,
    each reachable through a ``postgres`` connection of that id (e.g. a warehouse).
    ``coinstats_extra`` is the extra of ``coinstats_default``.

    Example::

        with Deployment(dag_files=[path], dag_ids=["my_dag"], sandbox_args=["--sync-polls", "1"]) as dep:
            print(dep.sandbox_url, dep.api.health())
    """

    def __init__(
        self,
        *,
        dag_files: Sequence[Path],
        dag_ids: Sequence[str],
        connections: Mapping[str, str] | None = None,
        secret_values: Sequence[str] = (),
        sandbox_args: Sequence[str] = (),
        parallelism: int = 12,
        airflow_env: Mapping[str, str] | None = None,
        components: Mapping[str, Sequence[str]] = COMPONENTS,
        celery: bool = False,
        worker_concurrency: int = 8,
        databases: Mapping[str, str] | None = None,
        coinstats_extra: Mapping[str, Any] | None = None,
        start_timeout: float = 120.0,
        stop_grace: float = 15.0,
        keep_dir: bool = False,
        out: Callable[[str], None] = print,
    ) -> None:
        self.dag_files = list(dag_files)
        self.dag_ids = list(dag_ids)
        self.sandbox_api_key = f"e2e-key-{secrets_token()}"
        self._password = secrets_token()
        self._jwt_secret = secrets_token()
        self._api_secret_key = secrets_token()
        from cryptography.fernet import Fernet  # Airflow's own dependency

        self._fernet_key = Fernet.generate_key().decode()
        self.secrets = [
            self.sandbox_api_key,
            self._jwt_secret,
            self._api_secret_key,
            self._fernet_key,
            self._password,
            *secret_values,
        ]
        self._connections = dict(connections or {})
        self._sandbox_args = list(sandbox_args)
        self.parallelism = parallelism
        self._airflow_env = dict(airflow_env or {})
        self.components = dict(components)
        self.celery = celery
        if celery:
            self.components["celery-worker"] = (*CELERY_WORKER, "--concurrency", str(worker_concurrency))
        self._databases = dict(databases or {})
        self._coinstats_extra = dict(coinstats_extra or {})
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.keep_dir = keep_dir
        self._out = out
        self.root = Path(tempfile.mkdtemp(prefix="coinstats-e2e-"))
        self.home = self.root / "airflow-home"
        self.dags_folder = self.root / "dags"
        self.logs = self.root / "logs"
        # Its own dir under /tmp: postgres.sh hands it to the postgres user, who cannot enter self.root.
        self.pg_dir: Path | None = None
        self.redis_dir: Path | None = None
        self.broker_url = ""
        self.groups: dict[str, ProcessGroup] = {}
        self.timings: list[tuple[str, float]] = []
        self.stopped: dict[str, str] = {}
        self.sandbox_url = ""
        self.api_url = ""
        self.metadata_db_uri = ""
        self.env: dict[str, str] = {}
        self._api: AirflowApi | None = None
        self._previous_sigterm: Any = None

    @property
    def api_password(self) -> str:
        """The admin's password, for logging in through the UI."""
        return self._password

    @property
    def api(self) -> AirflowApi:
        assert self._api is not None, "the deployment is not started"
        return self._api

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> Deployment:
        self._catch_sigterm()
        try:
            self.start()
        except BaseException:
            self._stop_keeping_error()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.stop()
        else:
            self._stop_keeping_error()

    def _stop_keeping_error(self) -> None:
        """Stop while an error propagates: a failed clean-up is printed, never raised over it."""
        try:
            self.stop()
        except DeploymentError as error:
            self._out(f"[e2e] clean-up failed too: {error}")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and print it, so a slow or failing stage is obvious in the output."""
        started = time.monotonic()
        self._out(f"[e2e] {name} ...")
        try:
            yield
        finally:
            elapsed = time.monotonic() - started
            self.timings.append((name, elapsed))
            self._out(f"[e2e] {name}: {elapsed:.1f} s")

    def start(self) -> None:
        for folder in (self.home, self.dags_folder, self.logs):
            folder.mkdir(parents=True)
        for dag_file in self.dag_files:
            shutil.copy(dag_file, self.dags_folder / dag_file.name)
        with self.stage("sandbox, PostgreSQL" + (" and Redis" if self.celery else "")):
            self._start_sandbox()
            self._start_postgres()
            self._create_databases()
            if self.celery:
                self._start_redis()
            self._wait_sandbox()
        self.env = self._airflow_environment()
        with self.stage("airflow db migrate"):
            migrate = self._spawn("db-migrate", ("db", "migrate"))
            status = migrate.wait(self.start_timeout)
            if status != 0:
                raise DeploymentError(f"airflow db migrate exited with {status}\n{migrate.tail()}")
        with self.stage(f"{', '.join(self.components)} healthy"):
            for name, args in self.components.items():
                self._spawn(name, args)
            self._api = AirflowApi(self.api_url, API_USER, self._password)
            self._wait("components healthy", self._healthy)
            if self.celery:
                self._wait("celery worker ready", self._worker_ready)
            self.api.login()
        with self.stage(f"DAGs parsed ({', '.join(self.dag_ids)})"):
            self._wait("DAGs parsed", self._dags_parsed)

    def stop(self) -> None:
        """Stop every process group, then PostgreSQL; idempotent. Prints how each one ended.

        Every step is attempted even if an earlier one fails; the first failure is raised at the end.
        """
        started = time.monotonic()
        self._ignore_sigterm()  # a second SIGTERM must not cut the clean-up short
        failures: list[DeploymentError] = []
        if self._api is not None:
            self._api.close()
        # Airflow first (it holds DB connections and talks to the sandbox), then the sandbox.
        airflow = [g for name, g in self.groups.items() if name != "sandbox"]
        sandbox = [g for name, g in self.groups.items() if name == "sandbox"]
        for batch in (airflow, sandbox):
            try:
                self.stopped.update(stop_groups(batch, self.stop_grace))
            except DeploymentError as error:
                failures.append(error)
        self.groups.clear()
        if self.pg_dir is not None:
            try:
                self._stop_postgres()
            except DeploymentError as error:
                failures.append(error)
        if self.redis_dir is not None:
            try:
                self._stop_redis()
            except DeploymentError as error:
                failures.append(error)
        self._restore_sigterm()
        if self.stopped:
            ended = ", ".join(f"{name}: {how}" for name, how in self.stopped.items())
            self._out(f"[e2e] stopped in {time.monotonic() - started:.1f} s ({ended})")
        if not self.keep_dir:
            shutil.rmtree(self.root, ignore_errors=True)
        if failures:
            raise failures[0]

    # -- components ---------------------------------------------------------------------------

    def _spawn(self, name: str, args: Sequence[str], argv0: Sequence[str] | None = None) -> ProcessGroup:
        argv = [*(argv0 or [str(Path(sys.executable).parent / "airflow")]), *args]
        group = ProcessGroup(name, argv, self.logs / f"{name}.log")
        self.groups[name] = group
        group.start(self.env, cwd=self.root)
        return group

    def _start_sandbox(self) -> None:
        self.env = base_environment()
        args = ["-m", "airflow_provider_coinstats.sandbox", "--port", "0", "--api-key", self.sandbox_api_key]
        # The sandbox prints its URL as the first stdout line; its stderr goes to the same log.
        self._spawn("sandbox", [*args, *self._sandbox_args], argv0=[sys.executable])

    def _wait_sandbox(self) -> None:
        log = self.groups["sandbox"].log

        def url_printed() -> bool:
            self._check_running()
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("COINSTATS_SANDBOX_URL="):
                    self.sandbox_url = line.split("=", 1)[1].strip()
                    return True
            return False

        self._wait("sandbox URL", url_printed)
        answer = requests.get(
            f"{self.sandbox_url}/usage/credits", headers={"X-API-KEY": self.sandbox_api_key}, timeout=10
        )
        if answer.status_code != 200:
            raise DeploymentError(f"sandbox answered {answer.status_code} to GET /usage/credits")

    def _start_server(self, script: Path, server_dir: Path) -> str:
        """``.ci/<server>.sh start DIR``: the URL it prints; its progress goes to a log."""
        done = subprocess.run(
            [str(script), "start", str(server_dir)],
            capture_output=True,
            text=True,
            timeout=300,  # covers an apt install on a fresh machine
            check=False,
        )
        (self.logs / f"{script.stem}-start.log").write_text(done.stderr)
        if done.returncode != 0:
            raise DeploymentError(f".ci/{script.name} start failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return done.stdout.strip()

    def _start_postgres(self) -> None:
        self.pg_dir = Path(tempfile.mkdtemp(prefix="coinstats-e2e-postgres-", dir="/tmp"))
        uri = self._start_server(POSTGRES_SCRIPT, self.pg_dir)
        self.metadata_db_uri = uri.replace("postgresql://", "postgresql+psycopg2://", 1)

    def _create_databases(self) -> None:
        import psycopg2  # the test extra's driver

        conn = psycopg2.connect(self.metadata_db_uri.replace("+psycopg2", "", 1))
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cursor:
                for database in self._databases.values():
                    cursor.execute(f'CREATE DATABASE "{database}"')
        finally:
            conn.close()

    def database_uri(self, database: str) -> str:
        """A ``postgresql://`` URI of ``database`` in the deployment's PostgreSQL server."""
        base = self.metadata_db_uri.replace("+psycopg2", "", 1)
        return f"{base.rsplit('/', 1)[0]}/{database}"

    def _start_redis(self) -> None:
        self.redis_dir = Path(tempfile.mkdtemp(prefix="coinstats-e2e-redis-", dir="/tmp"))
        self.broker_url = self._start_server(REDIS_SCRIPT, self.redis_dir)

    def _stop_redis(self) -> None:
        assert self.redis_dir is not None
        redis_dir, self.redis_dir = self.redis_dir, None
        pid_file = redis_dir / "redis.pid"
        try:
            server = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        except (OSError, ValueError, IndexError):
            server = None
        done = subprocess.run(
            [str(REDIS_SCRIPT), "stop", str(redis_dir)], capture_output=True, text=True, timeout=60, check=False
        )
        self.stopped["redis"] = "redis.sh stop" if done.returncode == 0 else f"stop failed: {done.stderr[-500:]}"
        if done.returncode != 0 or (server is not None and pid_alive(server)):
            raise DeploymentError(f"Redis did not stop cleanly: {self.stopped['redis']}")

    def server_pids(self) -> dict[str, int]:
        """The pids of the PostgreSQL postmaster and the Redis server (daemons, not in any group)."""
        pids = {}
        for name, pid_file in (
            ("postgres", self.pg_dir / "data" / "postmaster.pid" if self.pg_dir else None),
            ("redis", self.redis_dir / "redis.pid" if self.redis_dir else None),
        ):
            with contextlib.suppress(OSError, ValueError, IndexError, AttributeError):
                pids[name] = int(pid_file.read_text().split()[0])  # type: ignore[union-attr]
        return pids

    def _stop_postgres(self) -> None:
        assert self.pg_dir is not None
        pid_file = self.pg_dir / "data" / "postmaster.pid"
        try:
            postmaster = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        except (OSError, ValueError, IndexError):
            postmaster = None
        done = subprocess.run(
            [str(POSTGRES_SCRIPT), "stop", str(self.pg_dir)], capture_output=True, text=True, timeout=60, check=False
        )
        self.stopped["postgres"] = "pg_ctl stop" if done.returncode == 0 else f"stop failed: {done.stderr[-500:]}"
        pg_dir, self.pg_dir = self.pg_dir, None
        if postmaster is not None and not poll_until(lambda: not pid_alive(postmaster), time.monotonic() + 10):
            # pg_ctl starts the postmaster as the leader of its own process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(postmaster, signal.SIGKILL)
            self.stopped["postgres"] += "; postmaster SIGKILL"
        shutil.rmtree(pg_dir, ignore_errors=True)
        if done.returncode != 0 or "SIGKILL" in self.stopped["postgres"]:
            raise DeploymentError(f"PostgreSQL did not stop cleanly: {self.stopped['postgres']}")

    def _airflow_environment(self) -> dict[str, str]:
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        passwords = self.root / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({API_USER: self._password}))
        passwords.chmod(0o600)
        env = base_environment()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                # Bounded: LocalExecutor keeps up to this many worker processes on a 2-core machine.
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__FERNET_KEY": self._fernet_key,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_db_uri,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__SECRET_KEY": self._api_secret_key,
                # Every component signs or checks the task JWTs: one shared secret, or tasks get 403.
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
                "AIRFLOW_CONN_COINSTATS_DEFAULT": json.dumps(
                    {
                        "conn_type": "coinstats",
                        "host": self.sandbox_url,
                        "password": self.sandbox_api_key,
                        "extra": self._coinstats_extra,
                    }
                ),
            }
        )
        if self.celery:
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                    # Task results in the metadata DB (celery_taskmeta), as most deployments keep them.
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.metadata_db_uri.replace("+psycopg2", "", 1),
                }
            )
        for conn_id, database in self._databases.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = self.database_uri(database).replace("postgresql://", "postgres://")
        for conn_id, value in self._connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        env.update(self._airflow_env)
        return env

    # -- readiness ----------------------------------------------------------------------------

    def _wait(self, what: str, condition: Callable[[], bool]) -> None:
        if not poll_until(condition, time.monotonic() + self.start_timeout, interval=0.25):
            logs = "\n".join(g.tail(15) for g in self.groups.values())
            raise DeploymentError(f"{what}: not ready after {self.start_timeout:.0f} s\n{logs}")

    def _check_running(self) -> None:
        """A long-running component that exited is a start failure, reported with its log."""
        for name, group in self.groups.items():
            if name != "db-migrate" and not group.running():
                assert group.proc is not None
                raise DeploymentError(f"{name} exited with {group.proc.returncode}\n{group.tail()}")

    def _healthy(self) -> bool:
        self._check_running()
        try:
            health = self.api.health()
        except requests.RequestException:
            return False  # not listening yet
        return all((health.get(c) or {}).get("status") == "healthy" for c in HEALTH_COMPONENTS)

    def _worker_ready(self) -> bool:
        self._check_running()
        return CELERY_READY_MARKER in self.groups["celery-worker"].log.read_text(errors="replace")

    def _dags_parsed(self) -> bool:
        self._check_running()
        errors = self.api.import_errors()
        if errors:
            raise DeploymentError(f"DAG import errors: {json.dumps(errors, indent=1)[:3000]}")
        for dag_id in self.dag_ids:
            try:
                self.api.dag(dag_id)
            except Exception:
                return False
        return True

    # -- SIGTERM ------------------------------------------------------------------------------

    def _catch_sigterm(self) -> None:
        # `make` or CI stopping the run with SIGTERM must still stop what was started: turn it into
        # KeyboardInterrupt, which unwinds through stop().
        if threading.current_thread() is not threading.main_thread():
            return

        def interrupt(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        self._previous_sigterm = signal.signal(signal.SIGTERM, interrupt)

    def _ignore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    # -- logs ---------------------------------------------------------------------------------

    def log_files(self) -> list[Path]:
        """Every log the deployment wrote: components' and tasks' (including triggerer parts)."""
        return sorted(p for p in self.logs.rglob("*") if p.is_file())

    def listeners(self) -> dict[str, list[str]]:
        """Listening TCP addresses of every component (its whole group) and of PostgreSQL and Redis."""
        owners = {name: group_members(group.pgid) for name, group in self.groups.items() if group.alive()}
        for name, pid in self.server_pids().items():
            # The daemons' children (e.g. PostgreSQL's backends) share the daemon's process group.
            owners[name] = group_members(os.getpgid(pid)) if pid_alive(pid) else []
        return {name: [address for _, address in listening_sockets(pids)] for name, pids in owners.items()}

    def metadata_db_text(self) -> list[tuple[str, str]]:
        """Every table of the metadata DB as text, ``(table, rows)``, for the secret search.

        Each column is cast to text; ``bytea`` columns are decoded with ``encode(..., 'escape')``
        so a secret stored as bytes is still found.
        """
        import psycopg2

        conn = psycopg2.connect(self.metadata_db_uri.replace("+psycopg2", "", 1))
        tables: list[tuple[str, str]] = []
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
                )
                columns: dict[str, list[str]] = {}
                for table, column, data_type in cursor.fetchall():
                    cast = f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
                    columns.setdefault(table, []).append(cast)
                for table, casts in columns.items():
                    cursor.execute(f'SELECT {", ".join(casts)} FROM "{table}"')
                    rows = "\n".join("\t".join("" if v is None else v for v in row) for row in cursor.fetchall())
                    tables.append((f"metadata DB table {table}", rows))
        finally:
            conn.close()
        return tables

    def grep_logs(self, needle: str) -> list[str]:
        """Lines of any component log (not task logs) that contain ``needle``."""
        hits = []
        for group_log in sorted(self.logs.glob("*.log")):
            for line in group_log.read_text(errors="replace").splitlines():
                if needle in line:
                    hits.append(f"{group_log.name}: {line.strip()}")
        return hits


def secrets_token() -> str:
    # 32 bytes: Airflow warns about HMAC keys below 64 hex characters for its JWTs.
    return secrets.token_hex(32)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: an orphan's may never be reaped in a container)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
