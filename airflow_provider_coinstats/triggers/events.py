"""Event-driven runs: an ``AssetWatcher`` trigger that fires when a portfolio has a new transaction.

:class:`CoinStatsNewTransactionsTrigger` checks, every ``poll_interval`` seconds, the newest
transaction of a portfolio (one row, ``limit=1``: 4 credits per check, nothing else) and fires
when its row key (:func:`~airflow_provider_coinstats.export.row_key.transaction_row_key`, the
warehouse key) changes. A DAG scheduled on the watched Asset then runs only when there is
something new. Credits per day are ``4 * 86400 / poll_interval``: 5,760 at 1 min, 1,152 at
5 min, 384 at 15 min, 96 at 1 h.

Baseline: the first check of a trigger only records the newest row; events come from later
checks. That holds after a triggerer restart too (the trigger is re-created from its kwargs,
which never change): a transaction that arrived while no triggerer ran fires nothing until the
next one does. An incremental load (the SQL transfer's watermark) picks up every row then, so
a missed event delays the load, it loses nothing. A portfolio with no transactions has the
baseline "none", so its first transaction fires.

Errors: a transient failure (429, 5xx, timeout, cut body, 409 while syncing) is logged and the
next check retries; nothing is retried within a check, so a check sends exactly one request.
A 401 re-reads the connection once (a rotated key is picked up). Anything else (bad key,
unknown portfolio, wrong share token or passcode, plan, credits) is permanent: the trigger logs
it as an error and ends after one more interval. Airflow's triggerer then re-creates a
watcher's trigger as long as the Asset keeps it, so a broken watcher costs one (unbilled)
request and one error line per interval until the DAG or connection is fixed.

Importing this module is cheap (no ``aiohttp``, no I/O): DAG files import it for their watchers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.shared import exactly_one_portfolio, public_id_of
from airflow_provider_coinstats.exceptions import CoinStatsError, CoinStatsUnauthorizedError
from airflow_provider_coinstats.sync_probe.floors import validate_poll_interval

if TYPE_CHECKING:
    from airflow_provider_coinstats.api.builders import ApiRequest
    from airflow_provider_coinstats.api.shared import PortfolioRef
    from airflow_provider_coinstats.hooks.coinstats_async import CoinStatsAsyncHook

#: Credits one check costs: a one-row page of GET /portfolio/transactions.
CREDITS_PER_CHECK: Final = builders.portfolio_transactions("p", page=1, limit=1).credits


def credits_per_day(poll_interval: float) -> float:
    """What watching one portfolio costs per day at ``poll_interval`` seconds between checks."""
    return CREDITS_PER_CHECK * 86_400 / poll_interval


@dataclass(frozen=True)
class Newest:
    """The newest transaction a check saw (both ``None``: the portfolio has none)."""

    row_key: str | None
    date: str | None


class _Permanent(Exception):
    """A check failed in a way the next check cannot fix."""


class CoinStatsNewTransactionsTrigger(BaseEventTrigger):
    """Fire an event each time a portfolio's newest transaction changes (for ``AssetWatcher``).

    Watch a portfolio created through the API (``portfolio_id``) or one the user tracks in the
    app (``share_conn_id``: a connection holding its share token and passcode; the trigger
    serializes only the connection id and reads it in the triggerer). ``poll_interval`` (seconds,
    at least ``[coinstats] min_poll_interval``) is the time between checks; each check costs
    4 credits. The event payload is ``{"portfolio": <public id>, "newest_date": <date of the
    newest transaction>, "row_key": <its row key>}``: never a token.

    Example::

        from airflow.sdk import DAG, Asset, AssetWatcher

        new_tx = Asset(
            "coinstats://portfolio/treasury/transactions",
            watchers=[
                AssetWatcher(
                    name="treasury_new_transactions",
                    trigger=CoinStatsNewTransactionsTrigger(portfolio_id="66c1...", poll_interval=300),
                )
            ],
        )
        with DAG("load_on_new_transactions", schedule=[new_tx]):
            ...
    """

    def __init__(
        self,
        portfolio_id: str | None = None,
        share_conn_id: str | None = None,
        coinstats_conn_id: str = "coinstats_default",
        poll_interval: float = 300.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.portfolio_id, self.share_conn_id = exactly_one_portfolio(portfolio_id, share_conn_id)
        if self.portfolio_id is not None:  # no template here (a trigger is never rendered): check it now
            self.portfolio_id = builders.require_portfolio_id(self.portfolio_id)
        self.coinstats_conn_id = coinstats_conn_id
        self.poll_interval = validate_poll_interval("poll_interval", poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "portfolio_id": self.portfolio_id,
                "share_conn_id": self.share_conn_id,
                "coinstats_conn_id": self.coinstats_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def _portfolio(self) -> PortfolioRef:
        if self.share_conn_id:
            from airflow_provider_coinstats.hooks.shared import ashared_portfolio_from_connection

            return await ashared_portfolio_from_connection(self.share_conn_id)
        return str(self.portfolio_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_coinstats.hooks.coinstats_async import CoinStatsAsyncHook

        name = self.share_conn_id or self.portfolio_id
        try:
            portfolio = await self._portfolio()
        except CoinStatsError as error:
            await self._end(f"CoinStats watcher of {name}: {error}")
            return
        public_id = public_id_of(portfolio)
        request = builders.portfolio_transactions(portfolio, page=1, limit=1)
        baseline: Newest | None = None
        # One attempt per check: a transient failure is retried by the next check, so every
        # check sends exactly one request.
        async with CoinStatsAsyncHook(self.coinstats_conn_id, max_attempts=1) as hook:
            while True:
                try:
                    newest = await self._check(hook, request, public_id)
                except _Permanent as error:
                    await self._end(str(error))
                    return
                if newest is not None:
                    if baseline is None:
                        self.log.info("CoinStats watcher of %s: baseline %s", public_id, newest)
                    elif newest.row_key != baseline.row_key:
                        self.log.info("CoinStats watcher of %s: new transaction(s), newest %s", public_id, newest)
                        payload = {"portfolio": public_id, "newest_date": newest.date, "row_key": newest.row_key}
                        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
                    baseline = newest
                await asyncio.sleep(self.poll_interval)

    async def _check(self, hook: CoinStatsAsyncHook, request: ApiRequest, public_id: str) -> Newest | None:
        """The newest transaction now, or ``None`` after a transient failure (logged)."""
        from airflow_provider_coinstats.export.row_key import transaction_row_key
        from airflow_provider_coinstats.hooks.coinstats import TRANSACTION_LIST_KEYS, response_items

        try:
            # An answer without a transaction list is CoinStatsInvalidResponseError: transient.
            rows = response_items(await hook.run(request), request, TRANSACTION_LIST_KEYS)
        except CoinStatsUnauthorizedError as error:
            if await hook.reread_connection():
                self.log.warning("CoinStats watcher of %s: key rejected; the next check uses the new one", public_id)
                return None
            raise _Permanent(f"CoinStats watcher of {public_id}: {error}") from None
        except CoinStatsError as error:
            if not error.retryable:
                raise _Permanent(f"CoinStats watcher of {public_id}: {error}") from None
            self.log.warning("CoinStats watcher of %s: check failed, the next one retries: %s", public_id, error)
            return None
        if rows and not isinstance(rows[0], dict):
            self.log.warning("CoinStats watcher of %s: answer without transaction rows; next check", public_id)
            return None
        if not rows:
            return Newest(None, None)
        date = rows[0].get("date")
        return Newest(transaction_row_key(rows[0]), None if date is None else str(date))

    async def _end(self, message: str) -> None:
        # The triggerer re-creates an ended watcher trigger on its next loop: waiting one interval
        # first keeps a broken watcher at one request per interval instead of a tight loop.
        self.log.error("%s; watcher stops (the triggerer restarts it after %g s)", message, self.poll_interval)
        await asyncio.sleep(self.poll_interval)
