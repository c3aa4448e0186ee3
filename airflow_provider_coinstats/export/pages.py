"""Reads in the background: up to ``in_flight`` pages requested at once, items handed over in page order.

CoinStats answers a page in about 100 ms and has no totals, so a sequential read spends nearly
all its time waiting. :func:`read_pages` keeps a window of pages instead: while the consumer
works on page ``n``, pages up to ``n + in_flight - 1`` are requested or waiting, so at most
``in_flight`` pages are held at once, whatever the size of the read (``in_flight=1`` is a plain
sequential read). Every request goes through the hook (one retry policy: 429s and
``Retry-After`` are honoured per request, credits are counted by the hook) and every page is
requested exactly once.

The window opens as pages come back full (slow start, as TCP's): page 1 is requested alone, and
every full page lets two more be requested, up to ``in_flight``. A read that fits in one page
(the usual incremental load) therefore costs exactly what a sequential read costs.

Where it stops:

* at the first short page (the API's only end marker). Pages already in flight beyond it come
  back empty and are dropped: at most ``in_flight - 1`` pages, and never more than the number
  of full pages read, are paid for past the end. The same bound holds when the consumer stops
  early (an incremental read reaching its watermark). Either way the read returns once those
  requests are back, so none of them outlives it;
* at a failed page: no page after it is requested, the pages before it are still handed over,
  then its error is raised, exactly where a sequential read would raise it;
* at once when the export ends (``ReadStop.end()``, e.g. a failed write) or is killed
  (``ReadStop.kill()``): no new request starts, and a killed export's consumer raises
  :class:`~airflow_provider_coinstats.exceptions.CoinStatsExportCancelledError` within 0.1 s
  even while a read hangs. Workers are daemon threads that nobody waits for then: one stuck in
  a slow read ends after it.

Measured with ``python -m benchmarks export`` on a 2-core machine shared with other work
(100,000 transactions, the sandbox answering each page after 100 ms; the bare sequential loop
takes 117 s at load average 2 to 3): 1 page in flight 129 s, 2: 65 s, 4: 34 to 38 s (3.1x to
3.4x the bare loop, JSON Lines and SQLite, two runs), 8: 22 s (5.3x). The default,
:data:`DEFAULT_PAGES_IN_FLIGHT` = 4, is the smallest that stays above 3x; 8 would double the
burst of requests the API's rate limit sees and the pages paid past the end (up to 7). It stays
well inside the transport's connection pool (16).

Example::

    with stopping_reads() as stop:  # operator.execute; on_kill calls stop.kill()
        for page in read_pages(fetch_transactions_page, page_size=100, in_flight=4, stop=stop):
            ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, TypeVar

from airflow_provider_coinstats.exceptions import CoinStatsExportCancelledError, CoinStatsValidationError

T = TypeVar("T")

#: Pages one paginated read requests at once unless told otherwise (see the module docstring).
DEFAULT_PAGES_IN_FLIGHT: Final = 4
#: Most pages in flight allowed: the sync transport pools 16 connections per host.
MAX_PAGES_IN_FLIGHT: Final = 16
#: Seconds a waiting consumer or worker waits between checks of its ``ReadStop``.
_STOP_CHECK_SECONDS: Final = 0.1


def validate_pages_in_flight(value: object) -> int:
    """``value`` if it is an integer from 1 to :data:`MAX_PAGES_IN_FLIGHT`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGES_IN_FLIGHT:
        raise CoinStatsValidationError(
            "max_pages_in_flight", f"must be an integer from 1 to {MAX_PAGES_IN_FLIGHT}, got {value!r}"
        )
    return value


