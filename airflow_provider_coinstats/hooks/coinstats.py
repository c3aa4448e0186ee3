"""``CoinStatsHook``: the CoinStats API from Airflow, on requests.

The hook reads the API key from an Airflow connection of type ``coinstats`` and offers one method
per endpoint the provider needs. Requests are built (and validated) by
:mod:`airflow_provider_coinstats.api.builders`, answers are classified into typed exceptions by
:mod:`airflow_provider_coinstats.api.responses`, and retries follow
:mod:`airflow_provider_coinstats.api.retry`; the hook adds connection handling, credit accounting
and pagination.

Pagination never runs for ever: it stops with :class:`CoinStatsPaginationError` when a page
repeats the previous one (a server ignoring ``page`` would otherwise be paid for page after page)
or after :data:`MAX_PAGES` pages.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

from airflow_provider_coinstats._compat import BaseHook, mask_secret
from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.catalog import MAX_PAGE_LIMIT
from airflow_provider_coinstats.api.settings import (
    ClientSettings,
    RetrySettings,
    settings_from_connection,
    with_max_attempts,
)
from airflow_provider_coinstats.api.shared import PortfolioRef
from airflow_provider_coinstats.exceptions import (
    CoinStatsBudgetExceededError,
    CoinStatsError,
    CoinStatsForbiddenError,
    CoinStatsInvalidResponseError,
    CoinStatsPaginationError,
    CoinStatsValidationError,
)

if TYPE_CHECKING:
    import requests

    from airflow_provider_coinstats.api.builders import ApiRequest
    from airflow_provider_coinstats.api.transport import SyncTransport

#: Added to a 403 answering a shared-portfolio read: which settings to check (never their values).
SHARE_REFUSED_HINT: Final = (
    "reading a shared portfolio: check the share token (login) and passcode (password) of its share "
    "connection, and that the API key's CoinStats plan is Degen (share-token reads need it)"
)

#: Most pages one paginated read fetches (a million rows at 100 per page). Reaching it raises
#: :class:`CoinStatsPaginationError` instead of paying for more; ``max_pages=`` overrides it per call.
MAX_PAGES: Final = 10_000


@dataclass(frozen=True)
class ConnectResult:
    """What POST /portfolio/wallet and /portfolio/exchange answer.

    ``status`` is ``connected`` for a new portfolio and ``existing`` when CoinStats already had
    it, which is what makes connect safe to retry.

    Example::

        ConnectResult(portfolio_id="66c1...", connection_id="ethereum", status="connected")
    """

    portfolio_id: str
    connection_id: str
    status: Literal["connected", "existing"]

    @classmethod
    def from_json(cls, payload: Any, request: ApiRequest) -> ConnectResult:
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("portfolioId"), str)
            or not payload["portfolioId"]
            or payload.get("status") not in ("connected", "existing")
        ):
            raise CoinStatsInvalidResponseError(
                200,
                "connect answer lacks portfolioId or a status of connected/existing",
                method=request.method,
                path=request.path,
            )
        return cls(
            portfolio_id=payload["portfolioId"],
            connection_id=str(payload.get("connectionId") or ""),
            status=payload["status"],
        )


class CoinStatsHookBase(BaseHook):
    """What :class:`CoinStatsHook` and the async hook share: the connection, the budget, the credits.

    Not used directly. ``max_attempts`` overrides the connection's (sensors and triggers derive
    it from their failure budget); ``credits_spent`` adds up the documented cost of every call
    that succeeded; ``deadline`` (UNIX time) on ``run`` keeps retries from running past it.

    The credit budget is the smaller of ``max_credits`` and the connection's extra
    ``max_credits_per_task``: a call whose documented cost would take ``credits_spent`` (plus
    the calls in flight) past it is refused before it is sent, with
    :class:`~airflow_provider_coinstats.exceptions.CoinStatsBudgetExceededError`.

    Example::

        class MyHook(CoinStatsHookBase): ...
    """

    conn_name_attr = "coinstats_conn_id"
    default_conn_name = "coinstats_default"
    conn_type = "coinstats"
    hook_name = "CoinStats"

    def __init__(
        self,
        coinstats_conn_id: str = default_conn_name,
        max_attempts: int | None = None,
        max_credits: int | None = None,
    ) -> None:
        super().__init__()
        self.coinstats_conn_id = coinstats_conn_id
        self.max_attempts = max_attempts
        self.max_credits = validate_credits("max_credits", max_credits)
        self.credits_spent = 0
        # Credits of calls sent but not answered yet: with several pages in flight, each is
        # checked against the budget as if the ones before it had already been charged.
        self._credits_in_flight = 0
        # Exports read pages from several threads at once; += on an attribute is not atomic.
        self._credits_lock = threading.Lock()
        # Request secrets (share tokens, passcodes) already registered with the masker.
        self._masked: set[str] = set()

    def _mask_request_secrets(self, request: ApiRequest) -> None:
        """Register a request's secrets with Airflow's masker once per hook (a second line of defence)."""
        for value in request.secrets:
            if value not in self._masked:
                mask_secret(value)
                self._masked.add(value)

    def _with_budget(self, settings: ClientSettings) -> ClientSettings:
        return with_max_attempts(settings, self.max_attempts)

    def credit_budget(self, settings: ClientSettings) -> int | None:
        """The budget in force: the smaller of ``max_credits`` and the connection's ``max_credits_per_task``."""
        budgets = [b for b in (self.max_credits, settings.max_credits_per_task) if b is not None]
        return min(budgets) if budgets else None

    @contextmanager
    def _charged_within_budget(self, request: ApiRequest, settings: ClientSettings) -> Iterator[None]:
        """Around one send: refuse it before sending if its documented cost would pass the budget,
        count its credits as spent if it succeeds."""
        budget = self.credit_budget(settings)
        with self._credits_lock:
            committed = self.credits_spent + self._credits_in_flight
            if budget is not None and request.credits > 0 and committed + request.credits > budget:
                raise CoinStatsBudgetExceededError.for_call(
                    request.describe(), spent=committed, budget=budget, cost=request.credits
                )
            self._credits_in_flight += request.credits
        charged = False
        try:
            yield
            charged = True
        finally:
            with self._credits_lock:
                self._credits_in_flight -= request.credits
                if charged:
                    self.credits_spent += request.credits

    @staticmethod
    @contextmanager
    def _share_refusal_explained(request: ApiRequest) -> Iterator[None]:
        """A 403 to a shared-portfolio read says what to check; the same (permanent) error class."""
        try:
            yield
        except CoinStatsForbiddenError as error:
            if "sharetoken" not in request.headers:
                raise
            raise CoinStatsForbiddenError(
                error.status_code,
                f"{error.message} ({SHARE_REFUSED_HINT})",
                method=error.method,
                path=error.path,
                request_id=error.request_id,
            ) from None

    @staticmethod
    def _validated_minimum(minimum: object) -> int:
        """``min_remaining_credits``, checked before the usage call is sent."""
        checked = validate_credits("min_remaining_credits", minimum)
        if checked is None:
            raise CoinStatsValidationError("min_remaining_credits", "must be an integer >= 0, got None")
        return checked

    def _check_remaining(self, usage: Any, minimum: int) -> int:
        """The plan's remaining credits from a /usage/credits answer; raises below ``minimum``."""
        remaining = usage.get("remainingCredits") if isinstance(usage, dict) else None
        if isinstance(remaining, bool) or not isinstance(remaining, int | float):
            raise CoinStatsInvalidResponseError(
                200, "usage answer has no numeric 'remainingCredits'", method="GET", path="/usage/credits"
            )
        if remaining < minimum:
            raise CoinStatsBudgetExceededError.for_plan(remaining=int(remaining), minimum=minimum)
        self.log.info("CoinStats plan has %d credits left (min_remaining_credits=%d)", remaining, minimum)
        return int(remaining)

    @staticmethod
    def _retry_until(settings: ClientSettings, deadline: float | None) -> RetrySettings:
        """The connection's retry bounds, cut short so retries end by ``deadline``."""
        if deadline is None:
            return settings.retry
        remaining = max(deadline - time.time(), 0.0)
        return replace(settings.retry, max_retry_time=min(settings.retry.max_retry_time, remaining))


