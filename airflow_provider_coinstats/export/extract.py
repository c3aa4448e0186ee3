"""Which CoinStats reads make each dataset, validated up front and streamed page by page.

:func:`plan_export` checks everything an export was given (dataset names, portfolio id,
currency, chart type, P&L window, dates) by building the first request of every dataset, which
validates without sending anything: a typo in the last dataset fails before the first paid
request. :func:`extract_rows` then reads one dataset through the hook and yields flat rows
(see :mod:`.schemas`). Paginated datasets are read ``max_pages_in_flight`` pages at a time and
consumed lazily, so memory is bounded by that many pages (see :mod:`.pages`).

Incremental transaction loads pass ``since`` (the destination's watermark): the request carries
``from`` and, because CoinStats documents that filter only in prose, pagination also stops once
a whole page's worth of consecutive rows is older than ``since``. Transactions are listed newest
first, so nothing newer can follow.

A shared portfolio (:class:`~airflow_provider_coinstats.api.shared.SharedPortfolio`) is exported
like an API portfolio: the requests select it by its share headers, and rows, watermarks, file
paths and Asset events name it by its public id (``ExportPlan.portfolio_id``), never its token.

Example::

    plan = plan_export(["coins", "transactions"], portfolio_id=pid, options=ExportOptions())
    for row in extract_rows(hook, "coins", pid, extracted_at=now, options=plan.options):
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.builders import ApiRequest
from airflow_provider_coinstats.api.catalog import MAX_PAGE_LIMIT
from airflow_provider_coinstats.api.shared import PortfolioRef, public_id_of
from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export.columns import DATASETS
from airflow_provider_coinstats.export.pages import (
    DEFAULT_PAGES_IN_FLIGHT,
    ReadStop,
    current_stop,
    read_pages,
    stopping_reads,
    validate_pages_in_flight,
)
from airflow_provider_coinstats.export.rows import iter_rows

if TYPE_CHECKING:
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

__all__ = [
    "ExportOptions",
    "ExportPlan",
    "ReadStop",
    "extract_rows",
    "plan_export",
    "stopping_reads",
    "validate_datasets",
]


@dataclass(frozen=True)
class ExportOptions:
    """Request parameters of an export; each dataset uses the ones that apply to it.

    ``from_date``/``to_date`` bound transactions, snapshot items and P&L history (P&L needs
    both, or neither and a ``pl_range``); snapshot items take ``YYYY-MM-DD``. ``currency`` is
    the currency of transactions, value and P&L amounts. ``max_pages_in_flight`` pages of a
    paginated dataset are requested at once (1 to 16; see :mod:`.pages`).

    Example::

        ExportOptions(currency="EUR", chart_type="1y", from_date="2026-01-01", to_date="2026-02-01")
    """

    currency: str = "USD"
    chart_type: str = "1m"
    pl_interval: str = "daily"
    pl_range: str = "1m"
    from_date: str | None = None
    to_date: str | None = None
    page_limit: int = MAX_PAGE_LIMIT
    max_pages_in_flight: int = DEFAULT_PAGES_IN_FLIGHT


@dataclass(frozen=True)
class ExportPlan:
    """Validated datasets and options, plus the first request of each (for credit estimates).

    ``portfolio_id`` names the portfolio in rows and logs (a shared one's public id);
    :attr:`portfolio` is what the reads select it by (the id, or the shared portfolio itself).
    """

    portfolio_id: str
    datasets: tuple[str, ...]
    options: ExportOptions
    first_requests: Mapping[str, ApiRequest] = field(default_factory=dict)
    shared: PortfolioRef | None = field(default=None, repr=False, compare=False)

    @property
    def portfolio(self) -> PortfolioRef:
        """What to pass to :func:`extract_rows`: the shared portfolio, or the portfolio id."""
        return self.shared if self.shared is not None else self.portfolio_id

    def min_credits(self) -> int:
        """Credits the first page of every dataset costs; pagination can add more."""
        return sum(request.credits for request in self.first_requests.values())


def validate_datasets(value: object) -> tuple[str, ...]:
    """Dataset names as a tuple without repeats; unknown names are refused, listing the valid ones."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or isinstance(names, bytes) or not names:
        raise CoinStatsValidationError("datasets", f"must be a non-empty list of dataset names ({', '.join(DATASETS)})")
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        raise CoinStatsValidationError(
            "datasets", f"unknown dataset(s) {', '.join(map(repr, unknown))}; choose from {', '.join(DATASETS)}"
        )
    return tuple(dict.fromkeys(str(name) for name in names))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _coins_request(pid: PortfolioRef, o: ExportOptions, page: int, since: datetime | None = None) -> ApiRequest:
    return builders.portfolio_coins(pid, page, o.page_limit, False)


def _transactions_request(pid: PortfolioRef, o: ExportOptions, page: int, since: datetime | None = None) -> ApiRequest:
    from_date = _iso(since) if since is not None else o.from_date
    return builders.portfolio_transactions(
        pid, currency=o.currency, page=page, limit=o.page_limit, from_date=from_date, to_date=o.to_date
    )


def _snapshot_items_request(
    pid: PortfolioRef, o: ExportOptions, page: int, since: datetime | None = None
) -> ApiRequest:
    return builders.portfolio_snapshot_items(
        pid, page=page, limit=o.page_limit, from_date=o.from_date, to_date=o.to_date
    )


#: Paginated dataset -> (its request for page n, the answer keys holding the items; as the hook's).
_PAGINATED: Final[Mapping[str, tuple[Callable[..., ApiRequest], tuple[str, ...]]]] = {
    "coins": (_coins_request, ("result",)),
    "transactions": (_transactions_request, ("data", "result")),
    "snapshot_items": (_snapshot_items_request, ("result",)),
}


def _pl_kwargs(o: ExportOptions) -> dict[str, Any]:
    return {
        "interval": o.pl_interval,
        "range_": o.pl_range,
        "from_date": o.from_date,
        "to_date": o.to_date,
        "currency": o.currency,
    }


def _pl_request(pid: PortfolioRef, o: ExportOptions) -> ApiRequest:
    try:
        return builders.portfolio_pl_history(pid, **_pl_kwargs(o))
    except CoinStatsValidationError as error:
        # Name the export's own arguments, not the request builder's.
        renamed = {"interval": "pl_interval", "range_": "pl_range"}.get(error.field)
        if renamed is None:
            raise
        raise CoinStatsValidationError(renamed, error.problem) from None


#: dataset -> the first request it sends (validation happens while building it).
_FIRST_REQUEST: Final[Mapping[str, Callable[[PortfolioRef, ExportOptions], ApiRequest]]] = {
    "coins": lambda pid, o: _coins_request(pid, o, 1),
    "value": lambda pid, o: builders.portfolio_value(pid, o.currency),
    "chart": lambda pid, o: builders.portfolio_chart(pid, o.chart_type),
    "transactions": lambda pid, o: _transactions_request(pid, o, 1),
    "defi": lambda pid, o: builders.portfolio_defi(pid),
    "snapshot_items": lambda pid, o: _snapshot_items_request(pid, o, 1),
    "pl_history": _pl_request,
}


def plan_export(datasets: object, *, portfolio_id: object, options: ExportOptions) -> ExportPlan:
    """Validate an export completely, without sending anything.

    Raises :class:`~airflow_provider_coinstats.exceptions.CoinStatsValidationError` naming the
    field (``datasets``, ``portfolio_id``, ``currency``, ``chart_type``, ``from_date`` ...).
    ``portfolio_id`` may be a :class:`~airflow_provider_coinstats.api.shared.SharedPortfolio`.

    Example::

        plan_export(["coins"], portfolio_id="p1", options=ExportOptions()).min_credits()  # 2
    """
    names = validate_datasets(datasets)
    ref = builders.require_portfolio(portfolio_id)
    validate_pages_in_flight(options.max_pages_in_flight)
    first = {name: _FIRST_REQUEST[name](ref, options) for name in names}
    return ExportPlan(public_id_of(ref), names, options, first, shared=None if isinstance(ref, str) else ref)


def _single_read(hook: CoinStatsHook, dataset: str, pid: PortfolioRef, o: ExportOptions) -> Callable[[], Any]:
    """The one call a dataset that is not paginated makes."""
    if dataset == "value":
        return partial(hook.get_portfolio_value, pid, o.currency)
    if dataset == "chart":
        return partial(hook.get_portfolio_chart, pid, o.chart_type)
    if dataset == "defi":
        return partial(hook.get_portfolio_defi, pid)
    return partial(hook.get_portfolio_pl_history, pid, **_pl_kwargs(o))


def _paged_items(
    hook: CoinStatsHook,
    build: Callable[[int], ApiRequest],
    keys: tuple[str, ...],
    o: ExportOptions,
    stop: ReadStop | None,
) -> Iterator[Any]:
    """Items of a paginated dataset, pages read ``o.max_pages_in_flight`` at a time, with the hook's page guards.

    As the hook's own pagination: a page repeating the previous one (a server ignoring ``page``)
    or a full page at :data:`~airflow_provider_coinstats.hooks.coinstats.MAX_PAGES` raises
    :class:`~airflow_provider_coinstats.exceptions.CoinStatsPaginationError` instead of paying on.
    """
    from airflow_provider_coinstats.hooks.coinstats import MAX_PAGES, PageGuard, response_items

    def fetch(page: int) -> list[Any]:
        request = build(page)
        return response_items(hook.run(request), request, keys)

    guard = PageGuard(o.page_limit, max_pages=MAX_PAGES)
    pages = read_pages(fetch, page_size=o.page_limit, in_flight=o.max_pages_in_flight, max_pages=MAX_PAGES, stop=stop)
    for page, items in pages:
        guard.check_repeat(build(page), page, items)
        yield from items
        # read_pages ends the read at the short page itself; this raises at a full last page.
        guard.is_last(build(page), page, items)


def _newer_than(rows: Generator[dict[str, Any]], since: datetime, page_limit: int) -> Iterator[dict[str, Any]]:
    # Rows at or after the watermark are re-read on purpose (the loader upserts on row_key), so a
    # transaction stamped exactly at the watermark is never lost.
    older_in_a_row = 0
    with closing(rows):  # stopping here stops the page reads at once (no new request starts)
        for row in rows:
            if row["date"] >= since:
                older_in_a_row = 0
                yield row
                continue
            older_in_a_row += 1
            if older_in_a_row >= page_limit:
                return


def extract_rows(
    hook: CoinStatsHook,
    dataset: str,
    portfolio_id: PortfolioRef,
    *,
    extracted_at: datetime,
    options: ExportOptions,
    since: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Flat rows of one dataset, read through ``hook`` page by page.

    ``portfolio_id`` is an API portfolio id or a shared portfolio (``ExportPlan.portfolio``);
    rows carry its public id. ``since`` (transactions only) limits the read to transactions dated at or after it. Every
    request runs in a background thread (:func:`~.pages.read_pages`), under the
    :class:`~.pages.ReadStop` of the enclosing :func:`~.pages.stopping_reads` block, if any.

    Example::

        rows = extract_rows(hook, "transactions", pid, extracted_at=now, options=ExportOptions(), since=watermark)
    """
    if since is not None and dataset != "transactions":
        raise CoinStatsValidationError("since", "incremental reads are supported for transactions only")
    stop = current_stop()
    # The connection is read here, in the task's own thread: Airflow 3.0's task SDK talks to its
    # supervisor over one socket without a lock, so the reading threads must not be the first to.
    hook.get_conn()
    payload: Iterable[Any] | Mapping[str, Any]
    paginated = _PAGINATED.get(dataset)
    if paginated is not None:
        build, keys = paginated
        payload = _paged_items(hook, partial(build, portfolio_id, options, since=since), keys, options, stop)
    else:
        # One-request datasets are read in the background too, so a kill never waits for a hung read.
        fetch = _single_read(hook, dataset, portfolio_id, options)
        ((_, (payload,)),) = read_pages(lambda _: [fetch()], page_size=None, in_flight=1, stop=stop)
    rows = iter_rows(
        dataset,
        payload,
        portfolio_id=public_id_of(portfolio_id),
        extracted_at=extracted_at,
        currency=options.currency,
    )
    if since is None:
        return rows
    return _newer_than(rows, since.astimezone(UTC), options.page_limit)
