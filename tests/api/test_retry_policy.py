"""The backoff schedule itself (the end-to-end retry behaviour is tested against the sandbox)."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.retry import acall_with_retries, call_with_retries, is_retryable, next_wait
from airflow_provider_coinstats.api.settings import RetrySettings
from airflow_provider_coinstats.exceptions import (
    CoinStatsError,
    CoinStatsNotSyncedError,
    CoinStatsRateLimitedError,
    CoinStatsServerError,
    CoinStatsTransportError,
)


def test_exponential_with_jitter_bounded() -> None:
    settings = RetrySettings(backoff_base=1.0, backoff_max=8.0)
    rng = random.Random(1)
    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (9, 8.0)]:
        waits = [next_wait(settings, attempt, None, rng) for _ in range(200)]
        assert min(waits) >= step / 2
        assert max(waits) <= step
        assert max(waits) - min(waits) > step / 4  # jitter really spreads the waits


def test_retry_after_wins_and_is_capped() -> None:
    settings = RetrySettings(backoff_base=1.0, retry_after_max=10.0)
    rng = random.Random(1)
    assert next_wait(settings, 1, 3.0, rng) == 3.0
    assert next_wait(settings, 1, 3600.0, rng) == 10.0


def test_retryable_classes() -> None:
    assert is_retryable(CoinStatsTransportError("GET", "/x", "ReadTimeout"))
    assert is_retryable(CoinStatsRateLimitedError(429, "slow down", method="GET", path="/x"))
    assert not is_retryable(CoinStatsNotSyncedError(409, "Transactions not synced", method="GET", path="/x"))
    assert not is_retryable(ValueError("x"))


class _FailsThenAnswers:
    """A stand-in for one transport's ``send_once``: fails with ``errors`` in turn, then answers."""

    def __init__(self, *errors: CoinStatsError) -> None:
        self.errors = list(errors)
        self.sent = 0

    def __call__(self, request: Any) -> Any:
        self.sent += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ok": True}

    async def asend(self, request: Any) -> Any:
        return self(request)


def _server_error() -> CoinStatsServerError:
    return CoinStatsServerError(503, "busy", method="GET", path="/usage/credits")


@pytest.mark.parametrize("max_attempts", [2, 3])
def test_the_sync_and_async_drivers_apply_one_policy(caplog: pytest.LogCaptureFixture, max_attempts: int) -> None:
    """Both drivers make the same attempts, log the same retries and raise the same last error."""
    request = builders.usage_credits()
    settings = RetrySettings(max_attempts=max_attempts, backoff_base=0.001, backoff_max=0.001)
    log = logging.getLogger("test.retry")
    caplog.set_level(logging.WARNING, logger="test.retry")
    outcomes = []
    for driver in ("sync", "async"):
        caplog.clear()
        send = _FailsThenAnswers(_server_error(), _server_error())
        try:
            if driver == "sync":
                result = call_with_retries(request, settings, log, send)
            else:
                result = asyncio.run(acall_with_retries(request, settings, log, send.asend))
        except CoinStatsServerError as error:
            result = f"raised {error.status_code}"
        retries = [r.getMessage().split(" in ")[0] for r in caplog.records]
        outcomes.append((result, send.sent, retries))
    assert outcomes[0] == outcomes[1]
    expected = {"ok": True} if max_attempts == 3 else "raised 503"
    assert outcomes[0][0] == expected
    assert outcomes[0][1] == min(max_attempts, 3)
    assert len(outcomes[0][2]) == max_attempts - 1
