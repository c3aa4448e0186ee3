"""Sandbox request handlers: what each CoinStats endpoint does, independent of the HTTP framework.

Every request runs the same pipeline, in the order the real API appears to use:
auth (401) -> validation (400) -> credits (406) -> portfolio lookup (404) -> not synced (409)
-> the operation -> charge. Credits are charged only when the operation succeeds.

Deliberate deviations from the real API (documented so nobody mistakes them for facts):

* Portfolio data reads *require* ``portfolioId`` or a share token, and ``GET /portfolio/status``
  requires ``portfolioId`` (400 "portfolioId is required"). The real API aggregates every
  API-connected portfolio when both are omitted; the sandbox does not.
* Share tokens (a portfolio the user keeps in the CoinStats app, see
  ``SandboxState.create_shared``) are read from the ``sharetoken`` header or the ``shareToken`` /
  ``sharetoken`` query parameter, the passcode from the ``passcode`` header or query parameter;
  headers win. The docs name no status for a bad token or passcode: the sandbox answers **403**
  (not 401, which clients read as "bad API key") with "Invalid share token" or "Invalid passcode"
  (missing counts as wrong). A key whose plan is not "Degen" gets 403 :data:`SHARE_PLAN_MESSAGE`,
  checked before the token so a non-Degen key learns nothing about tokens. ``portfolioId`` and a
  share token together -> 400 (the docs say "pass one"). ``/portfolio/pl/history`` (MCP-only,
  documented with ``portfolioId`` only) accepts a share token like the other reads. A shared
  portfolio is created synced (the app keeps it synced) but can be put back into syncing with
  ``set_sync``; reads then answer 409 like any other portfolio's.
* ``GET /portfolio/pl/history``'s response shape is not published upstream; the sandbox answers
  ``{"result": [{date, profitLoss, profitLossPercent, value, netFlow}]}``.
* ``currency`` must be one of :data:`data.FX` (a fixed table), otherwise 400.
* Reconnecting ("existing") is charged like a new connect; the docs do not say either way.
* ``from``/``to`` on transactions and P&L are a half-open window ``[from, to)``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow_provider_coinstats.api.catalog import (
    CHART_TYPES,
    CREDITS_EXHAUSTED_MESSAGE,
    ENDPOINTS,
    INVALID_KEY_MESSAGE,
    MAX_PAGE_LIMIT,
    NOT_SYNCED_MESSAGE,
    PL_INTERVALS,
    PL_RANGES,
    SYNC_ALL_MULTIPLIER,
    Endpoint,
)
from airflow_provider_coinstats.sandbox import data
from airflow_provider_coinstats.sandbox.config import SHARE_PLAN
from airflow_provider_coinstats.sandbox.state import (
    Account,
    SandboxState,
    _Portfolio,
    passcode_matches,
    secret_hash,
)

DEFAULT_LIMIT = 20
EXCHANGE_EXPIRED_MESSAGE = "Exchange credentials expired"
#: A connectionFields.apiKey with this value makes the "exchange" reject the credentials.
EXPIRED_EXCHANGE_KEY = "expired"
#: The docs' wording for share-token reads on another plan.
SHARE_PLAN_MESSAGE = (
    f"Forbidden resource: reading a portfolio by shareToken is only available for users with a {SHARE_PLAN} plan"
    " subscription"
)
INVALID_SHARE_TOKEN_MESSAGE = "Invalid share token"
INVALID_PASSCODE_MESSAGE = "Invalid passcode"
BOTH_SELECTORS_MESSAGE = "Pass either portfolioId or a share token, not both"


@dataclass(frozen=True)
class ShareSelector:
    """A share token and passcode taken from a request (kept out of ``repr``: both are secrets)."""

    token: str = field(repr=False)
    passcode: str | None = field(repr=False)


def share_selector(query: Mapping[str, str], headers: Mapping[str, str]) -> ShareSelector | None:
    """The share token (+ passcode) of a request in any documented spelling, or None."""
    token = headers.get("sharetoken") or query.get("shareToken") or query.get("sharetoken")
    if not token:
        return None
    return ShareSelector(token, headers.get("passcode") or query.get("passcode") or None)


def log_label(
    state: SandboxState, query: Mapping[str, str], headers: Mapping[str, str], path_id: str | None
) -> str | None:
    """What the request log names as the portfolio: its id, ``shared:<label>`` or None; never a token."""
    portfolio_id = path_id or query.get("portfolioId")
    if portfolio_id:
        return portfolio_id
    share = share_selector(query, headers)
    return state.share_label(share.token) if share is not None else None


class ApiError(Exception):
    """An error answered with the CoinStats envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def envelope(status: int, message: str, path: str) -> dict[str, Any]:
    """The CoinStats error body: ``{statusCode, message, requestId, path}``."""
    return {"statusCode": status, "message": message, "requestId": str(uuid.uuid4()), "path": path}