class CoinStatsHook(CoinStatsHookBase):
    """Talk to the CoinStats API with the key from an Airflow connection.

    The connection (type ``coinstats``) keeps the API key in ``password``; ``host`` is optional
    (default ``https://openapiv1.coinstats.app``; a loopback ``http://`` URL such as the sandbox's
    is accepted); extras ``timeout`` (seconds, default 30), ``max_attempts`` (default 5),
    ``auth_type`` (``x-api-key`` or ``bearer``) and ``max_credits_per_task`` (a credit budget,
    which ``max_credits=`` can only lower).

    Use it as a context manager (or call :meth:`close`) so its pooled connections are closed.

    Example::

        with CoinStatsHook(coinstats_conn_id="coinstats_default") as hook:
            result = hook.connect_wallet("0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045", "ethereum")
            for tx in hook.iter_portfolio_transactions(result.portfolio_id):
                ...
            # Every portfolio read also takes a portfolio the user tracks in the app, shared by link:
            coins = hook.get_portfolio_coins(shared_portfolio_from_connection("my_share"))
            hook.credits_spent  # credits charged by the calls that succeeded, per the documented costs

        with CoinStatsHook(max_credits=50) as hook:
            hook.require_remaining_credits(1000)  # free; raises if the plan has less left
            hook.get_portfolio_coins(portfolio_id)  # refused before sending if it would pass 50
    """

    def __init__(
        self,
        coinstats_conn_id: str = CoinStatsHookBase.default_conn_name,
        max_attempts: int | None = None,
        max_credits: int | None = None,
    ) -> None:
        super().__init__(coinstats_conn_id, max_attempts, max_credits)
        self._transport: SyncTransport | None = None

    # --- connection -----------------------------------------------------------------------------

    @cached_property
    def settings(self) -> ClientSettings:
        """Request settings read from the connection (once per hook)."""
        conn = self.get_connection(self.coinstats_conn_id)
        settings = self._with_budget(settings_from_connection(conn, self.coinstats_conn_id))
        mask_secret(settings.api_key)
        return settings

    @property
    def transport(self) -> SyncTransport:
        if self._transport is None:
            from airflow_provider_coinstats.api.transport import SyncTransport

            self._transport = SyncTransport(self.settings, self.log)
        return self._transport

    def get_conn(self) -> requests.Session:
        """The pooled ``requests.Session`` every call of this hook goes through."""
        return self.transport.session

    def close(self) -> None:
        """Close the pooled session; a later call opens a new one."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> CoinStatsHook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run(self, request: ApiRequest, *, deadline: float | None = None) -> Any:
        """Send one request (with retries, ending by ``deadline``) and return its decoded JSON."""
        self._mask_request_secrets(request)
        with self._share_refusal_explained(request), self._charged_within_budget(request, self.settings):
            return self.transport.send(request, self._retry_until(self.settings, deadline))

    def test_connection(self) -> tuple[bool, str]:
        """Check the key with GET /usage/credits, which costs no credits; closes what it opened."""
        try:
            usage = self.get_usage_credits()
        except CoinStatsError as err:
            return False, str(err)
        finally:
            self.close()
        remaining = usage.get("remainingCredits") if isinstance(usage, dict) else None
        return True, f"Connected to CoinStats at {self.settings.base_url}; remaining credits: {remaining}"

    # --- connect --------------------------------------------------------------------------------

    def connect_wallet(self, address: str, blockchain: str, name: str | None = None) -> ConnectResult:
        """Create (or find) the tracked portfolio for a wallet. 40 credits."""
        request = builders.connect_wallet(address, blockchain, name)
        return ConnectResult.from_json(self.run(request), request)

    def connect_exchange(
        self, exchange: str, connection_fields: Mapping[str, str], name: str | None = None
    ) -> ConnectResult:
        """Create (or find) the tracked portfolio for an exchange account. 10 credits."""
        request = builders.connect_exchange(exchange, connection_fields, name)
        self._mask_request_secrets(request)
        return ConnectResult.from_json(self.run(request), request)

    # --- portfolio management ------------------------------------------------------------------

    def list_portfolios(self) -> list[dict[str, Any]]:
        request = builders.list_portfolios()
        return response_items(self.run(request), request, ("result",))

    def get_portfolio_status(self, portfolio_id: str) -> str:
        """``syncing`` or ``synced``."""
        request = builders.portfolio_status(portfolio_id)
        payload = self.run(request)
        status = payload.get("status") if isinstance(payload, dict) else None
        if not isinstance(status, str):
            raise CoinStatsInvalidResponseError(
                200, "status answer has no 'status' field", method=request.method, path=request.path
            )
        return status

    def sync_portfolio(self, portfolio_id: str | None) -> dict[str, Any]:
        """Start a re-sync. Without a portfolio id every API portfolio is synced, at 10x cost."""
        request = builders.portfolio_sync(portfolio_id)
        return _object(self.run(request), request)

    def delete_portfolio(self, portfolio_id: str) -> dict[str, Any]:
        request = builders.delete_portfolio(portfolio_id)
        return _object(self.run(request), request)

    # --- portfolio data -------------------------------------------------------------------------

    def get_portfolio_value(self, portfolio_id: PortfolioRef, currency: str = "USD") -> dict[str, Any]:
        request = builders.portfolio_value(portfolio_id, currency)
        return _object(self.run(request), request)

    def iter_portfolio_coins(
        self,
        portfolio_id: PortfolioRef,
        *,
        limit: int = MAX_PAGE_LIMIT,
        include_risk_score: bool = False,
        max_pages: int = MAX_PAGES,
    ) -> Iterator[dict[str, Any]]:
        """Holdings, fetched page by page."""
        return self._paginate(
            lambda page: builders.portfolio_coins(portfolio_id, page, limit, include_risk_score),
            limit,
            ("result",),
            max_pages=max_pages,
        )

    def get_portfolio_coins(self, portfolio_id: PortfolioRef, include_risk_score: bool = False) -> list[dict[str, Any]]:
        """All holdings as a list (a portfolio has tens of coins, not millions)."""
        return list(self.iter_portfolio_coins(portfolio_id, include_risk_score=include_risk_score))

    def get_portfolio_chart(self, portfolio_id: PortfolioRef, chart_type: str = "1m") -> list[list[float]]:
        """``[[timestamp_ms, usd, btc, eth], ...]``."""
        request = builders.portfolio_chart(portfolio_id, chart_type)
        return response_items(self.run(request), request, ("result",))  # type: ignore[return-value]

    def iter_portfolio_transactions(
        self,
        portfolio_id: PortfolioRef,
        *,
        currency: str = "USD",
        limit: int = MAX_PAGE_LIMIT,
        coin_id: str | None = None,
        from_date: str | None = None,
        to_date: str | None = None,
        start_page: int = 1,
        max_pages: int = MAX_PAGES,
    ) -> Iterator[dict[str, Any]]:
        """Transactions, newest first, fetched page by page: memory is bounded by one page."""
        return self._paginate(
            lambda page: builders.portfolio_transactions(
                portfolio_id,
                currency=currency,
                page=page,
                limit=limit,
                coin_id=coin_id,
                from_date=from_date,
                to_date=to_date,
            ),
            limit,
            TRANSACTION_LIST_KEYS,
            start_page=start_page,
            max_pages=max_pages,
        )

    def get_portfolio_defi(self, portfolio_id: PortfolioRef) -> dict[str, Any]:
        """DeFi positions. Expensive: 400 credits."""
        request = builders.portfolio_defi(portfolio_id)
        return _object(self.run(request), request)

    def iter_portfolio_snapshot_items(
        self,
        portfolio_id: PortfolioRef,
        *,
        limit: int = MAX_PAGE_LIMIT,
        from_date: str | None = None,
        to_date: str | None = None,
        coin_ids: Sequence[str] | None = None,
        max_pages: int = MAX_PAGES,
    ) -> Iterator[dict[str, Any]]:
        """Daily balance snapshots, page by page. Expensive: 500 credits per page."""
        return self._paginate(
            lambda page: builders.portfolio_snapshot_items(
                portfolio_id,
                page=page,
                limit=limit,
                from_date=from_date,
                to_date=to_date,
                coin_ids=list(coin_ids) if coin_ids is not None else None,
            ),
            limit,
            ("result",),
            max_pages=max_pages,
        )

    def get_portfolio_pl_history(
        self,
        portfolio_id: PortfolioRef,
        *,
        interval: str = "daily",
        range_: str = "1m",
        from_date: str | None = None,
        to_date: str | None = None,
        currency: str = "USD",
    ) -> list[dict[str, Any]]:
        """Cash-flow-adjusted profit and loss over time. 25 credits."""
        request = builders.portfolio_pl_history(
            portfolio_id,
            interval=interval,
            range_=range_,
            from_date=from_date,
            to_date=to_date,
            currency=currency,
        )
        return response_items(self.run(request), request, ("result", "data"))

    # --- discovery and account ------------------------------------------------------------------

    def get_blockchains(self) -> list[dict[str, Any]]:
        """Networks POST /portfolio/wallet accepts (``connectionId`` is the blockchain id)."""
        request = builders.wallet_blockchains()
        return response_items(self.run(request), request, ("result",))

    def get_supported_exchanges(self) -> list[dict[str, Any]]:
        """Exchanges with the ``connectionFields`` each one requires."""
        request = builders.exchange_support()
        return response_items(self.run(request), request, ("result",))

    def get_usage_credits(self) -> dict[str, Any]:
        """``{totalCredits, usedCredits, remainingCredits, subscription}``; free."""
        request = builders.usage_credits()
        return _object(self.run(request), request)

    def require_remaining_credits(self, minimum: int) -> int:
        """Stop before spending when the plan is nearly empty: the remaining credits, or raise.

        Reads GET /usage/credits (free) and raises :class:`CoinStatsBudgetExceededError` when the
        plan has fewer than ``minimum`` credits left.
        """
        checked = self._validated_minimum(minimum)
        return self._check_remaining(self.run(builders.usage_credits()), checked)

    # --- helpers --------------------------------------------------------------------------------

    def _paginate(
        self,
        build: Callable[[int], ApiRequest],
        limit: int,
        keys: tuple[str, ...],
        start_page: int = 1,
        max_pages: int = MAX_PAGES,
    ) -> Iterator[dict[str, Any]]:
        # Validate page/limit now, so bad input fails before the generator is first advanced
        # and before any request.
        build(start_page)
        if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
            raise CoinStatsValidationError("max_pages", f"must be an integer >= 1, got {max_pages!r}")

        guard = PageGuard(limit, start_page=start_page, max_pages=max_pages)

        def pages() -> Iterator[dict[str, Any]]:
            page = start_page
            while True:
                request = build(page)
                items = response_items(self.run(request), request, keys)
                guard.check_repeat(request, page, items)
                yield from items
                if guard.is_last(request, page, items):
                    return
                page += 1

        return pages()

    # --- connection form (Airflow < 3.2; 3.2+ reads the provider info instead) -------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 3.0/3.1 only (3.2+ reads the provider info); built from the one field table."""
        from airflow_provider_coinstats.hooks.connection_form import legacy_ui_field_behaviour

        return legacy_ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Airflow 3.0/3.1 only (3.2+ reads the provider info); built from the one field table."""
        from airflow_provider_coinstats.hooks.connection_form import legacy_form_widgets

        return legacy_form_widgets()


def validate_credits(name: str, value: object) -> int | None:
    """A credit count argument (``max_credits``, ``min_remaining_credits``): ``None`` or an integer >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CoinStatsValidationError(name, f"must be an integer >= 0 (credits) or None, got {value!r}")
    return value


