"""The retry policy, shared by the sync hook and the async trigger path.

What is retried is decided by the exception class alone (``CoinStatsError.retryable``): transport
failures, 429, 500/502/503/504 and 2xx bodies that are not complete JSON. 400/401/403/404/406/409
are never retried. Waits grow exponentially with jitter; a ``Retry-After`` from the server wins,
capped so a hostile or buggy header cannot park a worker for an hour. Attempts and total time are
both bounded.

The policy is expressed once as tenacity keyword arguments; :func:`retrying` and
:func:`async_retrying` only choose tenacity's sync or async driver.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception

from airflow_provider_coinstats.api.operations import ApiRequest
from airflow_provider_coinstats.api.settings import RetrySettings
from airflow_provider_coinstats.exceptions import CoinStatsError


def is_retryable(exc: BaseException) -> bool:
    """True when sending the same request again may succeed."""
    return isinstance(exc, CoinStatsError) and exc.retryable


def next_wait(settings: RetrySettings, attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Equal jitter: half the exponential step is fixed, half random, so waits still grow while
    concurrent clients spread out.
    """
    if retry_after is not None:
        return min(retry_after, settings.retry_after_max)
    step = min(settings.backoff_max, settings.backoff_base * 2.0 ** (attempt - 1))
    return step / 2 + rng.uniform(0, step / 2)


class _Wait:
    def __init__(self, settings: RetrySettings, rng: random.Random) -> None:
        self.settings = settings
        self.rng = rng

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after: float | None = getattr(exc, "retry_after", None)
        return next_wait(self.settings, state.attempt_number, retry_after, self.rng)


class _Stop:
    """Stop after ``max_attempts``, or when the next wait would overrun ``max_retry_time``."""

    def __init__(self, settings: RetrySettings) -> None:
        self.settings = settings

    def __call__(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.settings.max_attempts:
            return True
        elapsed = state.seconds_since_start or 0.0
        return elapsed + state.upcoming_sleep > self.settings.max_retry_time


def _log_retry(request: ApiRequest, settings: RetrySettings, log: logging.Logger | Any) -> Any:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        # The exception text is already scrubbed of secrets by the classifier.
        log.warning(
            "CoinStats %s failed (%s); retry %d of %d in %.2fs",
            request.describe(),
            exc,
            state.attempt_number,
            settings.max_attempts - 1,
            state.upcoming_sleep,
        )

    return before_sleep


def retry_kwargs(
    request: ApiRequest, settings: RetrySettings, log: logging.Logger | Any, rng: random.Random | None = None
) -> dict[str, Any]:
    """Tenacity arguments implementing the policy for one request."""
    return {
        "retry": retry_if_exception(is_retryable),
        "wait": _Wait(settings, rng or random.Random()),
        "stop": _Stop(settings),
        "before_sleep": _log_retry(request, settings, log),
        "reraise": True,
    }


def retrying(request: ApiRequest, settings: RetrySettings, log: logging.Logger | Any) -> Retrying:
    """The sync driver of the policy."""
    return Retrying(**retry_kwargs(request, settings, log))


def async_retrying(request: ApiRequest, settings: RetrySettings, log: logging.Logger | Any) -> AsyncRetrying:
    """The async driver of the same policy; sleeps with ``asyncio.sleep``, never blocking the loop."""
    return AsyncRetrying(**retry_kwargs(request, settings, log))
