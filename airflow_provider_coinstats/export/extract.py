"""Which CoinStats reads make each dataset, validated up front and streamed page by page.

:func:`plan_export` checks everything an export was given (dataset names, portfolio id,
currency, chart type, P&L window, dates) by building the first request of every dataset, which
validates without sending anything: a typo in the last dataset fails before the first paid
request. :func:`extract_rows` then reads one dataset through the hook and yields flat rows
(see :mod:`.schemas`); paginated datasets are consumed lazily, so memory is bounded by one page.

Incremental transaction loads pass ``since`` (the destination's watermark): the request carries
``from`` and, because CoinStats documents that filter only in prose, pagination also stops once
a whole page's worth of consecutive rows is older than ``since``. Transactions are listed newest
first, so nothing newer can follow.

Example::

    plan = plan_export(["coins", "transactions"], portfolio_id=pid, options=ExportOptions())
    for row in extract_rows(hook, "coins", pid, extracted_at=now, options=plan.options):
        ...
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.builders import ApiRequest
from airflow_provider_coinstats.api.catalog import MAX_PAGE_LIMIT
from airflow_provider_coinstats.exceptions import CoinStatsExportCancelledError, CoinStatsValidationError
from airflow_provider_coinstats.export.schemas import DATASETS, iter_rows

if TYPE_CHECKING:
    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook

T = TypeVar("T")


@dataclass(frozen=True)
class ExportOptions:
    """Request parameters of an export; each dataset uses the ones that apply to it.

    ``from_date``/``to_date`` bound transactions, snapshot items and P&L history (P&L needs
    both, or neither and a ``pl_range``); snapshot items take ``YYYY-MM-DD``. ``currency`` is
    the currency of transactions, value and P&L amounts.

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


@dataclass(frozen=True)
class ExportPlan:
    """Validated datasets and options, plus the first request of each (for credit estimates)."""

    portfolio_id: str
    datasets: tuple[str, ...]
    options: ExportOptions
    first_requests: Mapping[str, ApiRequest] = field(default_factory=dict)

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


def _transactions_request(pid: str, o: ExportOptions, page: int, since: datetime | None) -> ApiRequest:
    from_date = _iso(since) if since is not None else o.from_date
    return builders.portfolio_transactions(
        pid, currency=o.currency, page=page, limit=o.page_limit, from_date=from_date, to_date=o.to_date
    )


def _pl_kwargs(o: ExportOptions) -> dict[str, Any]:
    return {
        "interval": o.pl_interval,
        "range_": o.pl_range,
        "from_date": o.from_date,
        "to_date": o.to_date,
        "currency": o.currency,
    }


def _pl_request(pid: str, o: ExportOptions) -> ApiRequest:
    try:
        return builders.portfolio_pl_history(pid, **_pl_kwargs(o))
    except CoinStatsValidationError as error:
        # Name the export's own arguments, not the request builder's.
        renamed = {"interval": "pl_interval", "range_": "pl_range"}.get(error.field)
        if renamed is None:
            raise
        raise CoinStatsValidationError(renamed, error.problem) from None


#: dataset -> the first request it sends (validation happens while building it).
_FIRST_REQUEST: Final[Mapping[str, Callable[[str, ExportOptions], ApiRequest]]] = {
    "coins": lambda pid, o: builders.portfolio_coins(pid, 1, o.page_limit, False),
    "value": lambda pid, o: builders.portfolio_value(pid, o.currency),
    "chart": lambda pid, o: builders.portfolio_chart(pid, o.chart_type),
    "transactions": lambda pid, o: _transactions_request(pid, o, 1, None),
    "defi": lambda pid, o: builders.portfolio_defi(pid),
    "snapshot_items": lambda pid, o: builders.portfolio_snapshot_items(
        pid, page=1, limit=o.page_limit, from_date=o.from_date, to_date=o.to_date
    ),
    "pl_history": _pl_request,
}


