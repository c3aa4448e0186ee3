"""The timing floors every waiting path shares, and the defer timeout.

:func:`min_poll_interval` and :func:`min_first_poll_delay` read ``[coinstats]`` options declared
in :mod:`airflow_provider_coinstats.config` (Airflow config or ``AIRFLOW__COINSTATS__*``, at call
time). :data:`DEFER_TIMEOUT_GRACE` is what the framework's defer timeout allows beyond a trigger's
own deadline.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Final

from airflow_provider_coinstats._compat import airflow_conf
from airflow_provider_coinstats.config import MIN_FIRST_POLL_DELAY, MIN_POLL_INTERVAL, SECTION
from airflow_provider_coinstats.exceptions import CoinStatsConfigError, CoinStatsValidationError

#: Extra time the framework's defer timeout allows beyond the trigger's own deadline (plus the
#: first-poll minimum), so the trigger's "timeout" event (which honours soft_fail and names the
#: cause) arrives first.
DEFER_TIMEOUT_GRACE: Final = 60.0


def config_seconds(key: str, default: float) -> float:
    """A number of seconds >= 0 from Airflow config ``[coinstats] <key>`` (or ``default``)."""
    raw = airflow_conf().get(SECTION, key, fallback=None)
    if raw is None or not str(raw).strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise CoinStatsConfigError(
            f"Airflow config [coinstats] {key} (env AIRFLOW__COINSTATS__{key.upper()}) must be a number "
            f"of seconds >= 0, got {raw!r}"
        )
    return value


def min_poll_interval() -> float:
    """The poll/poke interval floor in force: ``[coinstats] min_poll_interval``, default 1 s."""
    return config_seconds("min_poll_interval", MIN_POLL_INTERVAL)


def min_first_poll_delay() -> float:
    """Seconds a trigger waits after deferral before its first poll: ``[coinstats] min_first_poll_delay``."""
    return config_seconds("min_first_poll_delay", MIN_FIRST_POLL_DELAY)


def validate_seconds(field: str, value: object) -> float:
    """``value`` as a finite number of seconds >= 0 (a ``timedelta`` too)."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise CoinStatsValidationError(field, f"must be a number of seconds >= 0; got {value!r}")
    return float(value)


def validate_poll_interval(field: str, value: object) -> float:
    """``value`` as seconds, refused below :func:`min_poll_interval` (called when the DAG is parsed)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CoinStatsValidationError(field, f"must be a number of seconds; got {value!r}")
    floor = min_poll_interval()
    if value < floor:
        raise CoinStatsValidationError(
            field,
            f"must be at least {floor:g} s (the floor set by Airflow config [coinstats] min_poll_interval; "
            f"CoinStats' free tier allows 2 requests per second and every poll costs credits); got {value:g}",
        )
    return float(value)


def defer_timeout(wait_seconds: float) -> timedelta:
    """The framework's defer timeout for a trigger whose own deadline is ``wait_seconds`` away."""
    return timedelta(seconds=float(wait_seconds) + min_first_poll_delay() + DEFER_TIMEOUT_GRACE)
