"""One look at whether a portfolio has synced: shared by the sensor (poke) and the trigger.

CoinStats has no "sync finished" event; while a portfolio syncs, its data endpoints answer HTTP
409 "Transactions not synced". A probe sends one cheap data request and turns the answer into one
of four states. The sensor's ``poke`` and the trigger's loop both call :func:`run_probe` /
:func:`arun_probe`, and both turn results and trigger events into task outcomes with
:func:`raise_for_outcome`, so the three modes (poke, reschedule, deferrable) cannot drift apart.

Transient failures (429, 5xx, timeouts, cut bodies) are retried inside a probe by the shared
retry policy, with ``max_consecutive_failures + 1`` attempts: that is the consecutive-failure
budget, and it needs no state carried between pokes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, Protocol

from airflow_provider_coinstats._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
)
from airflow_provider_coinstats.api import operations as ops
from airflow_provider_coinstats.api.operations import ApiRequest
from airflow_provider_coinstats.api.settings import RetrySettings
from airflow_provider_coinstats.exceptions import (
    CoinStatsError,
    CoinStatsNotSyncedError,
    CoinStatsValidationError,
)

#: Which request a probe sends. Each is the cheapest read of its kind (one-row pages).
PROBES: Final[Mapping[str, Callable[[str], ApiRequest]]] = {
    "transactions": lambda pid: ops.portfolio_transactions(pid, page=1, limit=1),
    "coins": lambda pid: ops.portfolio_coins(pid, page=1, limit=1),
    "value": lambda pid: ops.portfolio_value(pid),
    "chart": lambda pid: ops.portfolio_chart(pid, "24h"),
    "status": lambda pid: ops.portfolio_status(pid),
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

    def describe(self) -> str:
        rid = f", requestId={self.request_id}" if self.request_id else ""
        return f"{self.state}: {self.message}{rid}; cost at most {self.max_credits} credits"


def validate_probe(probe: object) -> str:
    if probe not in PROBES:
        raise CoinStatsValidationError("probe", f"must be one of {', '.join(PROBES)}; got {probe!r}")
    return str(probe)


def probe_request(probe: str, portfolio_id: object) -> ApiRequest:
    """The request for ``probe``; validates the portfolio id (no request is sent here)."""
    return PROBES[validate_probe(probe)](ops.require_portfolio_id(portfolio_id))


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
    return ProbeResult(state, str(error), code, rid, request.credits)


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
