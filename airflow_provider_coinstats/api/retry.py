"""The retry policy, shared by the sync and the async transport (and so by both hooks).

What is retried is decided by the exception and the request's endpoint (:func:`may_repeat`):

- the exception must be retryable (``CoinStatsError.retryable``): transport failures, 429,
  500/502/503/504 and 2xx bodies that are not complete JSON. 3xx (never followed) and
  400/401/403/404/406/409 are never retried;
- the endpoint's ``repeat`` (in :mod:`.catalog`) must allow it: ``"safe"`` endpoints (reads, and
  connects, which answer ``existing``) retry every retryable failure; ``"if_not_sent"`` endpoints
  (PATCH /portfolio/sync: charged and acted on per call) retry only failures that prove CoinStats
  did nothing: a connection never made (refused, connect timeout) and 429. A 5xx, a read timeout
  or an answer dropped mid-way may hide a sync that ran, so those fail at once.

A delete (``gone_means_done``) that answers 404 on a retry, after an attempt whose outcome was
unknown, is counted as done: that attempt deleted it.

Waits grow exponentially with jitter; a ``Retry-After`` from the server wins, capped so a hostile
or buggy header cannot park a worker for an hour. Attempts and total time are both bounded.

The whole policy is :class:`RetryCall`, one object per call. :func:`call_with_retries` and
:func:`acall_with_retries` are its two drivers; they differ only in how they wait
(``time.sleep`` or ``asyncio.sleep``, which never blocks a triggerer's event loop). A driver
allocates one small object per call and no reference cycle, so a trigger's polls leave nothing
for the garbage collector's full passes over the triggerer's heap.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from airflow_provider_coinstats.api.builders import ApiRequest
from airflow_provider_coinstats.api.settings import RetrySettings
from airflow_provider_coinstats.exceptions import (
    CoinStatsError,
    CoinStatsNotFoundError,
    CoinStatsRateLimitedError,
    CoinStatsTransportError,
)

#: One jitter source per process. A ``random.Random`` is 2.5 KiB and seeding one reads the OS
#: entropy pool; a triggerer would otherwise build one per poll of every trigger.
_RNG = random.Random()


def is_retryable(exc: BaseException) -> bool:
    """True when sending the same request again may succeed (whatever the endpoint)."""
    return isinstance(exc, CoinStatsError) and exc.retryable


def surely_not_processed(exc: BaseException) -> bool:
    """True when the failed attempt cannot have been acted on: never sent, or refused with 429."""
    if isinstance(exc, CoinStatsTransportError):
        return not exc.sent
    return isinstance(exc, CoinStatsRateLimitedError)


def may_repeat(request: ApiRequest, exc: BaseException) -> bool:
    """The policy's decision: may ``request`` be sent again after it failed with ``exc``?"""
    if not is_retryable(exc):
        return False
    return request.endpoint.repeat == "safe" or surely_not_processed(exc)


def next_wait(settings: RetrySettings, attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Equal jitter: half the exponential step is fixed, half random, so waits still grow while
    concurrent clients spread out.
    """
    if retry_after is not None:
        return min(retry_after, settings.retry_after_max)
    step = min(settings.backoff_max, settings.backoff_base * 2.0 ** (attempt - 1))
    return step / 2 + rng.uniform(0, step / 2)


class RetryCall:
    """One call of ``request`` under the policy: what its failed attempts allow next.

    Example::

        call = RetryCall(request, settings.retry, log)
        while True:
            try:
                return send_once(request)
            except CoinStatsError as err:
                if call.already_done(err):
                    return None  # a delete whose earlier, lost answer did it
                wait = call.wait_before_retry(err)
                if wait is None:
                    raise
            time.sleep(wait)
    """

    __slots__ = ("attempts", "log", "outcome_unknown", "request", "settings", "started")

    def __init__(self, request: ApiRequest, settings: RetrySettings, log: logging.Logger | Any) -> None:
        self.request = request
        self.settings = settings
        self.log = log
        self.attempts = 0
        self.started = time.monotonic()
        #: An earlier attempt may have been acted on (its answer lost, a 5xx, ...).
        self.outcome_unknown = False

    def already_done(self, exc: CoinStatsError) -> bool:
        """True when ``exc`` is a delete's 404 after an attempt that may have deleted it.

        Call it once per failed attempt, before :meth:`wait_before_retry`.
        """
        if self.outcome_unknown and self.request.endpoint.gone_means_done and isinstance(exc, CoinStatsNotFoundError):
            self.log.info(
                "CoinStats %s answered 404 on a retry after an attempt whose answer was lost: "
                "that attempt did it, so this counts as done",
                self.request.describe(),
            )
            return True
        if not surely_not_processed(exc):
            self.outcome_unknown = True
        return False

    def wait_before_retry(self, exc: CoinStatsError) -> float | None:
        """Seconds to wait before the next attempt, or None when the call must fail with ``exc``."""
        self.attempts += 1
        if not may_repeat(self.request, exc):
            if is_retryable(exc):
                # Retryable in general, not for this endpoint: say so, or the stop looks arbitrary.
                self.log.warning(
                    "CoinStats %s failed (%s) and is not repeated: it may have reached CoinStats, "
                    "and a repeat would be charged and acted on twice",
                    self.request.describe(),
                    exc,
                )
            return None
        settings = self.settings
        if self.attempts >= settings.max_attempts:
            return None
        wait = next_wait(settings, self.attempts, getattr(exc, "retry_after", None), _RNG)
        if time.monotonic() - self.started + wait > settings.max_retry_time:
            return None
        # The exception text is already scrubbed of secrets by the classifier.
        self.log.warning(
            "CoinStats %s failed (%s); retry %d of %d in %.2fs",
            self.request.describe(),
            exc,
            self.attempts,
            settings.max_attempts - 1,
            wait,
        )
        return wait


def call_with_retries(
    request: ApiRequest,
    settings: RetrySettings,
    log: logging.Logger | Any,
    send_once: Callable[[ApiRequest], Any],
) -> Any:
    """``send_once(request)`` under the policy, waiting with ``time.sleep``; the last error is raised."""
    call = RetryCall(request, settings, log)
    while True:
        try:
            return send_once(request)
        except CoinStatsError as err:
            if call.already_done(err):
                return None
            wait = call.wait_before_retry(err)
            if wait is None:
                raise
        time.sleep(wait)


async def acall_with_retries(
    request: ApiRequest,
    settings: RetrySettings,
    log: logging.Logger | Any,
    send_once: Callable[[ApiRequest], Awaitable[Any]],
) -> Any:
    """The same under ``asyncio``: waits with ``asyncio.sleep``, never blocking the event loop."""
    call = RetryCall(request, settings, log)
    while True:
        try:
            return await send_once(request)
        except CoinStatsError as err:
            if call.already_done(err):
                return None
            wait = call.wait_before_retry(err)
            if wait is None:
                raise
        await asyncio.sleep(wait)
