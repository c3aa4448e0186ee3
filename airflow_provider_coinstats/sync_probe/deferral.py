"""The one deferral path, shared by the sensor and both connect operators.

:class:`SyncWaitMixin` probes once in the worker and defers only while the portfolio is still
syncing (an already synced one never goes through the triggerer, and a trigger that fires
seconds after deferral would walk into Airflow's defer/resume race: see
:data:`airflow_provider_coinstats.config.MIN_FIRST_POLL_DELAY`). It builds the one trigger, sets the
defer timeout (the trigger's deadline plus the first-poll minimum plus
:data:`~.floors.DEFER_TIMEOUT_GRACE`) and resumes in :meth:`SyncWaitMixin.execute_complete`.
:meth:`SyncWaitMixin.init_sync_wait` checks the probe and the failure budget; with
:func:`~.floors.validate_poll_interval` and :func:`~.floors.validate_seconds` for intervals and
timeouts, every waiting class checks its arguments the same way.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_coinstats.api.builders import require_portfolio
from airflow_provider_coinstats.api.shared import PortfolioRef, SharedPortfolio, public_id_of
from airflow_provider_coinstats.credits import CreditBudgetMixin
from airflow_provider_coinstats.exceptions import CoinStatsError, CoinStatsValidationError
from airflow_provider_coinstats.sync_probe.floors import defer_timeout, validate_poll_interval, validate_seconds
from airflow_provider_coinstats.sync_probe.outcomes import check_event, outcome_message, raise_for_outcome
from airflow_provider_coinstats.sync_probe.probe import probe_request, run_probe, validate_probe

if TYPE_CHECKING:
    from airflow.sdk import Context


def validate_failure_budget(value: object) -> int:
    """``max_consecutive_failures``: an integer >= 0 (transient failures tolerated in a row)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CoinStatsValidationError("max_consecutive_failures", f"must be an integer >= 0; got {value!r}")
    return value


