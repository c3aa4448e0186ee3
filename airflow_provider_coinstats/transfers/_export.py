"""The flow every CoinStats export shares: validate, check the destination, stream, emit Assets.

Subclasses say where rows go (:meth:`_ExportOperator.prepare_destination` and
:meth:`_ExportOperator.export_dataset`); everything else, including the order "no paid request
before every argument and the destination are checked", lives here once.

Stopping is shared too: a failed write ends the export's read-ahead before its next page request,
and ``on_kill`` (what Airflow's task runner calls on SIGTERM) makes the export raise
:class:`~airflow_provider_coinstats.exceptions.CoinStatsExportCancelledError` within a fraction
of a second, even while a CoinStats read hangs; the open database transaction is rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_coinstats.api.shared import exactly_one_portfolio
from airflow_provider_coinstats.credits import CreditBudgetMixin
from airflow_provider_coinstats.exceptions import CoinStatsExportCancelledError
from airflow_provider_coinstats.export.extract import (
    ExportOptions,
    ExportPlan,
    ReadStop,
    plan_export,
    stopping_reads,
    validate_datasets,
)
from airflow_provider_coinstats.export.pages import DEFAULT_PAGES_IN_FLIGHT, validate_pages_in_flight
from airflow_provider_coinstats.task_failure import fail_fast_on_permanent_errors

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Asset, Context
    from openlineage.client.event_v2 import OutputDataset

    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook


def is_templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


class _ExportOperator(CreditBudgetMixin, BaseOperator):
    """Shared base of the export operators; not for direct use.

    ``max_pages_in_flight`` (1 to 16, default 4) pages of a paginated dataset are requested at
    once; 1 reads page after page (see :mod:`airflow_provider_coinstats.export.pages`).

    The portfolio is ``portfolio_id`` (an API portfolio) or ``share_conn_id``: the id of an Airflow
    connection holding the share link of a portfolio the user tracks in the CoinStats app (login =
    share token, password = passcode, optional extra ``portfolio_name``; see
    :mod:`airflow_provider_coinstats.hooks.shared`). Exactly one is required, checked when the DAG is
    parsed. Only the connection id is stored; the token and passcode are read in ``execute`` and
    never reach a rendered field or XCom. Rows, files, XCom and Asset events name a shared portfolio
    by its public id.

    ``max_credits`` (with the connection's ``max_credits_per_task``, the smaller wins) stops the
    export before the page that would pass it, pages in flight included: that dataset's load is
    rolled back (SQL) or its file never published, and the task fails without retries, naming
    spent, budget and the page's cost. ``min_remaining_credits`` checks the plan (free) after the
    destination and before the first paid read. The task pushes XCom ``credits_spent``.
    """

    template_fields: Sequence[str] = (
        "portfolio_id",
        "share_conn_id",
        "coinstats_conn_id",
        "currency",
        "from_date",
        "to_date",
    )
    ui_color = "#c9e4ca"

    def __init__(
        self,
        *,
        portfolio_id: str | None = None,
        share_conn_id: str | None = None,
        datasets: Sequence[str] | str,
        coinstats_conn_id: str = "coinstats_default",
        currency: str = "USD",
        chart_type: str = "1m",
        pl_interval: str = "daily",
        pl_range: str = "1m",
        from_date: str | None = None,
        to_date: str | None = None,
        page_limit: int = 100,
        max_pages_in_flight: int = DEFAULT_PAGES_IN_FLIGHT,
        max_credits: int | None = None,
        min_remaining_credits: int | None = None,
        **kwargs: Any,
    ) -> None:
        user_outlets = kwargs.get("outlets")
        super().__init__(**kwargs)
        self.init_credit_budget(max_credits=max_credits, min_remaining_credits=min_remaining_credits)
        # Datasets decide tables, files and Assets, so they are fixed when the DAG is parsed.
        self.datasets = validate_datasets(datasets)
        self.portfolio_id, self.share_conn_id = exactly_one_portfolio(portfolio_id, share_conn_id)
        self.coinstats_conn_id = coinstats_conn_id
        self.currency = currency
        self.chart_type = chart_type
        self.pl_interval = pl_interval
        self.pl_range = pl_range
        self.from_date = from_date
        self.to_date = to_date
        self.page_limit = page_limit
        # Not templated, so a bad value fails when the DAG is parsed.
        self.max_pages_in_flight = validate_pages_in_flight(max_pages_in_flight)
        self._emit_assets = user_outlets is None
        self._reads: ReadStop | None = None
        # What get_openlineage_facets_on_complete reports: the API read and the summary returned.
        self._exported: tuple[str, dict[str, Any]] | None = None

    def _init_outlets(self) -> None:
        # Called at the end of a subclass's __init__, once its destination attributes exist.
        if self._emit_assets:
            self.outlets = [asset for asset in (self.dataset_asset(d) for d in self.datasets) if asset is not None]

    # --- what subclasses provide ----------------------------------------------------------------

    def dataset_asset(self, dataset: str) -> Asset | None:
        """The Asset this operator updates for ``dataset`` (``None``: not known at parse time)."""
        raise NotImplementedError

    def prepare_destination(self, plan: ExportPlan, context: Context) -> None:
        """Check (and create) the destination; runs before any CoinStats request."""
        raise NotImplementedError

    def export_dataset(
        self, hook: CoinStatsHook, plan: ExportPlan, dataset: str, extracted_at: datetime, context: Context
    ) -> dict[str, Any]:
        """Read one dataset and write it; return a JSON-able summary with ``rows`` and ``location``."""
        raise NotImplementedError

    # --- the shared flow ------------------------------------------------------------------------

    def portfolio(self) -> object:
        """The portfolio to read (validated by ``plan_export``): the shared one, read from
        ``share_conn_id`` now, or ``portfolio_id``."""
        if self.share_conn_id is not None:
            from airflow_provider_coinstats.hooks.shared import shared_portfolio_from_connection

            return shared_portfolio_from_connection(self.share_conn_id)
        return self.portfolio_id

    def options(self) -> ExportOptions:
        return ExportOptions(
            currency=self.currency,
            chart_type=self.chart_type,
            pl_interval=self.pl_interval,
            pl_range=self.pl_range,
            from_date=self.from_date,
            to_date=self.to_date,
            page_limit=self.page_limit,
            max_pages_in_flight=self.max_pages_in_flight,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        # The reads stop when this block ends, e.g. the moment a write fails, so the read-ahead
        # never buys pages nobody will write; a kill from the very start stops the first read.
        with self.reporting_credits(context), fail_fast_on_permanent_errors(), stopping_reads() as self._reads:
            plan = plan_export(self.datasets, portfolio_id=self.portfolio(), options=self.options())
            self.prepare_destination(plan, context)
            hook = self.open_budgeted_hook()
            extracted_at = datetime.now(UTC)
            self.log.info(
                "Exporting %s of portfolio %s (at least %d credits)",
                ", ".join(plan.datasets),
                plan.portfolio_id,
                plan.min_credits(),
            )
            summary: dict[str, Any] = {}
            try:
                for dataset in plan.datasets:
                    before = hook.credits_spent
                    result = self.export_dataset(hook, plan, dataset, extracted_at, context)
                    result["credits"] = hook.credits_spent - before
                    summary[dataset] = result
                    self.log.info(
                        "%s: %d rows to %s (%d credits)", dataset, result["rows"], result["location"], result["credits"]
                    )
                    self._record_event(context, dataset, plan, result)
            except CoinStatsExportCancelledError as error:
                # A kill is no bug: a short traceback, not one through every frame of the read-ahead
                # (Airflow 3.0 renders each frame's locals, which alone took a second here).
                raise CoinStatsExportCancelledError(f"{error}; the {dataset} load was rolled back") from None
            finally:
                self.close_budgeted_hook(hook)
        exported = {
            "portfolio_id": plan.portfolio_id,
            "extracted_at": extracted_at.isoformat(),
            "credits_spent": hook.credits_spent,
            "datasets": summary,
        }
        self._exported = (hook.settings.base_url, exported)
        return exported

    def lineage_outputs(self, summary: dict[str, Any]) -> list[OutputDataset]:
        """The OpenLineage output datasets of a finished export (see :mod:`.lineage`)."""
        raise NotImplementedError

    def destination_lineage(self, task_instance: object) -> OperatorLineage[Any, Any] | None:
        """Lineage the destination adds itself (e.g. a database's query ids); none by default."""
        return None

    def get_openlineage_facets_on_complete(self, task_instance: object) -> OperatorLineage[Any, Any] | None:
        """Lineage for Airflow's OpenLineage listener, from what ``execute`` recorded (no request).

        ``None`` when the export did not finish (a failed task reports no datasets).
        """
        if self._exported is None:
            return None
        from airflow_provider_coinstats.transfers.lineage import export_lineage

        api_url, summary = self._exported
        return export_lineage(api_url, summary, self.lineage_outputs(summary), self.destination_lineage(task_instance))

    def on_kill(self) -> None:
        """Stop the running export: reads stop and the load raises within 0.1 s, then rolls back.

        Airflow's task runner calls this from its SIGTERM handler and lets the task go on, so the
        export must end by itself. Only flags are set here: that is safe in a signal handler.
        """
        if self._reads is not None:
            self._reads.kill()

    def _record_event(self, context: Context, dataset: str, plan: ExportPlan, result: dict[str, Any]) -> None:
        asset = self.dataset_asset(dataset) if self._emit_assets else None
        if asset is None:
            return
        context["outlet_events"][asset].extra = {
            "portfolio_id": plan.portfolio_id,
            "dataset": dataset,
            "rows": result["rows"],
            "location": result["location"],
        }
