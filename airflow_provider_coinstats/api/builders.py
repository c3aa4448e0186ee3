"""Request builders: one function per CoinStats operation, validating input before anything is sent.

Each builder returns an :class:`ApiRequest`, a plain description of the HTTP call that the sync and
async transports both send. Validation lives here so that bad input is refused before any request
(and so before any credits are spent), with an error naming the field.

Example::

    req = connect_wallet("0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045", "ethereum", name="Vitalik")
    req.method, req.path  # -> ("POST", "/portfolio/wallet")
    req.json  # -> {"address": "0xd8dA...", "connectionId": "ethereum", "name": "Vitalik"}

Portfolio reads take an API portfolio id or a :class:`~.shared.SharedPortfolio`; a shared one is
sent as the documented ``sharetoken`` / ``passcode`` headers (never in the URL, which access logs
and request descriptions show) and its values are listed in ``secrets``::

    req = portfolio_coins(SharedPortfolio(token, passcode))
    req.params  # -> {"page": "1", "limit": "100"}: no portfolioId, no token
    req.headers  # -> {"sharetoken": token, "passcode": passcode}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from airflow_provider_coinstats.api.catalog import (
    CHART_TYPES,
    ENDPOINTS,
    MAX_PAGE_LIMIT,
    PL_INTERVALS,
    PL_RANGES,
    SYNC_ALL_MULTIPLIER,
    Endpoint,
)
from airflow_provider_coinstats.api.shared import SharedPortfolio
from airflow_provider_coinstats.exceptions import CoinStatsValidationError


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP call to CoinStats, independent of the transport that sends it.

    ``secrets`` lists values (exchange credentials, share tokens and passcodes) that must be
    scrubbed from any error text; they, the body and ``headers`` (request-specific headers such as
    ``sharetoken``, sent by both transports) are excluded from ``repr`` so a request can be logged.
    """

    endpoint: Endpoint
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Mapping[str, Any] | None = field(default=None, repr=False)
    credits: int = 0
    secrets: tuple[str, ...] = field(default=(), repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def method(self) -> str:
        return self.endpoint.method

    def describe(self) -> str:
        """``METHOD /path`` for log lines and messages; never includes the body."""
        return f"{self.method} {self.path}"


def _request(
    name: str,
    *,
    params: Mapping[str, str | None] | None = None,
    json: Mapping[str, Any] | None = None,
    path: str | None = None,
    credits: int | None = None,
    secrets: tuple[str, ...] = (),
    headers: Mapping[str, str] | None = None,
) -> ApiRequest:
    endpoint = ENDPOINTS[name]
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    return ApiRequest(
        endpoint=endpoint,
        path=path or endpoint.path,
        params=clean,
        json=json,
        credits=endpoint.credits if credits is None else credits,
        secrets=secrets,
        headers=dict(headers or {}),
    )


def _read(name: str, portfolio: object, params: Mapping[str, str | None]) -> ApiRequest:
    """A portfolio read selecting ``portfolio`` by ``portfolioId`` or by the share headers."""
    if isinstance(portfolio, SharedPortfolio):
        return _request(name, params=params, headers=portfolio.headers(), secrets=portfolio.secrets)
    return _request(name, params={"portfolioId": _portfolio(portfolio), **params})


# --- validation helpers ---------------------------------------------------------------------------


def require_text(field_name: str, value: object) -> str:
    """Return ``value`` stripped, or raise naming ``field_name`` if it is not a non-empty string."""
    if not isinstance(value, str):
        raise CoinStatsValidationError(field_name, f"must be a non-empty string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise CoinStatsValidationError(field_name, "must be a non-empty string, got an empty or blank value")
    return text


def optional_text(field_name: str, value: object) -> str | None:
    """``None`` or blank means "not given"; anything else must be a string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CoinStatsValidationError(field_name, f"must be a string or None, got {type(value).__name__}")
    return value.strip() or None


def _choice(field_name: str, value: object, allowed: tuple[str, ...]) -> str:
    text = require_text(field_name, value)
    if text not in allowed:
        raise CoinStatsValidationError(field_name, f"must be one of {', '.join(allowed)}; got {text!r}")
    return text


def page_params(page: int, limit: int) -> dict[str, str]:
    """Validate and render ``page``/``limit`` query parameters."""
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise CoinStatsValidationError("page", f"must be an integer >= 1, got {page!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise CoinStatsValidationError("limit", f"must be an integer from 1 to {MAX_PAGE_LIMIT}, got {limit!r}")
    return {"page": str(page), "limit": str(limit)}


def require_portfolio_id(value: object) -> str:
    """The portfolio id, refusing what a template renders to when the connect task is not upstream."""
    if value == "None":
        raise CoinStatsValidationError(
            "portfolio_id", "rendered to 'None': is the connect task upstream of this one and did it push an id?"
        )
    return require_text("portfolio_id", value)


def require_portfolio(value: object) -> str | SharedPortfolio:
    """A shared portfolio as is, or a portfolio id checked by :func:`require_portfolio_id`."""
    return value if isinstance(value, SharedPortfolio) else require_portfolio_id(value)


def _portfolio(portfolio_id: object) -> str:
    if isinstance(portfolio_id, SharedPortfolio):
        raise CoinStatsValidationError(
            "portfolio_id", f"this call needs an API portfolio id; shared portfolio {portfolio_id} cannot be used"
        )
    return require_text("portfolio_id", portfolio_id)


# --- connect ---------------------------------------------------------------------------------------


def connect_wallet(address: object, blockchain: object, name: object = None) -> ApiRequest:
    """POST /portfolio/wallet with exactly the seed schema: ``address``, ``connectionId``, ``name``.

    ``name`` is a string in the schema, so it is left out rather than sent as null.
    """
    body: dict[str, str] = {
        "address": require_text("address", address),
        "connectionId": require_text("blockchain", blockchain),
    }
    display_name = optional_text("portfolio_name", name)
    if display_name is not None:
        body["name"] = display_name
    return _request("connect_wallet", json=body)


def connect_exchange(exchange: object, connection_fields: object, name: object = None) -> ApiRequest:
    """POST /portfolio/exchange with ``connectionId``, ``connectionFields`` and optional ``name``.

    Every credential value is carried in ``secrets`` so that no error text can echo it.
    """
    exchange_id = require_text("exchange", exchange)
    if not isinstance(connection_fields, Mapping) or not connection_fields:
        raise CoinStatsValidationError("connection_fields", "must be a non-empty mapping of field name to string value")
    fields: dict[str, str] = {}
    for key, value in connection_fields.items():
        label = f"connection_fields[{key!r}]"
        if not isinstance(key, str) or not key.strip():
            raise CoinStatsValidationError("connection_fields", f"has a key that is not a non-empty string: {key!r}")
        if not isinstance(value, str):
            # Never echo the value: it may be a credential.
            raise CoinStatsValidationError(label, f"must be a string, got {type(value).__name__}")
        if not value.strip():
            raise CoinStatsValidationError(label, "must be a non-empty string")
        fields[key] = value
    body: dict[str, Any] = {"connectionId": exchange_id, "connectionFields": fields}
    display_name = optional_text("portfolio_name", name)
    if display_name is not None:
        body["name"] = display_name
    return _request("connect_exchange", json=body, secrets=tuple(v for v in fields.values() if v))


# --- portfolio management --------------------------------------------------------------------------


def list_portfolios() -> ApiRequest:
    return _request("list_portfolios")


def portfolio_status(portfolio_id: object) -> ApiRequest:
    """GET /portfolio/status; documented with ``portfolioId`` only, so a shared portfolio is refused."""
    return _request("portfolio_status", params={"portfolioId": _portfolio(portfolio_id)})


def portfolio_sync(portfolio_id: object | None) -> ApiRequest:
    """PATCH /portfolio/sync; without a portfolio id the API syncs every API portfolio at 10x cost."""
    if portfolio_id is None:
        cost = ENDPOINTS["portfolio_sync"].credits * SYNC_ALL_MULTIPLIER
        return _request("portfolio_sync", credits=cost)
    return _request("portfolio_sync", params={"portfolioId": _portfolio(portfolio_id)})


def delete_portfolio(portfolio_id: object) -> ApiRequest:
    pid = _portfolio(portfolio_id)
    return _request("delete_portfolio", path=f"/portfolio/{quote(pid, safe='')}")


# --- portfolio data --------------------------------------------------------------------------------


def portfolio_value(portfolio_id: object, currency: object = "USD") -> ApiRequest:
    return _read("portfolio_value", portfolio_id, {"currency": require_text("currency", currency)})


def portfolio_coins(
    portfolio_id: object, page: int = 1, limit: int = MAX_PAGE_LIMIT, include_risk_score: bool = False
) -> ApiRequest:
    params = page_params(page, limit)
    if include_risk_score:
        params["includeRiskScore"] = "true"
    return _read("portfolio_coins", portfolio_id, params)


def portfolio_chart(portfolio_id: object, chart_type: object = "1m") -> ApiRequest:
    return _read("portfolio_chart", portfolio_id, {"type": _choice("chart_type", chart_type, CHART_TYPES)})


def portfolio_transactions(
    portfolio_id: object,
    *,
    currency: object = "USD",
    page: int = 1,
    limit: int = MAX_PAGE_LIMIT,
    coin_id: object = None,
    from_date: object = None,
    to_date: object = None,
) -> ApiRequest:
    """GET /portfolio/transactions; ``currency`` is required by the API and defaults to USD."""
    return _read(
        "portfolio_transactions",
        portfolio_id,
        {
            "currency": require_text("currency", currency),
            **page_params(page, limit),
            "coinId": optional_text("coin_id", coin_id),
            "from": optional_text("from_date", from_date),
            "to": optional_text("to_date", to_date),
        },
    )


def portfolio_defi(portfolio_id: object) -> ApiRequest:
    return _read("portfolio_defi", portfolio_id, {})


def portfolio_snapshot_items(
    portfolio_id: object,
    *,
    page: int = 1,
    limit: int = MAX_PAGE_LIMIT,
    from_date: object = None,
    to_date: object = None,
    coin_ids: object = None,
) -> ApiRequest:
    ids: str | None = None
    if coin_ids is not None:
        if not isinstance(coin_ids, list | tuple) or not all(isinstance(c, str) and c.strip() for c in coin_ids):
            raise CoinStatsValidationError("coin_ids", "must be a list of non-empty coin id strings")
        ids = ",".join(str(c).strip() for c in coin_ids) or None
    return _read(
        "portfolio_snapshot_items",
        portfolio_id,
        {
            **page_params(page, limit),
            "from": optional_text("from_date", from_date),
            "to": optional_text("to_date", to_date),
            "coinIds": ids,
        },
    )


def portfolio_pl_history(
    portfolio_id: object,
    *,
    interval: object = "daily",
    range_: object = "1m",
    from_date: object = None,
    to_date: object = None,
    currency: object = "USD",
) -> ApiRequest:
    """GET /portfolio/pl/history: either ``range_`` or both ``from_date`` and ``to_date``."""
    params: dict[str, str | None] = {
        "interval": _choice("interval", interval, PL_INTERVALS),
        "currency": require_text("currency", currency),
    }
    start, end = optional_text("from_date", from_date), optional_text("to_date", to_date)
    if (start is None) != (end is None):
        raise CoinStatsValidationError("from_date", "from_date and to_date must be given together")
    if start is not None:
        params.update({"from": start, "to": end})
    else:
        params["range"] = _choice("range_", range_, PL_RANGES)
    return _read("portfolio_pl_history", portfolio_id, params)


# --- discovery and account -------------------------------------------------------------------------


def wallet_blockchains() -> ApiRequest:
    return _request("wallet_blockchains")


def exchange_support() -> ApiRequest:
    return _request("exchange_support")


def usage_credits() -> ApiRequest:
    return _request("usage_credits")