class SyncWaitMixin(CreditBudgetMixin):
    """Wait for a portfolio's sync: probe in the worker, then defer to the trigger while syncing.

    Mixed into an operator before its Airflow base class. The operator calls
    :meth:`init_sync_wait` in ``__init__`` and sets ``coinstats_conn_id``; a failure outcome
    raises with the semantics of :func:`~.outcomes.raise_for_outcome`. Probes and the trigger's
    polls count against the task's credit budget (:class:`~airflow_provider_coinstats.credits.
    CreditBudgetMixin`); ``execute_complete`` pushes the task's ``credits_spent`` from the event.

    Example::

        class MyWait(SyncWaitMixin, BaseOperator):
            def __init__(self, *, portfolio_id, coinstats_conn_id="coinstats_default", **kwargs):
                super().__init__(**kwargs)
                self.portfolio_id, self.coinstats_conn_id = portfolio_id, coinstats_conn_id
                self.init_sync_wait(probe="transactions", max_consecutive_failures=3)

            def execute(self, context):
                return self.wait_until_synced(self.portfolio_id, poll_interval=30.0, timeout=3600.0)
    """

    coinstats_conn_id: str
    probe: str
    max_consecutive_failures: int
    poll_interval: float
    sync_timeout: float
    #: The connection of a shared portfolio being waited for: what the trigger gets instead of its token.
    share_conn_id: str | None = None

    def init_sync_wait(self, *, probe: object, max_consecutive_failures: object) -> None:
        """Check and keep the probe and the failure budget (called when the DAG is parsed)."""
        self.probe = validate_probe(probe)
        self.max_consecutive_failures = validate_failure_budget(max_consecutive_failures)

    def init_operator_wait(
        self, *, poll_interval: object, sync_timeout: object, probe: object, max_consecutive_failures: object
    ) -> None:
        """An operator's own wait arguments (``poll_interval``, ``sync_timeout``), checked when the DAG is parsed."""
        self.poll_interval = validate_poll_interval("poll_interval", poll_interval)
        self.sync_timeout = validate_seconds("sync_timeout", sync_timeout)
        self.init_sync_wait(probe=probe, max_consecutive_failures=max_consecutive_failures)

    def wait_for_portfolio(self, portfolio_id: str) -> str:
        """:meth:`wait_until_synced` with the operator's own ``poll_interval`` and ``sync_timeout``."""
        return self.wait_until_synced(portfolio_id, poll_interval=self.poll_interval, timeout=self.sync_timeout)

    def portfolio_to_wait_for(self, portfolio_id: object) -> PortfolioRef:
        """``portfolio_id`` (checked), or the shared portfolio read from ``share_conn_id`` now (in the worker).

        A bad portfolio id or a share connection that is missing or unusable fails the task
        without retries.
        """
        from airflow_provider_coinstats.hooks.shared import shared_portfolio_from_connection

        try:
            if self.share_conn_id:
                return shared_portfolio_from_connection(self.share_conn_id)
            return require_portfolio(portfolio_id)
        except CoinStatsError as error:
            raise_for_outcome("failed", str(error))

    def is_synced(self, portfolio_id: object) -> bool:
        """One probe in the worker through the sync hook: True when synced, False while syncing.

        Anything else raises as a trigger event would: bad input, key, plan or credits fail
        without task retries, a used-up transient budget is an ordinary failure.
        """
        try:
            request = probe_request(self.probe, portfolio_id)
        except CoinStatsValidationError as error:
            raise_for_outcome("failed", str(error))
        with self.budgeted_hook(max_attempts=self.max_consecutive_failures + 1) as hook:
            result = run_probe(hook, request)
        self.log.info("CoinStats portfolio %s poke: %s", portfolio_id, result.describe())
        if result.outcome in ("synced", "syncing"):
            return result.outcome == "synced"
        raise_for_outcome(result.outcome, result.message)

    def wait_until_synced(
        self,
        portfolio_id: PortfolioRef,
        *,
        poll_interval: float,
        timeout: float,
        exponential_backoff: bool = False,
        max_wait: float | None = None,
    ) -> str:
        """Return ``portfolio_id`` if it is synced now; otherwise defer until the trigger's event.

        The trigger is built only now, after the probe: its first-poll minimum counts from here.
        A shared portfolio returns its public id, and its trigger gets only ``share_conn_id`` (it
        reads the token and passcode in the triggerer), so no trigger row holds them.
        """
        if self.is_synced(portfolio_id):
            return public_id_of(portfolio_id)
        from airflow_provider_coinstats.triggers.portfolio import CoinStatsPortfolioSyncTrigger

        shared = isinstance(portfolio_id, SharedPortfolio)
        if shared and not self.share_conn_id:
            raise CoinStatsValidationError("share_conn_id", "a shared portfolio defers by its connection id only")
        trigger = CoinStatsPortfolioSyncTrigger(
            portfolio_id=portfolio_id if isinstance(portfolio_id, str) else None,
            share_conn_id=self.share_conn_id if shared else None,
            coinstats_conn_id=self.coinstats_conn_id,
            probe=self.probe,
            poll_interval=float(poll_interval),
            end_time=time.time() + float(timeout),
            exponential_backoff=exponential_backoff,
            max_wait=max_wait,
            max_consecutive_failures=self.max_consecutive_failures,
            max_credits=self.max_credits,
            credits_spent=self.task_credits_spent,
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=defer_timeout(timeout))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger fired: the portfolio id when synced, else the outcome's exception."""
        checked = check_event(event)
        self.push_event_credits(context, checked)
        if checked["status"] != "synced":
            raise_for_outcome(checked["status"], outcome_message(checked))
        self.log.info("CoinStats portfolio %s synced after %s polls", checked["portfolio_id"], checked.get("polls"))
        return str(checked["portfolio_id"])