@dataclass(frozen=True)
class Call:
    """The parts of an HTTP request the handlers need."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    path_params: Mapping[str, str] = field(default_factory=dict)

    @property
    def share(self) -> ShareSelector | None:
        return share_selector(self.query, self.headers)


@dataclass(frozen=True)
class Outcome:
    status: int
    payload: Any
    credits: int = 0
    portfolio_id: str | None = None


@dataclass
class _Parsed:
    portfolio_id: str | None = None
    cost: int | None = None  # None = the catalog price
    params: dict[str, Any] = field(default_factory=dict)
    created_id: str | None = None  # set by connect actions, for the request log
    share: ShareSelector | None = None  # set instead of portfolio_id for a shared portfolio


_Action = Callable[[Account, _Parsed, _Portfolio | None, bool], Callable[[], Any]]


def execute(state: SandboxState, endpoint: Endpoint, call: Call) -> Outcome:
    """Run one API request against the state and say what to answer."""
    portfolio_id = log_label(state, call.query, call.headers, call.path_params.get("portfolioId"))
    try:
        api_key = authenticate(state, call.headers)
        parsed = _PARSERS[endpoint.name](call)
        with state.account(api_key) as account:
            if parsed.share is not None and account.plan() != SHARE_PLAN:
                raise ApiError(403, SHARE_PLAN_MESSAGE)
            cost = endpoint.credits if parsed.cost is None else parsed.cost
            if account.remaining() < cost:
                raise ApiError(406, CREDITS_EXHAUSTED_MESSAGE)
            portfolio = None
            syncing = False
            if parsed.share is not None:
                portfolio = _find_shared(account, parsed.share)
            elif parsed.portfolio_id is not None:
                portfolio = account.find(parsed.portfolio_id)
                if portfolio is None:
                    raise ApiError(404, "Portfolio not found")
            if portfolio is not None and (endpoint.waits_for_sync or endpoint.name == "portfolio_status"):
                syncing = account.poll(portfolio)
                if syncing and endpoint.waits_for_sync:
                    raise ApiError(409, NOT_SYNCED_MESSAGE)
            produce = _ACTIONS[endpoint.name](account, parsed, portfolio, syncing)
            account.charge(cost)
            portfolio_id = parsed.created_id or portfolio_id
        # Data generation is pure, so it runs after the lock is released.
        return Outcome(200, produce(), cost, portfolio_id)
    except ApiError as error:
        return Outcome(error.status, envelope(error.status, error.message, call.path), 0, portfolio_id)


def _find_shared(account: Account, share: ShareSelector) -> _Portfolio:
    found = account.find_shared(share.token)
    if found is None:
        raise ApiError(403, INVALID_SHARE_TOKEN_MESSAGE)
    portfolio, passcode_hash = found
    if not passcode_matches(passcode_hash, share.passcode):
        raise ApiError(403, INVALID_PASSCODE_MESSAGE)
    return portfolio


def authenticate(state: SandboxState, headers: Mapping[str, str]) -> str:
    key = headers.get("x-api-key")
    if not key:
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    if not key or not state.is_valid_key(key):
        raise ApiError(401, INVALID_KEY_MESSAGE)
    return key


# --------------------------------------------------------------------------- validation helpers


def _portfolio_id(query: Mapping[str, str]) -> str:
    value = query.get("portfolioId")
    if not value:
        raise ApiError(400, "portfolioId is required")
    return value


def _read_selector(call: Call) -> tuple[str | None, ShareSelector | None]:
    """A data read's portfolio: ``(portfolioId, None)`` or ``(None, share)``; 400 for none or both."""
    share = call.share
    if share is None:
        return _portfolio_id(call.query), None
    if call.query.get("portfolioId"):
        raise ApiError(400, BOTH_SELECTORS_MESSAGE)
    return None, share


