"""The deferrable path: wait for a portfolio's sync in the triggerer.

The trigger probes through :class:`~airflow_provider_coinstats.hooks.coinstats_async.CoinStatsAsyncHook`
with :func:`~airflow_provider_coinstats.sync_probe.probe.arun_probe` (the same request, classifier
and retry policy as the sensor's poke), sleeping with ``asyncio.sleep`` between polls; the hook
owns the connection, its per-process cache and the transport. The trigger owns an absolute
wall-clock deadline, so the timeout holds even if the triggerer restarts: a trigger re-created
from its serialized kwargs picks up the same deadline.

Two things keep a long wait alive where a plain poll loop would break it:

- Its first poll comes no sooner than ``[coinstats] min_first_poll_delay`` (default 10 s) after the
  trigger was created, i.e. after the task deferred (``not_before``, absolute, so a restart keeps
  it). A trigger that fires earlier can lose Airflow's defer/resume race and get its task failed
  (see :data:`~airflow_provider_coinstats.config.MIN_FIRST_POLL_DELAY`).
- A 401 makes the hook re-read the connection once (:meth:`~airflow_provider_coinstats.hooks.
  coinstats_async.CoinStatsAsyncHook.reread_connection`). When the key (or base URL) has changed,
  the same poll is retried with it, so a key rotated in Airflow during a wait is picked up; a 401
  with the key unchanged, or again with the new one, fails.

The polls count against the deferring task's credit budget: the trigger serializes the budget
(``max_credits``) and what the task had spent before deferring (``credits_spent``), its hook
starts from that, and every event carries the task's new total as ``credits_spent``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_coinstats.api.shared import PortfolioRef, exactly_one_portfolio
from airflow_provider_coinstats.exceptions import CoinStatsError
from airflow_provider_coinstats.hooks.coinstats_async import CoinStatsAsyncHook
from airflow_provider_coinstats.hooks.shared import ashared_portfolio_from_connection
from airflow_provider_coinstats.sync_probe.floors import min_first_poll_delay
from airflow_provider_coinstats.sync_probe.outcomes import ProbeResult, make_event
from airflow_provider_coinstats.sync_probe.probe import arun_probe, probe_request

if TYPE_CHECKING:
    from airflow_provider_coinstats.api.builders import ApiRequest

#: Each wait is stretched or shrunk by up to this fraction, at random.
POLL_JITTER = 0.1

#: The jitter source of every trigger in the process (a ``random.Random`` is 2.5 KiB; one per
#: trigger adds up in a triggerer running thousands).
_JITTER_RNG = random.Random()


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

    Kwargs are JSON primitives only. ``end_time`` is an absolute UNIX timestamp, and so is
    ``not_before``, the earliest first poll (default: ``[coinstats] min_first_poll_delay`` seconds
    after the trigger is created, which is when the task defers). The event is one of
    ``synced``, ``timeout``, ``error`` (transient failures beyond the budget) or ``failed`` (an
    error a retry cannot fix), checked by the deferring task's ``execute_complete``.

    The portfolio is ``portfolio_id`` or ``share_conn_id``, the connection of a shared portfolio:
    the trigger reads its token and passcode in the triggerer (through the async lookup), so the
    trigger row holds only the connection id, and events name the portfolio by its public id.

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
        portfolio_id: str | None = None,
        coinstats_conn_id: str = "coinstats_default",
        probe: str = "transactions",
        poll_interval: float = 60.0,
        end_time: float | None = None,
        exponential_backoff: bool = False,
        max_wait: float | None = None,
        max_consecutive_failures: int = 3,
        not_before: float | None = None,
        max_credits: int | None = None,
        credits_spent: int = 0,
        share_conn_id: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.portfolio_id, self.share_conn_id = exactly_one_portfolio(portfolio_id, share_conn_id)
        # A shared portfolio's public id, known once run() has read its connection (never serialized).
        self._public_id: str | None = None
        self.coinstats_conn_id = coinstats_conn_id
        self.probe = probe
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time) if end_time is not None else None
        self.exponential_backoff = bool(exponential_backoff)
        self.max_wait = float(max_wait) if max_wait is not None else None
        self.max_consecutive_failures = int(max_consecutive_failures)
        # Fixed here, not in run(): a triggerer restart must not push the first poll back again.
        self.not_before = float(not_before) if not_before is not None else time.time() + min_first_poll_delay()
        self.max_credits = None if max_credits is None else int(max_credits)
        self.credits_spent = int(credits_spent)

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
                "not_before": self.not_before,
                "max_credits": self.max_credits,
                "credits_spent": self.credits_spent,
                "share_conn_id": self.share_conn_id,
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
        if polls == 0:
            # The floor beats the deadline too: a "timeout" event is as exposed to the defer/resume
            # race as any other (the task's defer timeout allows for it). Jittered upwards, so
            # triggers deferred together still do not poll in lock-step.
            floor = self.not_before - time.time()
            if floor > delay:
                delay = floor * rng.uniform(1.0, 1.0 + POLL_JITTER)
        return delay

    async def _sleep_before_poll(self, polls: int, rng: random.Random) -> None:
        await asyncio.sleep(self._wait_before_poll(polls, rng))

    @property
    def label(self) -> str:
        """What events and logs name the portfolio by: its id, or a shared portfolio's public id."""
        return self.portfolio_id or self._public_id or f"shared portfolio of connection {self.share_conn_id}"

    async def _portfolio(self) -> PortfolioRef:
        """The portfolio id, or the shared portfolio read from ``share_conn_id`` (in the triggerer)."""
        if self.share_conn_id is None:
            return str(self.portfolio_id)
        share = await ashared_portfolio_from_connection(self.share_conn_id)
        self._public_id = share.public_id
        return share

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        rng = _JITTER_RNG
        try:
            request = probe_request(self.probe, await self._portfolio())
        except CoinStatsError as error:
            failed = ProbeResult("failed", str(error))
            yield _event(make_event("failed", self.label, failed, credits_spent=self.credits_spent))
            return
        await self._sleep_before_poll(0, rng)
        polls = 0
        hook = CoinStatsAsyncHook(
            self.coinstats_conn_id, max_attempts=self.max_consecutive_failures + 1, max_credits=self.max_credits
        )
        hook.credits_spent = self.credits_spent  # the task's budget spans its worker and its trigger
        async with hook:
            while True:
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    waited = round(time.monotonic() - started, 1)
                    yield _event(
                        make_event("timeout", self.label, polls=polls, waited=waited, credits_spent=hook.credits_spent)
                    )
                    return
                polls += 1
                result = await self._poll(hook, request, polls)
                if result.key_rejected and await hook.reread_connection():
                    polls += 1
                    result = await self._poll(hook, request, polls)
                if result.outcome != "syncing":
                    yield _event(
                        make_event(result.outcome, self.label, result, polls=polls, credits_spent=hook.credits_spent)
                    )
                    return
                await self._sleep_before_poll(polls, rng)

    async def _poll(self, hook: CoinStatsAsyncHook, request: ApiRequest, number: int) -> ProbeResult:
        # Retries inside a poll must not run past the deadline either.
        result = await arun_probe(hook, request, deadline=self.end_time)
        self.log.info("CoinStats portfolio %s poll %d: %s", self.label, number, result.describe())
        return result
