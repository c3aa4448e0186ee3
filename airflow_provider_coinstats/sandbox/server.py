"""Run the sandbox app with uvicorn in a background thread on a loopback port."""

from __future__ import annotations

import json
import socket
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airflow_provider_coinstats.sandbox.config import SandboxConfig, loopback_host
from airflow_provider_coinstats.sandbox.state import SandboxState

if TYPE_CHECKING:
    from airflow_provider_coinstats.sandbox.runner import NotifyingServer

#: Seconds a stop() waits for in-flight requests (e.g. a "slow" fault) before cancelling them.
GRACEFUL_SHUTDOWN_SECONDS = 1
_START_TIMEOUT_SECONDS = 30.0


class SandboxServer:
    """A real HTTP server on loopback that behaves like the CoinStats API.

    Example::

        with SandboxServer(SandboxConfig(sync_polls=0)) as sandbox:
            r = requests.get(f"{sandbox.url}/usage/credits", headers={"X-API-KEY": sandbox.api_key})
            os.environ["AIRFLOW_CONN_COINSTATS_DEFAULT"] = sandbox.airflow_connection()
            sandbox.state.add_fault(Fault("status", endpoint="portfolio_coins", status=503, times=1))
    """

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self._bind_host = loopback_host(host)
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("port must be an integer between 0 and 65535")
        self.state = SandboxState(config)
        self._requested_port = port
        self._port: int | None = None
        self._server: NotifyingServer | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ properties

    @property
    def host(self) -> str:
        return self._bind_host

    @property
    def port(self) -> int:
        """The listening port (the requested one until :meth:`start` picks a free one for 0)."""
        return self._port if self._port is not None else self._requested_port

    @property
    def url(self) -> str:
        host = f"[{self._bind_host}]" if ":" in self._bind_host else self._bind_host
        return f"http://{host}:{self.port}"

    @property
    def api_key(self) -> str:
        """The first configured API key."""
        return self.state.config.first_key

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def airflow_connection(self, extra: dict[str, Any] | None = None, api_key: str | None = None) -> str:
        """JSON for an ``AIRFLOW_CONN_<ID>`` environment variable pointing at this sandbox."""
        return json.dumps(
            {
                "conn_type": "coinstats",
                "host": self.url,
                "password": api_key if api_key is not None else self.api_key,
                "extra": extra or {},
            }
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SandboxServer:
        """Start serving in a daemon thread; returns once the socket accepts connections."""
        if self.running:
            return self
        # Imported here so that importing the package (e.g. the pytest plugin) stays cheap.
        from airflow_provider_coinstats.sandbox.app import create_app
        from airflow_provider_coinstats.sandbox.runner import NotifyingServer, install_log_filter

        family = socket.AF_INET6 if ":" in self._bind_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Binding here (not in uvicorn) is what lets port 0 pick a free port we can report.
            sock.bind((self._bind_host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]

        install_log_filter()
        started = threading.Event()
        server = NotifyingServer(create_app(self.state), started, GRACEFUL_SHUTDOWN_SECONDS)
        self._server = server
        self._error = None

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported to start(); a daemon thread has nowhere else to go
                self._error = exc
            finally:
                started.set()
                sock.close()

        self._thread = threading.Thread(target=run, name=f"coinstats-sandbox-{self._port}", daemon=True)
        self._thread.start()
        if not started.wait(_START_TIMEOUT_SECONDS) or not server.started:
            self.stop()
            raise RuntimeError(f"CoinStats sandbox failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Stop gracefully (in-flight requests get GRACEFUL_SHUTDOWN_SECONDS) and join the thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(GRACEFUL_SHUTDOWN_SECONDS + 10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(10)
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SandboxServer(url={self.url!r}, running={self.running})"