def plan_export(datasets: object, *, portfolio_id: object, options: ExportOptions) -> ExportPlan:
    """Validate an export completely, without sending anything.

    Raises :class:`~airflow_provider_coinstats.exceptions.CoinStatsValidationError` naming the
    field (``datasets``, ``portfolio_id``, ``currency``, ``chart_type``, ``from_date`` ...).

    Example::

        plan_export(["coins"], portfolio_id="p1", options=ExportOptions()).min_credits()  # 2
    """
    names = validate_datasets(datasets)
    pid = builders.require_portfolio_id(portfolio_id)
    return ExportPlan(pid, names, options, {name: _FIRST_REQUEST[name](pid, options) for name in names})


def _source(
    hook: CoinStatsHook, dataset: str, pid: str, o: ExportOptions, since: datetime | None
) -> Iterator[Any] | Callable[[], Any]:
    """Paginated datasets: items that request their pages as they are consumed; others: the one call to make."""
    if dataset == "coins":
        return hook.iter_portfolio_coins(pid, limit=o.page_limit)
    if dataset == "value":
        return partial(hook.get_portfolio_value, pid, o.currency)
    if dataset == "chart":
        return partial(hook.get_portfolio_chart, pid, o.chart_type)
    if dataset == "transactions":
        request = _transactions_request(pid, o, 1, since)
        return hook.iter_portfolio_transactions(
            pid,
            currency=o.currency,
            limit=o.page_limit,
            from_date=request.params.get("from"),
            to_date=request.params.get("to"),
        )
    if dataset == "defi":
        return partial(hook.get_portfolio_defi, pid)
    if dataset == "snapshot_items":
        return hook.iter_portfolio_snapshot_items(pid, limit=o.page_limit, from_date=o.from_date, to_date=o.to_date)
    return partial(hook.get_portfolio_pl_history, pid, **_pl_kwargs(o))


def _answer(fetch: Callable[[], Any]) -> Iterator[Any]:
    yield fetch()


class ReadStop:
    """Stops the read-ahead threads of one export: when the export ends, or at once when its task is killed.

    ``end()`` (the export finished or failed) makes every producer stop before its next item, so a
    failed write buys no further page; ``kill()`` (the task's ``on_kill``) also makes waiting
    consumers raise :class:`~airflow_provider_coinstats.exceptions.CoinStatsExportCancelledError`.
    Both only assign an attribute, so they are safe inside a signal handler: no lock is taken that
    the interrupted thread might hold.

    Example::

        with stopping_reads() as stop:  # operator.execute; on_kill calls stop.kill()
            table.load(extract_rows(hook, "transactions", pid, extracted_at=now, options=options), portfolio_id=pid)
    """

    __slots__ = ("ended", "killed")

    def __init__(self) -> None:
        self.ended = False
        self.killed = False

    def end(self) -> None:
        self.ended = True

    def kill(self) -> None:
        self.killed = True
        self.ended = True


#: The ReadStop of the export running in this context (set by :func:`stopping_reads`).
_CURRENT_STOP: ContextVar[ReadStop | None] = ContextVar("coinstats_read_stop", default=None)


@contextmanager
def stopping_reads() -> Iterator[ReadStop]:
    """A :class:`ReadStop` for every read-ahead started inside the block; ended when the block exits.

    The block exits the moment a write fails, long before the failed load's row iterator is
    garbage-collected, so producers stop at once instead of filling their queue.
    """
    stop = ReadStop()
    token = _CURRENT_STOP.set(stop)
    try:
        yield stop
    finally:
        stop.end()
        _CURRENT_STOP.reset(token)


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE: Final = object()

#: Seconds a waiting consumer waits between checks of its ``ReadStop``.
_KILL_CHECK_SECONDS: Final = 0.1


