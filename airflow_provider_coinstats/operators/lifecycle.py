"""Lifecycle operators: re-sync a tracked portfolio, and delete one in a teardown task.

Both take a credit budget (``max_credits``, which can only lower the connection's
``max_credits_per_task``) and ``min_remaining_credits`` (a free GET /usage/credits first, and the
task stops before spending when the plan has less left). Both log the credits they spent and push
them to XCom ``credits_spent``. Permanent errors (bad input, key, plan, credits, budget) fail the
task without its Airflow retries.

Importing this module is cheap: the hook (and ``requests``) are loaded inside ``execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk import BaseOperator

from airflow_provider_coinstats.api.catalog import ENDPOINTS, SYNC_ALL_MULTIPLIER
from airflow_provider_coinstats.credits import CREDITS_SPENT_XCOM_KEY, CreditBudgetMixin
from airflow_provider_coinstats.exceptions import CoinStatsNotFoundError, CoinStatsValidationError
from airflow_provider_coinstats.sync_probe.deferral import SyncWaitMixin
from airflow_provider_coinstats.task_failure import fail_fast_on_permanent_errors

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

__all__ = ["CREDITS_SPENT_XCOM_KEY", "CoinStatsDeletePortfolioOperator", "CoinStatsSyncPortfolioOperator"]

_SYNC_ALL_CREDITS: Final = ENDPOINTS["portfolio_sync"].credits * SYNC_ALL_MULTIPLIER


class _BudgetedOperator(CreditBudgetMixin, BaseOperator):
    """Shared by the lifecycle operators: the connection and the credit budget."""

    def __init__(
        self,
        *,
        coinstats_conn_id: str = "coinstats_default",
        max_credits: int | None = None,
        min_remaining_credits: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.coinstats_conn_id = coinstats_conn_id
        # Checked when the DAG is parsed, so a typo never reaches a worker.
        self.init_credit_budget(max_credits=max_credits, min_remaining_credits=min_remaining_credits)

    def call_within_budget(self, call: Callable[[CoinStatsHook], None]) -> None:
        """Run ``call`` with a budgeted hook, after the plan check; permanent errors skip retries."""
        with fail_fast_on_permanent_errors(), self.budgeted_hook() as hook:
            call(hook)


class CoinStatsSyncPortfolioOperator(SyncWaitMixin, _BudgetedOperator):
    """Re-sync a tracked portfolio (PATCH /portfolio/sync, 30 credits); optionally wait until synced.

    Without ``portfolio_id`` CoinStats syncs every API portfolio of the account at 10x the cost
    (300 credits), so that is refused when the DAG is parsed unless ``all_portfolios=True`` says
    it is meant (no request is sent). With ``wait_for_sync=True`` the task probes once and defers
    to the trigger while the portfolio syncs, as the connect operators do. Returns the portfolio
    id (``None`` for all portfolios).

    A sync is charged and started on every call, so a sync whose answer was lost is not sent
    again by the hook; a task retry does send it again.

    Example::

        resync = CoinStatsSyncPortfolioOperator(
            task_id="resync",
            portfolio_id="{{ ti.xcom_pull(task_ids='connect_wallet') }}",
            wait_for_sync=True,
            max_credits=100,
        )
        resync_everything = CoinStatsSyncPortfolioOperator(task_id="resync_all", all_portfolios=True)
    """

    template_fields: Sequence[str] = ("portfolio_id",)
    ui_color = "#f3c623"

    def __init__(
        self,
        *,
        portfolio_id: str | None = None,
        all_portfolios: bool = False,
        wait_for_sync: bool = False,
        poll_interval: float = 30.0,
        sync_timeout: float = 3600.0,
        probe: str = "transactions",
        max_consecutive_failures: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(all_portfolios, bool):
            raise CoinStatsValidationError("all_portfolios", f"must be True or False, got {all_portfolios!r}")
        if portfolio_id is None and not all_portfolios:
            raise CoinStatsValidationError(
                "portfolio_id",
                f"missing: without it CoinStats syncs every portfolio at {SYNC_ALL_MULTIPLIER}x the cost "
                f"({_SYNC_ALL_CREDITS} credits); pass all_portfolios=True if that is what you want",
            )
        if portfolio_id is not None and all_portfolios:
            raise CoinStatsValidationError("all_portfolios", "set either portfolio_id or all_portfolios=True, not both")
        if all_portfolios and wait_for_sync:
            raise CoinStatsValidationError("wait_for_sync", "needs one portfolio_id; it cannot wait for all portfolios")
        self.portfolio_id = portfolio_id
        self.all_portfolios = all_portfolios
        self.wait_for_sync = wait_for_sync
        self.init_operator_wait(
            poll_interval=poll_interval,
            sync_timeout=sync_timeout,
            probe=probe,
            max_consecutive_failures=max_consecutive_failures,
        )

    def execute(self, context: Context) -> str | None:
        portfolio_id = None if self.all_portfolios else self.portfolio_id

        def sync(hook: CoinStatsHook) -> None:
            hook.sync_portfolio(portfolio_id)
            self.log.info("CoinStats sync started for %s", portfolio_id or "every portfolio")

        with self.reporting_credits(context):
            self.call_within_budget(sync)
            if portfolio_id is None or not self.wait_for_sync:
                return portfolio_id
            return self.wait_for_portfolio(portfolio_id)


class CoinStatsDeletePortfolioOperator(_BudgetedOperator):
    """Delete a tracked portfolio (DELETE /portfolio/{id}, 10 credits), typically as a teardown task.

    A portfolio that is already gone (404) counts as deleted: the task logs it and succeeds, so a
    teardown can run after a failed setup or twice. A delete whose answer was lost is retried by
    the hook, and the 404 that retry gets means the first attempt deleted it. Returns the id.

    Example::

        connect = ConnectWalletOperator(task_id="connect_wallet", address=ADDRESS, blockchain="ethereum")
        delete = CoinStatsDeletePortfolioOperator(
            task_id="delete_portfolio", portfolio_id="{{ ti.xcom_pull(task_ids='connect_wallet') }}"
        )
        connect >> export >> delete.as_teardown(setups=connect)
    """

    template_fields: Sequence[str] = ("portfolio_id",)
    ui_color = "#f3c623"

    def __init__(self, *, portfolio_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.portfolio_id = portfolio_id

    def execute(self, context: Context) -> str:
        portfolio_id = self.portfolio_id

        def delete(hook: CoinStatsHook) -> None:
            try:
                hook.delete_portfolio(portfolio_id)
            except CoinStatsNotFoundError:
                self.log.info("CoinStats portfolio %s was already gone (404): nothing to delete", portfolio_id)
                return
            self.log.info("CoinStats portfolio %s deleted", portfolio_id)

        with self.reporting_credits(context):
            self.call_within_budget(delete)
        return portfolio_id