class PageGuard:
    """What keeps a paginated read from paying for ever, for the hook's pages and the export's.

    A page that repeats the previous one (a server ignoring ``page``) or a full page at
    ``max_pages`` raises :class:`CoinStatsPaginationError`; a short page is the last (the API
    returns no totals).

    Example::

        guard = PageGuard(limit=100)
        guard.check_repeat(request, page, items)  # before the items are used
        if guard.is_last(request, page, items):  # after
            ...
    """

    def __init__(self, limit: int, *, start_page: int = 1, max_pages: int = MAX_PAGES) -> None:
        self.limit = limit
        self.start_page = start_page
        self.max_pages = max_pages
        self._previous: tuple[int, str, str] | None = None

    def check_repeat(self, request: ApiRequest, page: int, items: list[Any]) -> None:
        """Raise if ``items`` repeat the previous page; remember them otherwise."""
        fingerprint = _page_fingerprint(items)
        if fingerprint is not None and fingerprint == self._previous:
            raise CoinStatsPaginationError(
                request.describe(),
                page,
                f"page {page} repeats page {page - 1} (the server ignores 'page'?); "
                "stopped instead of paying for the same page again",
            )
        self._previous = fingerprint

    def is_last(self, request: ApiRequest, page: int, items: list[Any]) -> bool:
        """True for a short page; raise for a full page at the page limit."""
        if len(items) < self.limit:
            return True
        if page - self.start_page + 1 >= self.max_pages:
            raise CoinStatsPaginationError(
                request.describe(), page, f"reached the limit of {self.max_pages} pages and the last page was full"
            )
        return False