def read_ahead(items: Iterator[T], chunk: int, depth: int = 2, stop: ReadStop | None = None) -> Iterator[T]:
    """``items``, produced by a background thread up to ``depth`` chunks ahead of the consumer.

    Paginated reads wait on CoinStats for most of a page's time; fetching the next page while the
    current one is flattened and written overlaps the two. Memory stays bounded: at most
    ``depth + 1`` chunks of ``chunk`` items exist at once. Errors are re-raised in the consumer.

    The producer checks before every item (so before every page request) whether the consumer
    has stopped or ``stop`` has ended: at most the page in flight is read after that. The
    consumer never joins the thread, which may be stuck in a slow read: it is a daemon and ends
    after that read. Once ``stop`` has ended (``stop.kill()`` from ``on_kill``), the consumer
    raises :class:`~airflow_provider_coinstats.exceptions.CoinStatsExportCancelledError` within
    0.1 s, however long the read in flight takes.
    """
    chunks: queue.Queue[Any] = queue.Queue(maxsize=depth)
    # Plain flags, read before every item: two attribute reads, no call, no lock.
    consumer = ReadStop()  # ended when the consumer goes away
    export = stop if stop is not None else consumer

    def offer(value: Any) -> bool:
        while not (consumer.ended or export.ended):
            try:
                chunks.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            if export.ended:  # killed before the first read: not even page 1 is bought
                return
            batch: list[T] = []
            for item in items:
                batch.append(item)
                if len(batch) >= chunk:
                    if not offer(batch):
                        return
                    batch = []
                # Checked before the loop's next(), which may request a page.
                if consumer.ended or export.ended:
                    return
            if not batch or offer(batch):
                offer(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it
            offer(_Failed(error))

    def take() -> Any:
        while True:
            if export.ended:
                # The producer has stopped too: waiting on would wait for ever.
                raise CoinStatsExportCancelledError(
                    "the task was killed while reading CoinStats"
                    if export.killed
                    else "the export ended before this read was consumed"
                )
            try:
                return chunks.get(timeout=_KILL_CHECK_SECONDS)
            except queue.Empty:
                continue

    worker = threading.Thread(target=produce, name="coinstats-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            value = take()
            if value is _DONE:
                return
            if isinstance(value, _Failed):
                raise value.error
            yield from value
    finally:
        consumer.end()


def _newer_than(rows: Iterator[dict[str, Any]], since: datetime, page_limit: int) -> Iterator[dict[str, Any]]:
    # Rows at or after the watermark are re-read on purpose (the loader upserts on row_key), so a
    # transaction stamped exactly at the watermark is never lost.
    older_in_a_row = 0
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
    portfolio_id: str,
    *,
    extracted_at: datetime,
    options: ExportOptions,
    since: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Flat rows of one dataset, read through ``hook`` page by page.

    ``since`` (transactions only) limits the read to transactions dated at or after it. Every
    request runs in a :func:`read_ahead` thread, under the :class:`ReadStop` of the enclosing
    :func:`stopping_reads` block, if any.

    Example::

        rows = extract_rows(hook, "transactions", pid, extracted_at=now, options=ExportOptions(), since=watermark)
    """
    if since is not None and dataset != "transactions":
        raise CoinStatsValidationError("since", "incremental reads are supported for transactions only")
    source = _source(hook, dataset, portfolio_id, options, since)
    stop = _CURRENT_STOP.get()
    # The connection is read here, in the task's own thread: Airflow 3.0's task SDK talks to its
    # supervisor over one socket without a lock, so the read-ahead thread must not be the first to.
    hook.get_conn()
    payload: Iterable[Any] | Mapping[str, Any]
    if isinstance(source, Iterator):
        payload = read_ahead(source, options.page_limit, stop=stop)
    else:
        # One-request datasets are read in the background too, so a kill never waits for a hung read.
        (payload,) = read_ahead(_answer(source), 1, stop=stop)
    rows = iter_rows(
        dataset,
        payload,
        portfolio_id=portfolio_id,
        extracted_at=extracted_at,
        currency=options.currency,
    )
    if since is None:
        return rows
    return _newer_than(rows, since.astimezone(UTC), options.page_limit)
