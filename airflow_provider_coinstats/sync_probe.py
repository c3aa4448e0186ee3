"""One look at whether a portfolio has synced: shared by the sensor (poke) and the trigger.

CoinStats has no "sync finished" event; while a portfolio syncs, its data endpoints answer HTTP
409 "Transactions not synced". A probe sends one cheap data request and turns the answer into one
of four states. The sensor's ``poke`` and the trigger's loop both call :func:`run_probe` /
:func:`arun_probe`, and both turn results and trigger events into task outcomes with
:func:`raise_for_outcome`, so the three modes (poke, reschedule, deferrable) cannot drift apart.

Transient failures (429, 5xx, timeouts, cut bodies) are retried inside a probe by the shared
retry policy, with ``max_consecutive_failures + 1`` attempts: that is the consecutive-failure
budget, and it needs no state carried between pokes.

Every path that waits (the sensor in each mode, the connect operators with ``wait_for_sync``)
probes once in the worker before it defers, and the timing floors every one of them shares
are applied here: :func:`min_poll_interval` and :func:`min_first_poll_delay` (declared in
:mod:`airflow_provider_coinstats.config`) and :data:`DEFER_TIMEOUT_GRACE`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Final, Literal, Protocol

from airflow_provider_coinstats._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    airflow_conf,
)
from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.builders import ApiRequest
from airflow_provider_coinstats.api.settings import RetrySettings
from airflow_provider_coinstats.config import MIN_FIRST_POLL_DELAY, MIN_POLL_INTERVAL, SECTION
from airflow_provider_coinstats.exceptions import (
    CoinStatsConfigError,
    CoinStatsError,
    CoinStatsNotSyncedError,
    CoinStatsUnauthorizedError,
    CoinStatsValidationError,
)

#: Extra time the framework's defer timeout allows beyond the trigger's own deadline (plus the
#: first-poll minimum), so the trigger's "timeout" event (which honours soft_fail and names the
#: cause) arrives first.
DEFER_TIMEOUT_GRACE: Final = 60.0

#: Which request a probe sends. Each is the cheapest read of its kind (one-row pages).
PROBES: Final[Mapping[str, Callable[[str], ApiRequest]]] = {
    "transactions": lambda pid: builders.portfolio_transactions(pid, page=1, limit=1),
    "coins": lambda pid: builders.portfolio_coins(pid, page=1, limit=1),
    "value": lambda pid: builders.portfolio_value(pid),
    "chart": lambda pid: builders.portfolio_chart(pid, "24h"),
    "status": lambda pid: builders.portfolio_status(pid),
}

ProbeState = Literal["synced", "syncing", "transient", "failed"]

#: The closed set of trigger event statuses; anything else fails the task (fail closed).
EVENT_STATUSES: Final = frozenset({"synced", "timeout", "error", "failed"})


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe.

    ``max_credits`` is the documented cost of the request; CoinStats does not say whether a 409
    is billed, so it is an upper bound for those.

    Example::

        ProbeResult("syncing", "409 Transactions not synced", status_code=409, request_id="9f...", max_credits=4)
    """

    state: ProbeState
    message: str
    status_code: int | None = None
    request_id: str | None = None
    max_credits: int = 0
    #: CoinStats rejected the API key (it may have been rotated: worth re-reading the connection).
    key_rejected: bool = False

    def describe(self) -> str:
        rid = f", requestId={self.request_id}" if self.request_id else ""
        return f"{self.state}: {self.message}{rid}; cost at most {self.max_credits} credits"


def validate_probe(probe: object) -> str:
    if probe not in PROBES:
        raise CoinStatsValidationError("probe", f"must be one of {', '.join(PROBES)}; got {probe!r}")
    return str(probe)


def probe_request(probe: str, portfolio_id: object) -> ApiRequest:
    """The request for ``probe``; validates the portfolio id (no request is sent here)."""
    return PROBES[validate_probe(probe)](builders.require_portfolio_id(portfolio_id))


def result_from_payload(request: ApiRequest, payload: Any) -> ProbeResult:
    # /portfolio/status says "syncing" with a 200; every data endpoint says it with a 409.
    if request.endpoint.name == "portfolio_status" and isinstance(payload, dict) and payload.get("status") != "synced":
        return ProbeResult("syncing", f"status is {payload.get('status')!r}", 200, None, request.credits)
    return ProbeResult("synced", f"{request.describe()} answered with data", 200, None, request.credits)