def _page_fingerprint(items: list[Any]) -> tuple[int, str, str] | None:
    """What identifies a page: its size and its first and last rows, as canonical JSON.

    Constant cost per page whatever its size (hashing every row would cost about as much as
    parsing the page). Consecutive distinct pages never share both their first and last rows,
    since rows are distinct transactions, coins or dated snapshots. ``None`` for an empty page.
    """
    if not items:
        return None
    first, last = (json.dumps(row, sort_keys=True, default=str) for row in (items[0], items[-1]))
    return len(items), first, last


#: Where a transactions page keeps its rows (``data`` in the documented shape, ``result`` in older answers).
TRANSACTION_LIST_KEYS: Final = ("data", "result")


def _object(payload: Any, request: ApiRequest) -> dict[str, Any]:
    """The JSON object of an answer; an empty answer (e.g. a bare DELETE) is ``{}``."""
    if payload is None:
        return {}
    if isinstance(payload, dict):
        return payload
    raise CoinStatsInvalidResponseError(
        200, "expected a JSON object in the answer", method=request.method, path=request.path
    )


def response_items(payload: Any, request: ApiRequest, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The list of records in an answer: a bare list, or the first of ``keys`` that holds one."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in keys:
            if isinstance(payload.get(key), list):
                return payload[key]  # type: ignore[no-any-return]
    raise CoinStatsInvalidResponseError(
        200,
        f"expected a list (or an object with {' or '.join(keys)}) in the answer",
        method=request.method,
        path=request.path,
    )