def _int(query: Mapping[str, str], name: str, default: int, lo: int, hi: int | None = None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ApiError(400, f"{name} must be an integer {bound}")
    return value


def _page(query: Mapping[str, str]) -> tuple[int, int]:
    return _int(query, "page", 1, 1), _int(query, "limit", DEFAULT_LIMIT, 1, MAX_PAGE_LIMIT)


def _currency(query: Mapping[str, str], required: bool = False) -> str:
    raw = query.get("currency")
    if not raw:
        if required:
            raise ApiError(400, "currency is required")
        return "USD"
    currency = raw.upper()
    if currency not in data.FX:
        raise ApiError(400, f"currency must be one of {', '.join(data.FX)}")
    return currency


def _bool(query: Mapping[str, str], name: str) -> bool:
    raw = (query.get(name) or "false").lower()
    if raw not in ("true", "false"):
        raise ApiError(400, f"{name} must be true or false")
    return raw == "true"


def _choice(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = query.get(name)
    if not value:
        raise ApiError(400, f"{name} is required")
    if value not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}")
    return value


_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _moment_ms(raw: str, name: str) -> int:
    """Epoch milliseconds, YYYY-MM-DD or ISO-8601 (naive means UTC) -> epoch ms."""
    if raw.isdigit():
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO-8601 date or datetime") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _day(raw: str, name: str) -> date:
    try:
        if not _DAY_RE.match(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a date in YYYY-MM-DD format") from None


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Request body must be valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return value


def _unknown_properties(body: Mapping[str, Any], allowed: tuple[str, ...]) -> list[str]:
    return [f"property {name} should not exist" for name in body if name not in allowed]


def _required_string(body: Mapping[str, Any], name: str, errors: list[str]) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        errors.append(f"{name} should not be empty")
        return None
    if not isinstance(value, str):
        errors.append(f"{name} must be a string")
        return None
    if not value.strip():
        errors.append(f"{name} should not be empty")
        return None
    return value


def _optional_name(body: Mapping[str, Any], errors: list[str]) -> str | None:
    if "name" not in body:
        return None
    value = body["name"]
    # An explicit null is rejected like any other non-string, as class-validator does.
    if not isinstance(value, str):
        errors.append("name must be a string")
        return None
    return value or None


def _fail(errors: list[str]) -> None:
    if errors:
        raise ApiError(400, "; ".join(errors))


# --------------------------------------------------------------------------- parsers (validation only)


def _parse_none(call: Call) -> _Parsed:
    return _Parsed()


def _parse_connect_wallet(call: Call) -> _Parsed:
    body = _json_object(call.body)
    errors = _unknown_properties(body, ("address", "connectionId", "name"))
    address = _required_string(body, "address", errors)
    connection_id = _required_string(body, "connectionId", errors)
    if connection_id is not None and connection_id not in data.CHAINS:
        errors.append(
            f"connectionId {connection_id} is not supported; GET /wallet/blockchains lists supported networks"
        )
    name = _optional_name(body, errors)
    _fail(errors)
    assert address is not None and connection_id is not None
    # EVM addresses are case-insensitive (EIP-55 casing is only a checksum); others are not.
    identity = address.lower() if data.is_evm(connection_id) and address.startswith("0x") else address
    return _Parsed(params={"connection_id": connection_id, "identity": identity, "name": name, "address": address})


def _parse_connect_exchange(call: Call) -> _Parsed:
    body = _json_object(call.body)
    errors = _unknown_properties(body, ("connectionId", "connectionFields", "name"))
    connection_id = _required_string(body, "connectionId", errors)
    exchange = data.EXCHANGES.get(connection_id) if connection_id is not None else None
    if connection_id is not None and exchange is None:
        errors.append(f"connectionId {connection_id} is not supported; GET /exchange/support lists supported exchanges")
    fields = body.get("connectionFields")
    if fields is None or fields == {}:
        errors.append("connectionFields should not be empty")
        fields = {}
    elif not isinstance(fields, dict):
        errors.append("connectionFields must be an object")
        fields = {}
    if exchange is not None and isinstance(fields, dict) and fields:
        expected = [key for _, key in exchange.fields]
        for key in expected:
            value = fields.get(key)
            if value is None or value == "":
                errors.append(f"connectionFields.{key} is required for {exchange.name}")
            elif not isinstance(value, str) or not value.strip():
                errors.append(f"connectionFields.{key} must be a non-empty string")
        errors.extend(
            f"connectionFields.{key} is not a connection field of {exchange.name}"
            for key in fields
            if key not in expected
        )
    name = _optional_name(body, errors)
    _fail(errors)
    assert connection_id is not None
    api_key_value = str(fields["apiKey"])
    # Only a hash of the exchange key is kept: it identifies "the same account" for "existing".
    return _Parsed(
        params={
            "connection_id": connection_id,
            "identity": secret_hash(api_key_value),
            "expired": api_key_value == EXPIRED_EXCHANGE_KEY,
            "name": name,
        }
    )


def _parse_with_portfolio(call: Call) -> _Parsed:
    return _Parsed(portfolio_id=_portfolio_id(call.query))


def _parse_sync(call: Call) -> _Parsed:
    if "portfolioId" not in call.query:
        # Syncing every API portfolio of the account is billed at a multiple of one sync.
        return _Parsed(cost=ENDPOINTS["portfolio_sync"].credits * SYNC_ALL_MULTIPLIER)
    return _Parsed(portfolio_id=_portfolio_id(call.query))


def _parse_delete(call: Call) -> _Parsed:
    return _Parsed(portfolio_id=call.path_params["portfolioId"])


def _parse_defi(call: Call) -> _Parsed:
    pid, share = _read_selector(call)
    return _Parsed(portfolio_id=pid, share=share)


def _parse_value(call: Call) -> _Parsed:
    pid, share = _read_selector(call)
    return _Parsed(portfolio_id=pid, share=share, params={"currency": _currency(call.query)})


def _parse_coins(call: Call) -> _Parsed:
    pid, share = _read_selector(call)
    page, limit = _page(call.query)
    risk = _bool(call.query, "includeRiskScore")
    return _Parsed(portfolio_id=pid, share=share, params={"page": page, "limit": limit, "risk": risk})


def _parse_chart(call: Call) -> _Parsed:
    pid, share = _read_selector(call)
    return _Parsed(portfolio_id=pid, share=share, params={"type": _choice(call.query, "type", CHART_TYPES)})


def _parse_transactions(call: Call) -> _Parsed:
    q = call.query
    pid, share = _read_selector(call)
    currency = _currency(q, required=True)
    page, limit = _page(q)
    from_ms = _moment_ms(q["from"], "from") if q.get("from") else None
    to_ms = _moment_ms(q["to"], "to") if q.get("to") else None
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise ApiError(400, "from must not be after to")
    params = {
        "currency": currency,
        "page": page,
        "limit": limit,
        "coin_id": q.get("coinId") or None,
        "from_ms": from_ms,
        "to_ms": to_ms,
    }
    return _Parsed(portfolio_id=pid, share=share, params=params)


def _parse_snapshot(call: Call) -> _Parsed:
    q = call.query
    pid, share = _read_selector(call)
    page, limit = _page(q)
    first, last = data.snapshot_default_range()
    if q.get("from") and q.get("to"):
        first, last = _day(q["from"], "from"), _day(q["to"], "to")
    elif q.get("from"):
        first = _day(q["from"], "from")
    elif q.get("to"):
        last = _day(q["to"], "to")
        first = last - timedelta(days=29)
    if first > last:
        raise ApiError(400, "from must not be after to")
    coin_ids = frozenset(c for c in (q.get("coinIds") or "").split(",") if c.strip()) or None
    params = {"page": page, "limit": limit, "first": first, "last": last, "coin_ids": coin_ids}
    return _Parsed(portfolio_id=pid, share=share, params=params)


def _parse_pl_history(call: Call) -> _Parsed:
    q = call.query
    pid, share = _read_selector(call)
    interval = _choice(q, "interval", PL_INTERVALS)
    currency = _currency(q)
    range_, raw_from, raw_to = q.get("range"), q.get("from"), q.get("to")
    if range_ and (raw_from or raw_to):
        raise ApiError(400, "Use either range or from and to, not both")
    if range_:
        range_ = _choice(q, "range", PL_RANGES)
        span = data.PL_RANGE_SPANS[range_]
        start, end, include_end = data.AS_OF_MS - span, data.AS_OF_MS, True
    elif raw_from and raw_to:
        start, end, include_end = _moment_ms(raw_from, "from"), _moment_ms(raw_to, "to"), False
        if start >= end:
            raise ApiError(400, "from must be before to")
    elif raw_from or raw_to:
        raise ApiError(400, "from and to must be given together")
    else:
        raise ApiError(400, "range or from and to is required")
    if interval == "hourly" and end - start > data.DAY_MS:
        raise ApiError(400, "hourly interval is only available for ranges up to 24h")
    points = data.pl_points(interval, start, end, include_end)
    if len(points) > data.MAX_PL_POINTS:
        raise ApiError(400, f"Too many points (max {data.MAX_PL_POINTS}); use a coarser interval")
    return _Parsed(portfolio_id=pid, share=share, params={"points": points, "currency": currency})


_PARSERS: dict[str, Callable[[Call], _Parsed]] = {
    "connect_wallet": _parse_connect_wallet,
    "connect_exchange": _parse_connect_exchange,
    "list_portfolios": _parse_none,
    "portfolio_status": _parse_with_portfolio,
    "portfolio_sync": _parse_sync,
    "delete_portfolio": _parse_delete,
    "portfolio_value": _parse_value,
    "portfolio_coins": _parse_coins,
    "portfolio_chart": _parse_chart,
    "portfolio_transactions": _parse_transactions,
    "portfolio_defi": _parse_defi,
    "portfolio_snapshot_items": _parse_snapshot,
    "portfolio_pl_history": _parse_pl_history,
    "wallet_blockchains": _parse_none,
    "exchange_support": _parse_none,
    "usage_credits": _parse_none,
}


# --------------------------------------------------------------------------- actions (state held)


def _const(value: Any) -> Callable[[], Any]:
    return lambda: value


def _connect(kind: str) -> _Action:
    def action(account: Account, parsed: _Parsed, _p: _Portfolio | None, _s: bool) -> Callable[[], Any]:
        params = parsed.params
        if params.get("expired"):
            # The CoinStats key is fine; the exchange rejected its credentials (pass-through 401).
            raise ApiError(401, EXCHANGE_EXPIRED_MESSAGE)
        portfolio, created = account.connect(
            kind, params["connection_id"], params["identity"], params["name"], params.get("address")
        )
        parsed.created_id = portfolio.portfolio_id
        return _const(
            {
                "portfolioId": portfolio.portfolio_id,
                "connectionId": portfolio.connection_id,
                "status": "connected" if created else "existing",
            }
        )

    return action


def _list(account: Account, _q: _Parsed, _p: _Portfolio | None, _s: bool) -> Callable[[], Any]:
    rows = [{"portfolioId": p.portfolio_id, "portfolioName": p.name, "portfolioType": p.kind} for p in account.owned()]
    return _const({"result": rows})


def _status(_a: Account, _q: _Parsed, _p: _Portfolio | None, syncing: bool) -> Callable[[], Any]:
    return _const({"status": "syncing" if syncing else "synced"})


def _sync(account: Account, parsed: _Parsed, portfolio: _Portfolio | None, _s: bool) -> Callable[[], Any]:
    account.resync(account.owned() if portfolio is None else [portfolio])
    return _const({"success": True})


def _delete(account: Account, _q: _Parsed, portfolio: _Portfolio | None, _s: bool) -> Callable[[], Any]:
    assert portfolio is not None
    account.delete(portfolio)
    return _const({"message": "Portfolio deleted successfully"})


def _reader(
    build: Callable[[data.PortfolioProfile, dict[str, Any]], Any],
) -> _Action:
    def action(account: Account, parsed: _Parsed, portfolio: _Portfolio | None, _s: bool) -> Callable[[], Any]:
        assert portfolio is not None
        profile = account.profile(portfolio)  # snapshot under the lock; generation happens later
        return lambda: build(profile, parsed.params)

    return action


def _usage(account: Account, _q: _Parsed, _p: _Portfolio | None, _s: bool) -> Callable[[], Any]:
    return _const(account.usage())


_ACTIONS: dict[str, _Action] = {
    "connect_wallet": _connect("wallet"),
    "connect_exchange": _connect("exchange"),
    "list_portfolios": _list,
    "portfolio_status": _status,
    "portfolio_sync": _sync,
    "delete_portfolio": _delete,
    "portfolio_value": _reader(lambda p, a: data.portfolio_value(p, a["currency"])),
    "portfolio_coins": _reader(lambda p, a: {"result": data.portfolio_coins(p, a["page"], a["limit"], a["risk"])}),
    "portfolio_chart": _reader(lambda p, a: {"result": data.portfolio_chart(p, a["type"])}),
    "portfolio_transactions": _reader(
        lambda p, a: {
            "data": data.transactions_page(
                p, a["currency"], a["page"], a["limit"], a["coin_id"], a["from_ms"], a["to_ms"]
            ),
            "meta": {"page": a["page"], "limit": a["limit"]},
        }
    ),
    "portfolio_defi": _reader(lambda p, a: data.portfolio_defi(p)),
    "portfolio_snapshot_items": _reader(
        lambda p, a: {"result": data.snapshot_items(p, a["page"], a["limit"], a["first"], a["last"], a["coin_ids"])}
    ),
    "portfolio_pl_history": _reader(lambda p, a: {"result": data.pl_history(p, a["points"], a["currency"])}),
    "wallet_blockchains": lambda *_: _const(data.blockchains()),
    "exchange_support": lambda *_: _const(data.exchanges()),
    "usage_credits": _usage,
}
