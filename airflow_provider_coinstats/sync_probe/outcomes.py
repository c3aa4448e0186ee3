"""The one outcome vocabulary of a wait, trigger events, and the task outcome of each.

A probe says ``synced``, ``syncing``, ``error`` (transient failures beyond the budget) or
``failed`` (an error no retry can fix); a trigger adds ``timeout`` and never sends ``syncing``.
Probe results and trigger events use the same words, so nothing maps one onto the other, and
:func:`raise_for_outcome` turns each non-success into the Airflow exception with the right
retry semantics, for a poke and a trigger event alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, NoReturn

from airflow_provider_coinstats._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
)

Outcome = Literal["synced", "syncing", "error", "failed", "timeout"]

#: The closed set of trigger event outcomes; anything else fails the task (fail closed).
EVENT_OUTCOMES: Final = frozenset({"synced", "timeout", "error", "failed"})


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: ``synced``, ``syncing``, ``error`` or ``failed``.

    ``max_credits`` is the documented cost of the request; CoinStats does not say whether a 409
    is billed, so it is an upper bound for those.

    Example::

        ProbeResult("syncing", "409 Transactions not synced", status_code=409, request_id="9f...", max_credits=4)
    """

    outcome: Outcome
    message: str
    status_code: int | None = None
    request_id: str | None = None
    max_credits: int = 0
    #: CoinStats rejected the API key (it may have been rotated: worth re-reading the connection).
    key_rejected: bool = False

    def describe(self) -> str:
        rid = f", requestId={self.request_id}" if self.request_id else ""
        return f"{self.outcome}: {self.message}{rid}; cost at most {self.max_credits} credits"


def make_event(outcome: Outcome, portfolio_id: str, result: ProbeResult | None = None, **extra: Any) -> dict[str, Any]:
    """A JSON-only trigger event payload; ``status`` is the outcome."""
    event: dict[str, Any] = {"status": outcome, "portfolio_id": portfolio_id, **extra}
    if result is not None:
        event["result"] = asdict(result)
    return event


def check_event(event: object) -> dict[str, Any]:
    """Validate a trigger event from the database before acting on it (version skew fails closed)."""
    if not isinstance(event, dict) or event.get("status") not in EVENT_OUTCOMES:
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


def raise_for_outcome(outcome: str, message: str) -> NoReturn:
    """Turn a non-success outcome into the Airflow exception with the right retry semantics.

    - ``failed`` (bad key, plan limit, credits, unknown portfolio, bad input): no task retries.
    - ``timeout``: sensor timeout, which Airflow never retries (``soft_fail`` makes it a skip).
    - ``error`` (transient budget used up): a normal failure, so task retries apply.
    - anything else is not an outcome to raise for: it fails without retries (fail closed).
    """
    if outcome == "failed":
        raise AirflowFailException(message)
    if outcome == "timeout":
        raise AirflowSensorTimeout(message)
    if outcome == "error":
        raise AirflowException(message)
    raise AirflowFailException(f"unexpected sync outcome {outcome!r}: {message}")
