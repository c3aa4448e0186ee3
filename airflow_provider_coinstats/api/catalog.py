"""The CoinStats endpoints this provider uses, with their documented credit costs.

Both the client (to report what a call costs) and the sandbox (to run its credits ledger) read
this table, so the two can never disagree about a price. Costs come from the per-endpoint doc
pages ("N credits per request"); see ``shared/coinstats-api.md`` for sources. Where the docs are
silent the assumption is marked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

#: When a request may be sent again after a failed attempt (read by :mod:`.retry`):
#: ``"safe"``: whenever the failure is retryable (reads; connect, which answers ``existing``);
#: ``"if_not_sent"``: only when the request surely never reached CoinStats (connection refused,
#: connect timeout) or was refused unprocessed (429), because a repeat would be charged and acted
#: on twice.
Repeat = Literal["safe", "if_not_sent"]

BASE_URL: Final = "https://openapiv1.coinstats.app"

#: Largest page the client asks for. The API documents 1-100 for wallet transactions and no
#: bound for portfolio reads; 100 is the safe common value.
MAX_PAGE_LIMIT: Final = 100


@dataclass(frozen=True)
class Endpoint:
    """One CoinStats operation.

    ``waits_for_sync`` marks portfolio data reads, which answer HTTP 409 "Transactions not synced"
    while the portfolio is still syncing. ``repeat`` says when a failed attempt may be sent again
    (see :data:`Repeat`). ``gone_means_done`` marks a delete: a 404 on a retry, after an attempt
    whose answer was lost, means that attempt already deleted it.

    Example::

        ENDPOINTS["portfolio_coins"].credits  # -> 8
        ENDPOINTS["portfolio_sync"].repeat  # -> "if_not_sent"
    """

    name: str
    method: str
    path: str
    credits: int
    waits_for_sync: bool = False
    repeat: Repeat = "safe"
    gone_means_done: bool = False


def _table(*endpoints: Endpoint) -> Mapping[str, Endpoint]:
    return MappingProxyType({e.name: e for e in endpoints})


ENDPOINTS: Final[Mapping[str, Endpoint]] = _table(
    # A repeated connect answers "existing" with the same id, so connect is safe to repeat.
    Endpoint("connect_wallet", "POST", "/portfolio/wallet", 40),
    Endpoint("connect_exchange", "POST", "/portfolio/exchange", 10),
    # Undocumented cost; assumed free like /usage/credits.
    Endpoint("list_portfolios", "GET", "/portfolio/list", 0),
    Endpoint("portfolio_status", "GET", "/portfolio/status", 3),
    # 30 for one portfolio; without portfolioId every API portfolio is synced at 10x.
    # Charged per call and starts a sync each time: repeated only if CoinStats surely never got it.
    Endpoint("portfolio_sync", "PATCH", "/portfolio/sync", 30, repeat="if_not_sent"),
    Endpoint("delete_portfolio", "DELETE", "/portfolio/{portfolioId}", 10, gone_means_done=True),
    Endpoint("portfolio_value", "GET", "/portfolio/value", 10, waits_for_sync=True),
    Endpoint("portfolio_coins", "GET", "/portfolio/coins", 8, waits_for_sync=True),
    Endpoint("portfolio_chart", "GET", "/portfolio/chart", 10, waits_for_sync=True),
    Endpoint("portfolio_transactions", "GET", "/portfolio/transactions", 4, waits_for_sync=True),
    Endpoint("portfolio_defi", "GET", "/portfolio/defi", 400, waits_for_sync=True),
    Endpoint("portfolio_snapshot_items", "GET", "/portfolio/snapshot/items", 500, waits_for_sync=True),
    Endpoint("portfolio_pl_history", "GET", "/portfolio/pl/history", 25, waits_for_sync=True),
    Endpoint("wallet_blockchains", "GET", "/wallet/blockchains", 1),
    Endpoint("exchange_support", "GET", "/exchange/support", 1),
    # No cost is printed for usage; the CLI uses it to validate a key, so it is treated as free.
    Endpoint("usage_credits", "GET", "/usage/credits", 0),
)

#: Multiplier the API applies when PATCH /portfolio/sync is sent without a portfolioId.
SYNC_ALL_MULTIPLIER: Final = 10

CHART_TYPES: Final = ("24h", "1w", "1m", "3m", "6m", "1y", "all")
PL_INTERVALS: Final = ("hourly", "daily", "weekly", "monthly", "yearly")
PL_RANGES: Final = CHART_TYPES

NOT_SYNCED_MESSAGE: Final = "Transactions not synced"
INVALID_KEY_MESSAGE: Final = (
    "Your API Key is invalid. Please login to https://openapi.coinstats.app and generate your API Key."
)
CREDITS_EXHAUSTED_MESSAGE: Final = "Credits limit reached. Please upgrade your plan or wait for renewal."
