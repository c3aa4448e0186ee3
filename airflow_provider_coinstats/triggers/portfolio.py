"""The deferrable path: wait for a portfolio's sync in the triggerer.

The trigger fetches its connection asynchronously once, then probes with
:func:`~airflow_provider_coinstats.sync_probe.arun_probe` (the same request, classifier and retry
policy as the sync sensor, over ``aiohttp``), sleeping with ``asyncio.sleep`` between polls. It owns
an absolute wall-clock deadline, so the timeout holds even if the triggerer restarts: a trigger
re-created from its serialized kwargs picks up the same deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_coinstats._compat import aget_connection
from airflow_provider_coinstats.api.settings import ClientSettings, settings_from_connection, with_max_attempts
from airflow_provider_coinstats.exceptions import CoinStatsError
from airflow_provider_coinstats.sync_probe import (
    ProbeResult,
    arun_probe,
    make_event,
    probe_request,
)

#: Each wait is stretched or shrunk by up to this fraction, at random.
POLL_JITTER = 0.1

#: The jitter source of every trigger in the process (a ``random.Random`` is 2.5 KiB; one per
#: trigger adds up in a triggerer running thousands).
_JITTER_RNG = random.Random()


#: How long a triggerer process reuses a connection it has read. Hundreds of triggers on the
#: same connection then share one lookup (each costs ~0.7 ms of blocking work on the event loop),
#: while a rotated key still takes effect within this many seconds.
SETTINGS_TTL = 30.0

_settings_cache: dict[str, tuple[float, ClientSettings]] = {}


async def cached_settings(conn_id: str) -> ClientSettings:
    """The connection's settings, read at most once per ``SETTINGS_TTL`` per process."""
    now = time.monotonic()
    hit = _settings_cache.get(conn_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    settings = settings_from_connection(await aget_connection(conn_id), conn_id)
    _settings_cache[conn_id] = (now + SETTINGS_TTL, settings)
    return settings


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]


def poll_delay(poll_interval: float, polls: int, exponential_backoff: bool, max_wait: float | None) -> float:
    """Seconds to wait after poll number ``polls`` (1-based): fixed, or doubling up to ``max_wait``."""
    if not exponential_backoff:
        return poll_interval
    delay = poll_interval * 2.0 ** (polls - 1)
    return min(delay, max_wait) if max_wait else delay


class CoinStatsPortfolioSyncTrigger(BaseTrigger):
    """Fire once the portfolio's data stops answering 409 "Transactions not synced".

    Kwargs are JSON primitives only. ``end_time`` is an absolute UNIX timestamp. The event is one of
    ``synced``, ``timeout``, ``error`` (transient failures beyond the budget) or ``failed`` (an
    error a retry cannot fix), checked by the deferring task's ``execute_complete``.

    Example::

        CoinStatsPortfolioSyncTrigger(
            portfolio_id="66c19c585400000000000000",
            coinstats_conn_id="coinstats_default",
            poll_interval=30,
            end_time=time.time() + 3600,
        )
    """

    def __init__(
        self,
        portfolio_id: str,
        coinstats_conn_id: str = "coinstats_default",
        probe: str = "transactions",
        poll_interval: float = 60.0,
        end_time: float | None = None,
        exponential_backoff: bool = False,
        max_wait: float | None = None,
        max_consecutive_failures: int = 3,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.portfolio_id = portfolio_id
        self.coinstats_conn_id = coinstats_conn_id
        self.probe = probe
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time) if end_time is not None else None
        self.exponential_backoff = bool(exponential_backoff)
        self.max_wait = float(max_wait) if max_wait is not None else None
        self.max_consecutive_failures = int(max_consecutive_failures)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "portfolio_id": self.portfolio_id,
                "coinstats_conn_id": self.coinstats_conn_id,
                "probe": self.probe,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "exponential_backoff": self.exponential_backoff,
                "max_wait": self.max_wait,
                "max_consecutive_failures": self.max_consecutive_failures,
            },
        )

    def _remaining(self) -> float | None:
        return None if self.end_time is None else self.end_time - time.time()

    def _wait_before_poll(self, polls: int, rng: random.Random) -> float:
        # Wait before every poll: whoever deferred has just talked to CoinStats (the sensor's own
        # first poke, or the connect call). The first wait is spread over half to a full interval
        # and later ones jittered, so many triggers starting together (a triggerer restart) do
        # not fetch connections and poll in lock-step on one event loop.
        delay = poll_delay(self.poll_interval, max(polls, 1), self.exponential_backoff, self.max_wait)
        delay *= rng.uniform(0.5, 1.0) if polls == 0 else rng.uniform(1 - POLL_JITTER, 1 + POLL_JITTER)
        remaining = self._remaining()
        if remaining is not None:
            delay = max(0.0, min(delay, remaining))
        return delay

    async def _sleep_before_poll(self, polls: int, rng: random.Random) -> None:
        await asyncio.sleep(self._wait_before_poll(polls, rng))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        rng = _JITTER_RNG
        try:
            request = probe_request(self.probe, self.portfolio_id)
        except CoinStatsError as error:
            yield _event(make_event("failed", self.portfolio_id, ProbeResult("failed", str(error))))
            return
        await self._sleep_before_poll(0, rng)
        try:
            settings = with_max_attempts(
                await cached_settings(self.coinstats_conn_id), self.max_consecutive_failures + 1
            )
        except CoinStatsError as error:
            yield _event(make_event("failed", self.portfolio_id, ProbeResult("failed", str(error))))
            return

        # Imported here: aiohttp is only needed once the trigger runs.
        from airflow_provider_coinstats.api.async_transport import AsyncTransport

        polls = 0
        async with AsyncTransport(settings, self.log) as transport:
            while True:
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    waited = round(time.monotonic() - started, 1)
                    yield _event(make_event("timeout", self.portfolio_id, polls=polls, waited=waited))
                    return
                # Retries inside a poll must not run past the deadline either.
                budget = None if remaining is None else replace(settings.retry, max_retry_time=remaining)
                result = await arun_probe(transport, request, budget)
                polls += 1
                self.log.info("CoinStats portfolio %s poll %d: %s", self.portfolio_id, polls, result.describe())
                if result.state != "syncing":
                    status = {"synced": "synced", "transient": "error", "failed": "failed"}[result.state]
                    yield _event(make_event(status, self.portfolio_id, result, polls=polls))
                    return
                await self._sleep_before_poll(polls, rng)
