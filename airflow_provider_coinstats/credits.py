"""Credit budgets for tasks: one mixin declares, validates, enforces and reports them.

Every task that spends CoinStats credits (the connect, sync and delete operators, the sync sensor
and both transfers) mixes in :class:`CreditBudgetMixin`, which gives it

- ``max_credits``: the task's budget, which can only lower the connection's extra
  ``max_credits_per_task`` (the smaller wins). It spans the whole task: every hook the task
  opens starts from what the task has already spent, and the deferrable path hands the budget
  to the trigger (it serializes ``max_credits`` and ``credits_spent``), so the trigger's polls
  count against the same budget. A call whose documented cost would pass it is refused before
  it is sent (:class:`~airflow_provider_coinstats.exceptions.CoinStatsBudgetExceededError`).
- ``min_remaining_credits``: before the task's first paid call, GET /usage/credits (free); the
  task stops before spending when the plan has fewer credits left.
- the report: at the end the task logs the credits it spent and pushes them to XCom
  ``credits_spent``, also when it fails (the push happens before the exception leaves
  ``execute``) and, when deferred, from the trigger's event in ``execute_complete``.

Credits are the documented costs of the calls that succeeded (what the hooks count), which is
what CoinStats charges; a refused or failed call costs nothing.

Importing this module is cheap: the hook (and ``requests``) load when a task opens one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_coinstats._compat import TaskDeferred
from airflow_provider_coinstats.hooks.coinstats import validate_credits
from airflow_provider_coinstats.task_failure import fail_fast_on_permanent_errors

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

    _Operator = BaseOperator
else:
    _Operator = object

#: XCom key of the credits a task spent (the documented costs of its calls that succeeded).
CREDITS_SPENT_XCOM_KEY: Final = "credits_spent"


class CreditBudgetMixin(_Operator):
    """A task's credit budget (``max_credits``), plan check (``min_remaining_credits``) and report.

    Mixed into an operator before its Airflow base class. The operator calls
    :meth:`init_credit_budget` in ``__init__`` (so bad values fail when the DAG is parsed), opens
    its hooks with :meth:`budgeted_hook` and runs its work inside :meth:`reporting_credits`.

    Example::

        class MyRead(CreditBudgetMixin, BaseOperator):
            def __init__(self, *, portfolio_id, max_credits=None, min_remaining_credits=None, **kwargs):
                super().__init__(**kwargs)
                self.portfolio_id, self.coinstats_conn_id = portfolio_id, "coinstats_default"
                self.init_credit_budget(max_credits=max_credits, min_remaining_credits=min_remaining_credits)

            def execute(self, context):
                with self.reporting_credits(context), self.budgeted_hook() as hook:
                    return hook.get_portfolio_value(self.portfolio_id)
    """

    coinstats_conn_id: str
    # Until init_credit_budget sets them: no budget, no plan check.
    max_credits: int | None = None
    min_remaining_credits: int | None = None

    def init_credit_budget(self, *, max_credits: object, min_remaining_credits: object) -> None:
        """Check and keep the budget arguments (called when the DAG is parsed)."""
        self.max_credits = validate_credits("max_credits", max_credits)
        self.min_remaining_credits = validate_credits("min_remaining_credits", min_remaining_credits)

    @property
    def task_credits_spent(self) -> int:
        """Credits this task has spent so far, over every hook it opened."""
        return int(getattr(self, "_task_credits_spent", 0))

    def open_budgeted_hook(self, **hook_kwargs: Any) -> CoinStatsHook:
        """A hook that counts from the task's spending so far; the plan check runs on the first one.

        The caller closes it with :meth:`close_budgeted_hook` (or uses :meth:`budgeted_hook`).
        """
        from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook  # loads requests: run time only

        hook = CoinStatsHook(self.coinstats_conn_id, max_credits=self.max_credits, **hook_kwargs)
        # The hook checks each call against its own credits_spent: starting it at the task's total
        # makes max_credits and the connection's max_credits_per_task budgets of the whole task.
        hook.credits_spent = self.task_credits_spent
        if self.min_remaining_credits is not None and not getattr(self, "_plan_checked", False):
            try:
                # A nearly empty plan stays nearly empty: no task retries, whoever calls.
                with fail_fast_on_permanent_errors():
                    hook.require_remaining_credits(self.min_remaining_credits)
            except BaseException:
                hook.close()
                raise
            self._plan_checked = True
        return hook

    def close_budgeted_hook(self, hook: CoinStatsHook) -> None:
        """Close ``hook`` and keep what it spent as the task's total."""
        self._task_credits_spent = hook.credits_spent
        hook.close()

    @contextmanager
    def budgeted_hook(self, **hook_kwargs: Any) -> Iterator[CoinStatsHook]:
        """:meth:`open_budgeted_hook` as a context manager."""
        hook = self.open_budgeted_hook(**hook_kwargs)
        try:
            yield hook
        finally:
            self.close_budgeted_hook(hook)

    def push_credits_spent(self, context: Context, spent: int | None = None, *, deferring: bool = False) -> None:
        """Log ``spent`` (default: the task's total) and push it to XCom ``credits_spent``."""
        spent = self.task_credits_spent if spent is None else spent
        if deferring:
            # Pushed now so a trigger that never comes back (a defer timeout) still leaves the
            # credits spent before it; the resumed task pushes the total over it.
            self.log.info("CoinStats credits spent by this task before deferring: %d", spent)
        else:
            self.log.info("CoinStats credits spent by this task: %d", spent)
        ti = context.get("ti")
        if ti is not None:  # None: execute called outside a task run (unit tests, scripts)
            ti.xcom_push(key=CREDITS_SPENT_XCOM_KEY, value=spent)

    @contextmanager
    def reporting_credits(self, context: Context) -> Iterator[None]:
        """Around a task's work: push ``credits_spent`` at the end, whether it succeeds, fails or defers."""
        try:
            yield
        except TaskDeferred:
            self.push_credits_spent(context, deferring=True)
            raise
        except BaseException:
            self.push_credits_spent(context)
            raise
        self.push_credits_spent(context)

    def push_event_credits(self, context: Context, event: object) -> None:
        """After deferral: push the task's total the trigger event carries (older events carry none)."""
        spent = event.get("credits_spent") if isinstance(event, dict) else None
        if isinstance(spent, int) and not isinstance(spent, bool):
            self.push_credits_spent(context, spent)