class ReadStop:
    """Stops the background reads of one export: when the export ends, or at once when its task is killed.

    ``end()`` (the export finished or failed) makes every worker stop before its next request,
    so a failed write buys no further page; ``kill()`` (the task's ``on_kill``) also makes waiting
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
    """A :class:`ReadStop` for every read started inside the block; ended when the block exits.

    The block exits the moment a write fails, long before the failed load's row iterator is
    garbage-collected, so workers stop at once instead of requesting more pages.
    """
    stop = ReadStop()
    token = _CURRENT_STOP.set(stop)
    try:
        yield stop
    finally:
        stop.end()
        _CURRENT_STOP.reset(token)


def current_stop() -> ReadStop | None:
    """The :class:`ReadStop` of the enclosing :func:`stopping_reads` block, if any."""
    return _CURRENT_STOP.get()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Window:
    """The shared state of one read: which page to request next, which to hand over next, the answers."""

    def __init__(self, in_flight: int, last_page: int, stop: ReadStop | None) -> None:
        self.lock = threading.Condition()
        self.in_flight = in_flight
        self.next_request = 1
        self.next_handover = 1
        #: Pages the consumer is done with (it asked for the next one).
        self.finished = 0
        #: Full pages answered so far: each lets two more pages be requested (slow start).
        self.full_pages = 0
        #: Page number -> its items or its failure, until handed over.
        self.answers: dict[int, Any] = {}
        #: The last page worth reading (a short or failed page lowers it).
        self.last_page = last_page
        self.consumer = ReadStop()  # ended when the consumer goes away
        self.export = stop if stop is not None else self.consumer

    def stopped(self) -> bool:
        # Plain flags: two attribute reads, no lock (ReadStop is set from signal handlers).
        return self.consumer.ended or self.export.ended

    def claim(self) -> int | None:
        """The next page to request, once the window has room; ``None`` when there is none to request."""
        with self.lock:
            while True:
                # Checked right before every request: after a stop, no new request starts.
                if self.stopped() or self.next_request > self.last_page:
                    return None
                page = self.next_request
                if page <= self.finished + self.in_flight and page <= 2 * self.full_pages + 1:
                    self.next_request += 1
                    return page
                self.lock.wait(_STOP_CHECK_SECONDS)

    def answer(self, page: int, value: Any, last: bool) -> None:
        with self.lock:
            self.answers[page] = value
            if last:
                self.last_page = min(self.last_page, page)
            else:
                self.full_pages += 1
            self.lock.notify_all()

    def take(self) -> tuple[int, Any] | None:
        """The next page in order and its answer, ``None`` after the last; raises once the export is killed or ended."""
        with self.lock:
            while True:
                if self.export.ended:
                    # The workers have stopped too: waiting on would wait for ever.
                    raise CoinStatsExportCancelledError(
                        "the task was killed while reading CoinStats"
                        if self.export.killed
                        else "the export ended before this read was consumed"
                    )
                page = self.next_handover
                if self.finished < page - 1:
                    self.finished = page - 1
                    self.lock.notify_all()  # the window has room for one more request
                if page in self.answers:
                    self.next_handover += 1
                    return page, self.answers.pop(page)
                if page > self.last_page:
                    return None
                self.lock.wait(_STOP_CHECK_SECONDS)

    def leave(self) -> None:
        self.consumer.end()
        with self.lock:
            self.lock.notify_all()


def read_pages(
    fetch: Callable[[int], list[T]],
    *,
    page_size: int | None,
    in_flight: int = DEFAULT_PAGES_IN_FLIGHT,
    max_pages: int = 1,
    stop: ReadStop | None = None,
) -> Iterator[tuple[int, list[T]]]:
    """``(page number, items)`` of pages 1, 2, ... in order, fetched by up to ``in_flight`` worker threads.

    ``fetch(n)`` requests page ``n`` (through the hook) and returns its items. A page with fewer
    than ``page_size`` items is the last; ``page_size=None`` means a single page (one-request
    reads run in the background too, so a kill never waits for a hung read). At most
    ``max_pages`` pages are requested; the caller decides what a full last page means.
    Errors of ``fetch`` are raised in the consumer, in page order.

    Example::

        for number, items in read_pages(lambda n: hook_page(n), page_size=100, max_pages=10_000):
            ...
    """
    validate_pages_in_flight(in_flight)
    last_page = max_pages if page_size is not None else 1
    window = _Window(in_flight, last_page, stop)

    def work() -> None:
        while (page := window.claim()) is not None:
            try:
                items = fetch(page)
            except BaseException as error:  # handed to the consumer, which raises it in page order
                window.answer(page, _Failed(error), last=True)
                return
            window.answer(page, items, last=page_size is None or len(items) < page_size)

    if window.export.ended:  # killed before the first read: not even page 1 is bought
        window.take()
    workers = [
        threading.Thread(target=work, name="coinstats-read-ahead", daemon=True)
        for _ in range(min(in_flight, last_page))
    ]
    for worker in workers:
        worker.start()
    failed = False
    try:
        while (taken := window.take()) is not None:
            page, value = taken
            if isinstance(value, _Failed):
                failed = True
                raise value.error
            yield page, value
    finally:
        window.leave()
        if not failed:
            # Read to its end or closed by the consumer (a watermark reached): it is over only when
            # its requests still in flight have come back, so none of them (nor their retries)
            # outlives it and the hook can be closed. A failed, ended or killed read does not wait.
            for worker in workers:
                while worker.is_alive() and not (stop is not None and stop.ended):
                    worker.join(_STOP_CHECK_SECONDS)
