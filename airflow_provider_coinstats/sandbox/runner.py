"""uvicorn glue: a server that reports when it listens, and quiet handling of injected drops."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import uvicorn

from airflow_provider_coinstats.sandbox.app import DeliberateDrop


class NotifyingServer(uvicorn.Server):
    """A uvicorn server for the sandbox that sets ``started`` once its socket accepts connections.

    Waiting on that event (instead of sleeping) is what makes ``SandboxServer.start()`` both fast
    and reliable. ``started`` is also set when startup fails, so nobody waits forever.
    """

    def __init__(self, app: Any, started: threading.Event, graceful_shutdown: int) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                http="h11",
                lifespan="off",
                log_level="warning",
                access_log=False,
                # None leaves the host application's logging configuration alone.
                log_config=None,
                # Bounded so that stop() is not held up by a request stuck in a "slow" fault.
                timeout_graceful_shutdown=graceful_shutdown,
            )
        )
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self._started_event.set()


class _HideDeliberateDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        # Injected drops, and requests (e.g. in a "slow" fault) cancelled by stop(), are expected;
        # uvicorn's one-line "Cancel N running task(s)" notice still reports the latter.
        return not isinstance(exc, DeliberateDrop | asyncio.CancelledError)


def install_log_filter() -> None:
    """Keep uvicorn from logging tracebacks for injected drops and shutdown cancellations."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDeliberateDrops) for f in logger.filters):
        logger.addFilter(_HideDeliberateDrops())
