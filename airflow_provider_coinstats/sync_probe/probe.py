"""One look at whether a portfolio has synced, through a hook: :func:`run_probe` / :func:`arun_probe`.

A probe sends one cheap data request (``probe``, a one-row page by default) and reads its answer
as an outcome: data is ``synced``, 409 "Transactions not synced" (or ``/portfolio/status``
saying anything but synced) is ``syncing``, a failure the retry policy gave up on is ``error``
when retryable and ``failed`` otherwise. Both runners talk to a hook's ``run(request,
deadline=...)``, :class:`~airflow_provider_coinstats.hooks.coinstats.CoinStatsHook` in a worker
and :class:`~airflow_provider_coinstats.hooks.coinstats_async.CoinStatsAsyncHook` in a trigger,
so the sync and the async path send the same request and read it the same way.

Transient failures (429, 5xx, timeouts, cut bodies) are retried inside a probe by the shared
retry policy, with ``max_consecutive_failures + 1`` attempts (the hook's ``max_attempts``): that
is the consecutive-failure budget, and it needs no state carried between probes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.builders import ApiRequest
from airflow_provider_coinstats.api.shared import PortfolioRef
from airflow_provider_coinstats.exceptions import (
    CoinStatsError,
    CoinStatsNotSyncedError,
    CoinStatsUnauthorizedError,
    CoinStatsValidationError,
)
from airflow_provider_coinstats.sync_probe.outcomes import Outcome, ProbeResult

if TYPE_CHECKING:
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
    from airflow_provider_coinstats.hooks.coinstats_async import CoinStatsAsyncHook

#: Which request a probe sends. Each is the cheapest read of its kind (one-row pages). Every one but
#: ``status`` (documented with ``portfolioId`` only) also reads a shared portfolio.
PROBES: Final[Mapping[str, Callable[[PortfolioRef], ApiRequest]]] = {
    "transactions": lambda pid: builders.portfolio_transactions(pid, page=1, limit=1),
    "coins": lambda pid: builders.portfolio_coins(pid, page=1, limit=1),
    "value": lambda pid: builders.portfolio_value(pid),
    "chart": lambda pid: builders.portfolio_chart(pid, "24h"),
    "status": lambda pid: builders.portfolio_status(pid),
}


def validate_probe(probe: object) -> str:
    if probe not in PROBES:
        raise CoinStatsValidationError("probe", f"must be one of {', '.join(PROBES)}; got {probe!r}")
    return str(probe)


def validate_shared_probe(probe: str, share_conn_id: str | None) -> None:
    """Refuse, when the DAG is parsed, a probe that cannot read a shared portfolio (``status``)."""
    if share_conn_id is not None and probe == "status":
        raise CoinStatsValidationError(
            "probe",
            "'status' cannot wait for a shared portfolio (/portfolio/status takes only a portfolioId); "
            f"use one of {', '.join(p for p in PROBES if p != 'status')}",
        )


def probe_request(probe: str, portfolio_id: object) -> ApiRequest:
    """The request for ``probe``; validates the portfolio id or shared portfolio (no request is sent here)."""
    return PROBES[validate_probe(probe)](builders.require_portfolio(portfolio_id))


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
    rejected = isinstance(error, CoinStatsUnauthorizedError)
    outcome: Outcome = "error" if error.retryable else "failed"
    return ProbeResult(outcome, str(error), code, rid, request.credits, key_rejected=rejected)


def run_probe(hook: CoinStatsHook, request: ApiRequest) -> ProbeResult:
    """One probe through the sync hook (retries included)."""
    try:
        payload = hook.run(request)
    except CoinStatsError as error:
        return result_from_error(request, error)
    return result_from_payload(request, payload)


async def arun_probe(hook: CoinStatsAsyncHook, request: ApiRequest, deadline: float | None = None) -> ProbeResult:
    """The same probe through the async hook; retries end by ``deadline`` (UNIX time)."""
    try:
        payload = await hook.run(request, deadline=deadline)
    except CoinStatsError as error:
        result = result_from_error(request, error)
        # The traceback holds the frames of the retry loop, one of which holds this exception:
        # a reference cycle per 409 that only a (full, on a triggerer's heap: 100+ ms) garbage
        # collection would free. Dropping the traceback frees it at once.
        error.__traceback__ = None
        return result
    return result_from_payload(request, payload)
