"""Several pages in flight: every page read once, rows in order, credits as a sequential read, stops at once.

Everything runs against the sandbox over HTTP (its request log and credits ledger are the
witnesses), with its ``latency`` so that requests really overlap. ``CoinStatsHook.run`` is
wrapped (and still called) in some tests to record when each request starts and how many run
at once: the sandbox logs a request only when it answers it.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_coinstats.exceptions import (
    CoinStatsDestinationError,
    CoinStatsExportCancelledError,
    CoinStatsNotFoundError,
    CoinStatsValidationError,
)
from airflow_provider_coinstats.export.extract import ExportOptions, extract_rows, plan_export
from airflow_provider_coinstats.export.pages import DEFAULT_PAGES_IN_FLIGHT, read_pages, stopping_reads
from airflow_provider_coinstats.export.sql import SqlTable
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from tests.export.helpers import sql_export
from tests.helpers import connect_wallet
from tests.transfers.test_export_stop import read_ahead_threads as reading_threads
from tests.transfers.test_export_stop import wait_for

NOW = datetime(2026, 1, 2, tzinfo=UTC)
ENDPOINT = "portfolio_transactions"


class RunSpy:
    """Wraps ``CoinStatsHook.run`` (still calling it): start times and the most requests at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[float] = []
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()
        original = CoinStatsHook.run

        def run(hook: CoinStatsHook, request: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.started.append(time.monotonic())
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                return original(hook, request, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(CoinStatsHook, "run", run)


def export(pid: str, in_flight: int, since: datetime | None = None) -> tuple[list[dict[str, Any]], int]:
    """Rows of the transactions dataset and the credits the hook counted."""
    options = ExportOptions(max_pages_in_flight=in_flight)
    with CoinStatsHook() as hook:
        rows = list(extract_rows(hook, "transactions", pid, extracted_at=NOW, options=options, since=since))
        return rows, hook.credits_spent


@pytest.fixture
def pid(coinstats_conn: Any) -> str:
    """A synced wallet; the request log starts empty."""
    return connect_wallet(coinstats_conn)


def sequential_then_slow(server: Any, pid: str, transactions: int) -> tuple[list[dict[str, Any]], int]:
    """A sequential read of ``transactions`` (rows, credits), then an empty log and 50 ms per page."""
    server.state.set_transaction_count(pid, transactions)
    reference = export(pid, 1)
    server.state.clear_requests()
    server.state.configure(latency=0.05)
    return reference


def pages_read(server: Any) -> list[int]:
    """Pages answered 200, in the order the sandbox answered them."""
    return [int(r.query["page"]) for r in server.state.requests(endpoint=ENDPOINT) if r.status == 200]


def ledger(server: Any) -> int:
    return int(server.state.credits_used())


@pytest.mark.parametrize("transactions", [2550, 2500, 50])
def test_every_page_is_read_once_and_rows_arrive_in_order(
    coinstats_conn: Any, pid: str, monkeypatch: pytest.MonkeyPatch, transactions: int
) -> None:
    server = coinstats_conn
    server.state.set_transaction_count(pid, transactions)
    last = transactions // 100 + 1  # the first short page (empty when the count is a multiple of 100)
    before = ledger(server)
    sequential, sequential_credits = export(pid, 1)
    assert sorted(pages_read(server)) == list(range(1, last + 1))
    assert sequential_credits == ledger(server) - before == 4 * last

    server.state.clear_requests()
    server.state.configure(latency=0.05)
    spy = RunSpy(monkeypatch)
    before = ledger(server)
    windowed, credits = export(pid, 4)

    assert windowed == sequential  # the same rows, in the same order
    assert len(windowed) == transactions
    read = pages_read(server)
    assert len(read) == len(set(read))  # no page twice
    assert set(range(1, last + 1)) <= set(read)
    past_the_end = sorted(set(read) - set(range(1, last + 1)))
    assert len(past_the_end) <= 4 - 1
    assert len(past_the_end) < last  # slow start: a one-page read pays for nothing more
    # Credits: the hook counts what the sandbox charged; the pages with data cost what they cost before.
    assert credits == ledger(server) - before == sequential_credits + 4 * len(past_the_end)
    if last > 10:
        assert spy.most == 4
    assert spy.most <= 4


def test_a_429_with_retry_after_mid_export_is_honoured(coinstats_conn: Any, pid: str) -> None:
    server = coinstats_conn
    sequential, sequential_credits = sequential_then_slow(server, pid, 2050)
    # Faults apply in order: five requests pass, the sixth is refused with 429 and Retry-After: 1.
    server.state.add_fault(Fault("slow", endpoint=ENDPOINT, delay=0, times=5))
    server.state.add_fault(Fault("status", endpoint=ENDPOINT, status=429, retry_after="1", times=1))

    rows, credits = export(pid, 4)

    assert rows == sequential
    log = server.state.requests(endpoint=ENDPOINT)
    (refused,) = [r for r in log if r.status == 429]
    again = [r for r in log if r.status == 200 and r.query["page"] == refused.query["page"]]
    assert len(again) == 1
    assert again[0].at - refused.at >= 1.0  # the retry waited for Retry-After
    read = pages_read(server)
    assert len(read) == len(set(read))
    assert credits == sequential_credits + 4 * (len(read) - 21)


def test_a_failed_page_stops_new_requests_and_raises_in_page_order(
    coinstats_conn: Any, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = coinstats_conn
    sequential, _ = sequential_then_slow(server, pid, 5000)
    server.state.add_fault(Fault("slow", endpoint=ENDPOINT, delay=0, times=8))
    server.state.add_fault(Fault("status", endpoint=ENDPOINT, status=404, times=1))  # never retried
    spy = RunSpy(monkeypatch)
    before = reading_threads()

    rows: list[dict[str, Any]] = []
    options = ExportOptions(max_pages_in_flight=4)
    with CoinStatsHook() as hook, pytest.raises(CoinStatsNotFoundError):
        rows.extend(extract_rows(hook, "transactions", pid, extracted_at=NOW, options=options))
    failed_at = time.monotonic()

    wait_for(lambda: not (reading_threads() - before), 5, "the reading threads to end")
    (failed,) = [int(r.query["page"]) for r in server.state.requests(endpoint=ENDPOINT) if r.status == 404]
    assert rows == sequential[: (failed - 1) * 100]  # every page before the failed one, in order
    requested = [int(r.query["page"]) for r in server.state.requests(endpoint=ENDPOINT)]
    assert max(requested) <= failed + 4 - 1
    assert all(start <= failed_at for start in spy.started)


def test_a_failed_write_stops_new_requests(
    coinstats_conn: Any, pid: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse refusing the first batch (10 pages): only pages already in the window were requested."""
    server = coinstats_conn
    server.state.set_transaction_count(pid, 3000)
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_TEST_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "w.db")})
    )
    operator = sql_export("coinstats_test_warehouse", pid, ["transactions"], batch_size=1000)
    db = operator.get_db_hook()
    db.run(
        [
            SqlTable(db, "coinstats_transactions", "transactions").create_table_sql(),
            "CREATE TRIGGER refuse BEFORE INSERT ON coinstats_transactions "
            "BEGIN SELECT RAISE(ABORT, 'warehouse refuses rows'); END",
        ]
    )
    server.state.configure(latency=0.1)
    spy = RunSpy(monkeypatch)
    before = reading_threads()

    with pytest.raises(CoinStatsDestinationError, match="warehouse refuses rows"):
        operator.execute({"logical_date": NOW})
    failed_at = time.monotonic()

    wait_for(lambda: not (reading_threads() - before), 5, "the reading threads to end")
    assert all(start <= failed_at for start in spy.started)
    # The consumer was on page 10: pages 11 to 10 + in_flight - 1 may have been in the window.
    assert len(pages_read(server)) <= 10 + DEFAULT_PAGES_IN_FLIGHT - 1


def test_a_kill_raises_within_a_fraction_of_a_second_and_starts_no_request(
    coinstats_conn: Any, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = coinstats_conn
    server.state.set_transaction_count(pid, 5000)
    server.state.add_fault(Fault("slow", endpoint=ENDPOINT, delay=0, times=6))
    server.state.add_fault(Fault("slow", endpoint=ENDPOINT, delay=3, times=1))  # one read hangs 3 s
    spy = RunSpy(monkeypatch)
    before = reading_threads()
    outcome: list[BaseException] = []
    rows: list[dict[str, Any]] = []

    def run_export() -> None:
        with stopping_reads() as stop, CoinStatsHook() as hook:
            STOPS.append(stop)
            try:
                options = ExportOptions(max_pages_in_flight=4)
                rows.extend(extract_rows(hook, "transactions", pid, extracted_at=NOW, options=options))
            except BaseException as error:
                outcome.append(error)

    STOPS: list[Any] = []
    task = threading.Thread(target=run_export)
    task.start()
    wait_for(lambda: not server.state.faults(), 10, "the hanging request")  # its fault is used on arrival
    killed_at = time.monotonic()
    STOPS[0].kill()
    task.join(timeout=5)
    took = time.monotonic() - killed_at

    assert not task.is_alive()
    assert took < 0.5
    assert [type(e) for e in outcome] == [CoinStatsExportCancelledError]
    # The hanging read ends by itself (a daemon thread nobody waits for); no request followed it.
    wait_for(lambda: not (reading_threads() - before), 10, "the hanging read to end")
    assert all(start <= killed_at for start in spy.started)


def test_an_incremental_read_stops_at_its_watermark_within_the_window(coinstats_conn: Any, pid: str) -> None:
    server = coinstats_conn
    server.state.set_transaction_count(pid, 4000)
    newest_first, _ = export(pid, 1)
    since = newest_first[1234]["date"]
    server.state.clear_requests()
    sequential, _ = export(pid, 1, since=since)
    sequential_pages = pages_read(server)
    server.state.clear_requests()
    server.state.configure(latency=0.05)

    windowed, _ = export(pid, 4, since=since)

    assert windowed == sequential
    assert all(row["date"] >= since for row in windowed)
    read = pages_read(server)
    assert len(read) == len(set(read))
    assert set(sequential_pages) <= set(read)
    assert len(read) - len(sequential_pages) <= 4 - 1


def test_pages_in_flight_is_validated_before_any_request(coinstats_conn: Any, pid: str) -> None:
    for bad in (0, 17, 2.5, True, "4"):
        with pytest.raises(CoinStatsValidationError, match="max_pages_in_flight"):
            plan_export(["transactions"], portfolio_id=pid, options=ExportOptions(max_pages_in_flight=bad))  # type: ignore[arg-type]
        with pytest.raises(CoinStatsValidationError, match="max_pages_in_flight"):
            sql_export("unused", pid, ["transactions"], max_pages_in_flight=bad)
    assert coinstats_conn.state.requests() == []


def test_one_request_reads_run_in_the_background_too() -> None:
    """A dataset of one request (value, chart, defi, P&L) is read by one worker thread, then stops."""
    threads: list[str] = []

    def fetch(page: int) -> list[str]:
        threads.append(threading.current_thread().name)
        return [f"answer {page}"]

    assert list(read_pages(fetch, page_size=None)) == [(1, ["answer 1"])]
    assert threads == ["coinstats-read-ahead"]


def test_the_window_never_holds_more_than_in_flight_pages() -> None:
    """Memory is bounded by ``in_flight`` pages however slowly the consumer goes."""
    fetched: list[int] = []
    lock = threading.Lock()

    def fetch(page: int) -> list[int]:
        with lock:
            fetched.append(page)
        return [page] * 10

    pages = read_pages(fetch, page_size=10, in_flight=3, max_pages=50)
    for number, items in pages:
        # While the consumer holds page n, pages up to n + 2 may have been fetched, no further.
        deadline = time.monotonic() + timedelta(milliseconds=50).total_seconds()
        while time.monotonic() < deadline and len(fetched) < min(number + 2, 50):
            time.sleep(0.001)
        with lock:
            assert max(fetched) <= number + 2
        assert items == [number] * 10
        if number == 20:
            break
    pages.close()
    assert max(fetched) <= 22