def result_from_error(request: ApiRequest, error: CoinStatsError) -> ProbeResult:
    code = getattr(error, "status_code", None)
    rid = getattr(error, "request_id", None)
    if isinstance(error, CoinStatsNotSyncedError):
        return ProbeResult("syncing", f"{code} {error.message}", code, rid, request.credits)
    state: ProbeState = "transient" if error.retryable else "failed"
    rejected = isinstance(error, CoinStatsUnauthorizedError)
    return ProbeResult(state, str(error), code, rid, request.credits, key_rejected=rejected)


class _SyncSender(Protocol):
    def run(self, request: ApiRequest) -> Any: ...


class _AsyncSender(Protocol):
    async def send(self, request: ApiRequest, retry: RetrySettings | None = None) -> Any: ...


def run_probe(sender: _SyncSender, request: ApiRequest) -> ProbeResult:
    """One probe through the sync hook (retries included)."""
    try:
        payload = sender.run(request)
    except CoinStatsError as error:
        return result_from_error(request, error)
    return result_from_payload(request, payload)


async def arun_probe(sender: _AsyncSender, request: ApiRequest, retry: RetrySettings | None = None) -> ProbeResult:
    """The same probe through the async transport; ``retry`` narrows the policy's bounds."""
    try:
        payload = await sender.send(request, retry)
    except CoinStatsError as error:
        result = result_from_error(request, error)
        # The traceback holds the retry loop's frames, which hold the retry state, which holds
        # this exception: a reference cycle per 409, that only a (full, on a triggerer's heap:
        # 100+ ms) garbage collection would free. Dropping the traceback frees it at once.
        error.__traceback__ = None
        return result
    return result_from_payload(request, payload)


def check_synced(conn_id: str, probe: str, portfolio_id: object, max_consecutive_failures: int, log: Any) -> bool:
    """One probe in the worker through the sync hook: True when synced, False while syncing.

    Anything else raises with the same semantics as a trigger event (:func:`raise_for_outcome`):
    bad input, key, plan or credits fail without task retries, a used-up transient budget is an
    ordinary failure.
    """
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook  # loads requests: run time only

    try:
        request = probe_request(probe, portfolio_id)
    except CoinStatsValidationError as error:
        raise AirflowFailException(str(error)) from None
    hook = CoinStatsHook(conn_id, max_attempts=max_consecutive_failures + 1)
    try:
        result = run_probe(hook, request)
    finally:
        hook.close()
    log.info("CoinStats portfolio %s poke: %s", portfolio_id, result.describe())
    if result.state == "synced":
        return True
    if result.state == "syncing":
        return False
    raise_for_outcome("error" if result.state == "transient" else "failed", result.message)
    raise AssertionError("unreachable")  # pragma: no cover


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


def make_event(status: str, portfolio_id: str, result: ProbeResult | None = None, **extra: Any) -> dict[str, Any]:
    """A JSON-only trigger event payload."""
    event: dict[str, Any] = {"status": status, "portfolio_id": portfolio_id, **extra}
    if result is not None:
        event["result"] = asdict(result)
    return event


def raise_for_outcome(status: str, message: str) -> None:
    """Turn a non-success outcome into the Airflow exception with the right retry semantics.

    - ``failed`` (bad key, plan limit, credits, unknown portfolio, bad input): no task retries.
    - ``timeout``: sensor timeout, which Airflow never retries (``soft_fail`` makes it a skip).
    - ``error`` (transient budget used up): a normal failure, so task retries apply.
    """
    if status == "failed":
        raise AirflowFailException(message)
    if status == "timeout":
        raise AirflowSensorTimeout(message)
    if status == "error":
        raise AirflowException(message)
    raise AirflowFailException(f"unexpected sync outcome {status!r}: {message}")


def check_event(event: object) -> dict[str, Any]:
    """Validate a trigger event from the database before acting on it (version skew fails closed)."""
    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
        raise AirflowFailException(f"CoinStats sync trigger sent an unknown event: {event!r}")
    if not isinstance(event.get("portfolio_id"), str):
        raise AirflowFailException(f"CoinStats sync trigger event has no portfolio_id: {event!r}")
    return event


def outcome_message(event: Mapping[str, Any]) -> str:
    """A human message for a non-success event."""
    result = event.get("result") or {}
    detail = result.get("message") if isinstance(result, Mapping) else None
    rid = result.get("request_id") if isinstance(result, Mapping) else None
    base = f"portfolio {event.get('portfolio_id')}: {event.get('status')}"
    if event.get("status") == "timeout":
        base += f" after {event.get('waited', '?')} s without sync ({event.get('polls', '?')} polls)"
    if detail:
        base += f" - {detail}"
    if rid and rid not in (detail or ""):
        base += f" (requestId={rid})"
    return base
