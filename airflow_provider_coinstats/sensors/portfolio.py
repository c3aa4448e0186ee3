"""Wait until CoinStats has synced a portfolio: poke, reschedule or deferrable.

Importing this module is cheap (no ``requests``, no I/O): the hook is built inside ``poke``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_coinstats._compat import default_deferrable
from airflow_provider_coinstats.api.shared import exactly_one_portfolio, public_id_of
from airflow_provider_coinstats.sync_probe.deferral import SyncWaitMixin
from airflow_provider_coinstats.sync_probe.floors import validate_poll_interval, validate_seconds
from airflow_provider_coinstats.sync_probe.probe import validate_shared_probe

if TYPE_CHECKING:
    from airflow.sdk import Context


class CoinStatsPortfolioSyncSensor(SyncWaitMixin, BaseSensorOperator):
    """Wait until a CoinStats portfolio has synced its transactions.

    Each poke sends one cheap read (``probe``: by default a one-row page of
    ``/portfolio/transactions``, 4 credits). HTTP 409 "Transactions not synced" means not yet;
    data means done. Transient errors (429, 5xx, timeouts, cut bodies) are retried within the
    poke, up to ``max_consecutive_failures`` in a row, before the poke fails. 400/401/403/404/406
    fail the task at once, without retries. The sensor keeps no state between pokes, so
    ``mode="reschedule"`` is safe, and ``deferrable=True`` frees the worker slot while waiting
    (after one poke in the worker; the trigger's first poll then comes no sooner than
    ``[coinstats] min_first_poll_delay``, default 10 s). A ``poke_interval`` below
    ``[coinstats] min_poll_interval`` (default 1 s) is refused when the DAG is parsed. The
    portfolio id is pushed to XCom when synced.

    Instead of ``portfolio_id``, ``share_conn_id`` waits for a portfolio the user tracks in the
    CoinStats app: the id of a connection holding its share token (login) and passcode (password);
    see :mod:`airflow_provider_coinstats.hooks.shared`. Exactly one of the two is required (checked
    when the DAG is parsed), and ``probe="status"`` cannot read a shared portfolio. Each poke reads
    the connection; deferred, the trigger gets only the connection id and reads it in the
    triggerer. XCom gets the portfolio's public id, never the token.

    ``max_credits`` caps the credits the task may spend (pokes and, deferred, the trigger's polls;
    the connection's ``max_credits_per_task`` too, the smaller wins) and ``min_remaining_credits``
    stops it before the first poke when the plan has less left; the task logs its credits spent
    and pushes them to XCom ``credits_spent`` (see :mod:`airflow_provider_coinstats.credits`). In
    ``mode="reschedule"`` each reschedule is a new execution, with its own budget and count.

    Example::

        wait = CoinStatsPortfolioSyncSensor(
            task_id="wait_for_sync",
            portfolio_id="{{ ti.xcom_pull(task_ids='connect_wallet') }}",
            poke_interval=30,
            timeout=3600,
            deferrable=True,
        )
        wait_shared = CoinStatsPortfolioSyncSensor(task_id="wait_for_app_portfolio", share_conn_id="coinstats_share")
    """

    template_fields: Sequence[str] = ("portfolio_id", "share_conn_id", "coinstats_conn_id")
    ui_color = "#f3c623"

    def __init__(
        self,
        *,
        portfolio_id: str | None = None,
        share_conn_id: str | None = None,
        coinstats_conn_id: str = "coinstats_default",
        probe: str = "transactions",
        max_consecutive_failures: int = 3,
        deferrable: bool | None = None,
        max_credits: int | None = None,
        min_remaining_credits: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.portfolio_id, self.share_conn_id = exactly_one_portfolio(portfolio_id, share_conn_id)
        self.coinstats_conn_id = coinstats_conn_id
        self.init_sync_wait(probe=probe, max_consecutive_failures=max_consecutive_failures)
        validate_shared_probe(self.probe, self.share_conn_id)
        self.init_credit_budget(max_credits=max_credits, min_remaining_credits=min_remaining_credits)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        # BaseSensorOperator has turned timedeltas into seconds by now.
        self.poke_interval = validate_poll_interval("poke_interval", self.poke_interval)
        self.timeout = validate_seconds("timeout", self.timeout)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        portfolio = self.portfolio_to_wait_for(self.portfolio_id)
        if self.is_synced(portfolio):
            return PokeReturnValue(is_done=True, xcom_value=public_id_of(portfolio))
        return False

    def execute(self, context: Context) -> Any:
        with self.reporting_credits(context):
            if not self.deferrable:
                return super().execute(context)
            return self.wait_until_synced(
                self.portfolio_to_wait_for(self.portfolio_id),
                poll_interval=self.poke_interval,
                timeout=self.timeout,
                exponential_backoff=bool(self.exponential_backoff),
                max_wait=self.max_wait.total_seconds() if isinstance(self.max_wait, timedelta) else self.max_wait,
            )
