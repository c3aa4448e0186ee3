"""The backoff schedule itself (the end-to-end retry behaviour is tested against the sandbox)."""

from __future__ import annotations

import random

from airflow_provider_coinstats.api.retry import is_retryable, next_wait
from airflow_provider_coinstats.api.settings import RetrySettings
from airflow_provider_coinstats.exceptions import (
    CoinStatsNotSyncedError,
    CoinStatsRateLimitedError,
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
