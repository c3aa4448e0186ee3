"""The retry policy, shared by the sync hook and the async trigger path.

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
unknown, is counted as done: that attempt deleted it (:class:`AttemptHistory`).

Waits grow exponentially with jitter; a ``Retry-After`` from the server wins, capped so a hostile
or buggy header cannot park a worker for an hour. Attempts and total time are both bounded.

The policy is expressed once as tenacity keyword arguments; :func:`retrying` and
:func:`async_retrying` only choose tenacity's sync or async driver, and :class:`ReusableAsyncRetrying`
keeps one async driver per request for callers that send it again and again (a trigger's polls).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, Retrying

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


class AttemptHistory:
    """What one call's earlier attempts may have done, for endpoints where that changes a 404.

    Example::

        history = AttemptHistory(request, log)
        ...
        except CoinStatsError as err:
            if history.already_done(err):
                return None  # an earlier attempt whose answer was lost did the delete
            raise
    """

    __slots__ = ("log", "outcome_unknown", "request")

    def __init__(self, request: ApiRequest, log: logging.Logger | Any) -> None:
        self.request = request
        self.log = log
        #: An earlier attempt may have been acted on (its answer lost, a 5xx, ...).
        self.outcome_unknown = False

    def already_done(self, exc: CoinStatsError) -> bool:
        """True when ``exc`` is a delete's 404 after an attempt that may have deleted it."""
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


class _MayRepeat:
    """Tenacity's ``retry`` callback: :func:`may_repeat` for one request, saying why it stops."""

    __slots__ = ("log", "request")

    def __init__(self, request: ApiRequest, log: logging.Logger | Any) -> None:
        self.request = request
        self.log = log

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return False
        if may_repeat(self.request, exc):
            return True
        if is_retryable(exc):
            # Retryable in general, not for this endpoint: say so, or the stop looks arbitrary.
            self.log.warning(
                "CoinStats %s failed (%s) and is not repeated: it may have reached CoinStats, "
                "and a repeat would be charged and acted on twice",
                self.request.describe(),
                exc,
            )
        return False


def next_wait(settings: RetrySettings, attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Equal jitter: half the exponential step is fixed, half random, so waits still grow while
    concurrent clients spread out.
    """
    if retry_after is not None:
        return min(retry_after, settings.retry_after_max)
    step = min(settings.backoff_max, settings.backoff_base * 2.0 ** (attempt - 1))
    return step / 2 + rng.uniform(0, step / 2)


class _Bounds:
    """The settings the policy's callbacks read; swapped per call by :class:`ReusableAsyncRetrying`."""

    __slots__ = ("settings",)

    def __init__(self, settings: RetrySettings) -> None:
        self.settings = settings


class _Wait:
    def __init__(self, bounds: _Bounds, rng: random.Random) -> None:
        self.bounds = bounds
        self.rng = rng

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after: float | None = getattr(exc, "retry_after", None)
        return next_wait(self.bounds.settings, state.attempt_number, retry_after, self.rng)


class _Stop:
    """Stop after ``max_attempts``, or when the next wait would overrun ``max_retry_time``."""

    def __init__(self, bounds: _Bounds) -> None:
        self.bounds = bounds

    def __call__(self, state: RetryCallState) -> bool:
        settings = self.bounds.settings
        if state.attempt_number >= settings.max_attempts:
            return True
        elapsed = state.seconds_since_start or 0.0
        return elapsed + state.upcoming_sleep > settings.max_retry_time


class _LogRetry:
    def __init__(self, request: ApiRequest, bounds: _Bounds, log: logging.Logger | Any) -> None:
        self.request = request
        self.bounds = bounds
        self.log = log

    def __call__(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        # The exception text is already scrubbed of secrets by the classifier.
        self.log.warning(
            "CoinStats %s failed (%s); retry %d of %d in %.2fs",
            self.request.describe(),
            exc,
            state.attempt_number,
            self.bounds.settings.max_attempts - 1,
            state.upcoming_sleep,
        )


def _policy(request: ApiRequest, bounds: _Bounds, log: logging.Logger | Any, rng: random.Random) -> dict[str, Any]:
    return {
        "retry": _MayRepeat(request, log),
        "wait": _Wait(bounds, rng),
        "stop": _Stop(bounds),
        "before_sleep": _LogRetry(request, bounds, log),
        "reraise": True,
    }


def retry_kwargs(
    request: ApiRequest, settings: RetrySettings, log: logging.Logger | Any, rng: random.Random | None = None
) -> dict[str, Any]:
    """Tenacity arguments implementing the policy for one request."""
    return _policy(request, _Bounds(settings), log, rng or _RNG)


def retrying(request: ApiRequest, settings: RetrySettings, log: logging.Logger | Any) -> Retrying:
    """The sync driver of the policy."""
    return Retrying(**retry_kwargs(request, settings, log))


def async_retrying(request: ApiRequest, settings: RetrySettings, log: logging.Logger | Any) -> AsyncRetrying:
    """The async driver of the same policy; sleeps with ``asyncio.sleep``, never blocking the loop."""
    return AsyncRetrying(**retry_kwargs(request, settings, log))


class ReusableAsyncRetrying:
    """The async driver of the same policy for one request, built once and reused call after call.

    A trigger sends the same request every poll. Building tenacity's driver per poll costs a
    dozen objects that outlive the poll's HTTP wait (so they reach the oldest GC generation and
    bring the next full collection closer) and, once used, form a reference cycle (driver ->
    call state -> driver) that only a full collection frees. One driver per request avoids both.
    Only the bounds change per call (a trigger narrows them to its deadline).

    One call at a time: tenacity keeps a call's state on the driver object.

    Example::

        retry = ReusableAsyncRetrying(request, settings.retry, log)
        async for attempt in retry.attempts(narrowed_settings):
            with attempt:
                ...
    """

    def __init__(self, request: ApiRequest, settings: RetrySettings, log: logging.Logger | Any) -> None:
        self.request = request
        self._bounds = _Bounds(settings)
        self._retrying = AsyncRetrying(**_policy(request, self._bounds, log, _RNG))

    def attempts(self, settings: RetrySettings) -> AsyncRetrying:
        """The driver, applying ``settings`` to this call."""
        self._bounds.settings = settings
        return self._retrying
