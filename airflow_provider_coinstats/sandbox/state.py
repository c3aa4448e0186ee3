"""Everything the sandbox remembers: portfolios, per-key credit ledgers, the request log, faults.

All access goes through one ``threading.Lock`` because tests poke the state from their own
thread while the server's event loop thread serves requests. The lock is never held across an
``await``: the HTTP layer only calls the synchronous methods here.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

from airflow_provider_coinstats.sandbox import data
from airflow_provider_coinstats.sandbox.config import CONFIG_FIELDS, SandboxConfig, key_label
from airflow_provider_coinstats.sandbox.faults import Fault, FaultQueue

#: The log is a ring buffer so a long-running demo sandbox cannot grow without bound.
MAX_LOGGED_REQUESTS: Final = 100_000

#: Query parameters whose values are secrets; the log keeps the name but never the value.
_SECRET_PARAMS: Final = frozenset({"passcode", "sharetoken", "apikey", "api_key", "x-api-key", "token", "key"})


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the sandbox saw it. Never holds headers, bodies, keys or credentials.

    ``status`` is ``None`` when the connection was dropped; ``credits`` is what was charged;
    ``fault`` names the fault kind applied, if any.

    Example::

        [r.status for r in state.requests("portfolio_coins")]  # -> [409, 409, 200]
    """

    seq: int
    at: float
    method: str
    path: str
    endpoint: str | None
    query: dict[str, str]
    status: int | None
    credits: int
    fault: str | None
    portfolio_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fingerprint(api_key: str) -> str:
    """Stable non-reversible owner id for an API key (portfolios are stored under this)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def secret_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


#: Owner of the portfolios a user keeps in the CoinStats app: no API key owns them.
APP_OWNER_PREFIX: Final = "app:"
#: ``RequestRecord.portfolio_id`` of a read with a share token the sandbox does not know.
UNKNOWN_SHARE_LABEL: Final = "shared:unknown"
_LABEL_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class SharedPortfolio:
    """A portfolio a user tracks in the CoinStats app, shared by link: what to read it with.

    ``passcode`` is ``None`` for a share without passcode. ``label`` is what the request log
    shows (``portfolio_id == "shared:<label>"``) instead of the token. The token and passcode are
    kept out of ``repr`` so a failing assertion does not print them.

    Example::

        share = state.create_shared("alice", transactions=30)
        requests.get(f"{url}/portfolio/coins", headers={"X-API-KEY": key, **share.headers()})
    """

    share_token: str = field(repr=False)
    passcode: str | None = field(repr=False)
    portfolio_id: str
    label: str

    def headers(self) -> dict[str, str]:
        """The documented request headers (``sharetoken``, ``passcode``) for this share."""
        out = {"sharetoken": self.share_token}
        if self.passcode is not None:
            out["passcode"] = self.passcode
        return out

    def to_dict(self) -> dict[str, Any]:
        """The admin API's answer: ``{shareToken, passcode, portfolioId, label}``."""
        return {
            "shareToken": self.share_token,
            "passcode": self.passcode,
            "portfolioId": self.portfolio_id,
            "label": self.label,
        }


@dataclass(frozen=True)
class _Share:
    portfolio_id: str
    label: str
    passcode_hash: str | None  # only hashes are kept, like exchange keys


@dataclass
class _Portfolio:
    portfolio_id: str
    owner: str  # account id (a key fingerprint, see SandboxState.account_id), never the key
    kind: str
    connection_id: str
    name: str
    address: str | None  # wallet address (public data); exchanges keep nothing but hashes
    polls_left: int
    sync_until: float  # time.monotonic() deadline; inf = never
    transaction_count: int | None = None  # per-portfolio override of the base history's size
    appended: int = 0  # newer transactions added on top of the base history

    def syncing(self) -> bool:
        return self.polls_left > 0 or time.monotonic() < self.sync_until

    def summary(self) -> dict[str, Any]:
        return {
            "portfolioId": self.portfolio_id,
            "portfolioName": self.name,
            "portfolioType": self.kind,
            "connectionId": self.connection_id,
            "status": "syncing" if self.syncing() else "synced",
        }


class Account:
    """One API key's view of the state, valid only inside ``with state.account(key) as acct``.

    Every method assumes the state lock is held, which ``SandboxState.account`` guarantees; this
    is what makes "check credits, look up, mutate, charge" atomic for a request.
    """

    def __init__(self, state: SandboxState, api_key: str) -> None:
        self._state = state
        self._key = api_key
        self._owner = state.account_id(api_key)

    def remaining(self) -> int:
        total = self._state.config.api_keys.get(self._key, 0)
        return max(0, total - self._state._used.get(self._key, 0))

    def charge(self, credits: int) -> None:
        self._state._used[self._key] = self._state._used.get(self._key, 0) + credits

    def usage(self) -> dict[str, Any]:
        total = self._state.config.api_keys.get(self._key, 0)
        used = self._state._used.get(self._key, 0)
        return {
            "totalCredits": total,
            "usedCredits": used,
            "remainingCredits": max(0, total - used),
            "subscription": self.plan(),
        }

    def find(self, portfolio_id: str) -> _Portfolio | None:
        portfolio = self._state._portfolios.get(portfolio_id)
        # Another key's portfolio is indistinguishable from a missing one, as in the real API.
        if portfolio is None or portfolio.owner != self._owner:
            return None
        return portfolio

    def owned(self) -> list[_Portfolio]:
        return [p for p in self._state._portfolios.values() if p.owner == self._owner]

    def poll(self, portfolio: _Portfolio) -> bool:
        """Count one poll of a syncing portfolio; True while it is still syncing."""
        if not portfolio.syncing():
            return False
        portfolio.polls_left = max(0, portfolio.polls_left - 1)
        return True

    def connect(
        self, kind: str, connection_id: str, identity: str, name: str | None, address: str | None
    ) -> tuple[_Portfolio, bool]:
        """Create the portfolio, or return the existing one untouched; True when created."""
        raw = f"{self._owner}|{kind}|{connection_id}|{identity}"
        portfolio_id = hashlib.sha256(raw.encode()).hexdigest()[:24]
        existing = self._state._portfolios.get(portfolio_id)
        if existing is not None:
            return existing, False
        config = self._state.config
        portfolio = _Portfolio(
            portfolio_id=portfolio_id,
            owner=self._owner,
            kind=kind,
            connection_id=connection_id,
            name=name or data.default_name(kind, connection_id, address),
            address=address,
            polls_left=0,
            sync_until=0.0,
        )
        _start_sync(portfolio, config.sync_polls, config.sync_seconds)
        self._state._portfolios[portfolio_id] = portfolio
        return portfolio, True

    def resync(self, portfolios: list[_Portfolio]) -> None:
        config = self._state.config
        for portfolio in portfolios:
            _start_sync(portfolio, config.sync_polls, config.sync_seconds)

    def delete(self, portfolio: _Portfolio) -> None:
        self._state._portfolios.pop(portfolio.portfolio_id, None)

    def profile(self, portfolio: _Portfolio) -> data.PortfolioProfile:
        return self._state._profile(portfolio)

    def plan(self) -> str:
        return self._state.config.plan(self._key)

    def find_shared(self, share_token: str) -> tuple[_Portfolio, str | None] | None:
        """The shared portfolio and its passcode hash (None = no passcode), or None if unknown.

        Any key may read a share (the share link is the permission); the plan check is the caller's.
        """
        share = self._state._shares.get(secret_hash(share_token))
        portfolio = self._state._portfolios.get(share.portfolio_id) if share is not None else None
        if share is None or portfolio is None:
            return None
        return portfolio, share.passcode_hash


def passcode_matches(expected_hash: str | None, given: str | None) -> bool:
    """True when a share needs no passcode or ``given`` is its passcode (constant-time compare)."""
    if expected_hash is None:
        return True
    return given is not None and hmac.compare_digest(expected_hash, secret_hash(given))


def _start_sync(portfolio: _Portfolio, polls: int, seconds: float) -> None:
    portfolio.polls_left = polls
    portfolio.sync_until = math.inf if math.isinf(seconds) else time.monotonic() + seconds


class SandboxState:
    """Thread-safe state of one sandbox; tests drive it directly, other processes via ``/_sandbox/``.

    Example::

        state = server.state
        state.configure(sync_polls=0, latency=0.01)
        state.add_fault(Fault("status", endpoint="portfolio_coins", status=503, times=1))
        ...
        assert state.credits_used() == 40 + 8
        assert [r.status for r in state.requests("portfolio_coins")] == [503, 200]
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self._initial = copy.deepcopy(config) if config is not None else SandboxConfig()
        self._lock = threading.Lock()
        self.config = copy.deepcopy(self._initial)
        self._portfolios: dict[str, _Portfolio] = {}
        self._used: dict[str, int] = {}
        self._log: deque[RequestRecord] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self._seq = 0
        self._faults = FaultQueue(self.config.seed)
        self._generation = 0
        #: key -> account id, for keys that are not their account's first (see rotate_key).
        self._account_ids: dict[str, str] = {}
        #: secret_hash(share token) -> share; the tokens themselves are not kept.
        self._shares: dict[str, _Share] = {}

    @property
    def generation(self) -> int:
        """Bumped by :meth:`reset`; a request that began in an older generation must not touch state."""
        return self._generation

    # ------------------------------------------------------------------ control

    def reset(self) -> None:
        """Forget portfolios, credits used, the request log and faults; restore the start-up config."""
        with self._lock:
            self.config = copy.deepcopy(self._initial)
            self._portfolios.clear()
            self._used.clear()
            self._account_ids.clear()
            self._shares.clear()
            self._log.clear()
            self._seq = 0
            self._faults.clear(seed=self.config.seed)
            self._generation += 1

    def configure(self, **changes: Any) -> None:
        """Change config fields at run time, e.g. ``configure(sync_polls=0, latency=0.1)``.

        Applies to later requests; portfolios already syncing keep their current sync plan
        (use :meth:`set_sync` to change one).
        """
        unknown = set(changes) - set(CONFIG_FIELDS)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        for name in ("api_keys", "plans"):
            if name in changes and isinstance(changes[name], dict):
                changes[name] = dict(changes[name])
        with self._lock:
            new = replace(self.config, **changes)  # validates in __post_init__
            if new.seed != self.config.seed:
                self._faults.clear(seed=new.seed)
            self.config = new

    def add_fault(self, fault: Fault) -> None:
        if not isinstance(fault, Fault):
            raise TypeError("add_fault takes a Fault")
        with self._lock:
            self._faults.add(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[Fault]:
        """Faults still active, in match order."""
        with self._lock:
            return self._faults.active()

    def take_fault(self, endpoint: str, path: str) -> Fault | None:
        """The fault to apply to this request, if any (consumes one use of a ``times`` fault)."""
        with self._lock:
            return self._faults.take(endpoint, path)

    # ------------------------------------------------------------------ request log

    def record(
        self,
        *,
        method: str,
        path: str,
        endpoint: str | None,
        query: dict[str, str],
        status: int | None,
        credits: int = 0,
        fault: str | None = None,
        portfolio_id: str | None = None,
    ) -> RequestRecord:
        safe_query = {k: ("***" if k.lower() in _SECRET_PARAMS else v) for k, v in query.items()}
        with self._lock:
            self._seq += 1
            entry = RequestRecord(
                seq=self._seq,
                at=time.monotonic(),
                method=method,
                path=path,
                endpoint=endpoint,
                query=safe_query,
                status=status,
                credits=credits,
                fault=fault,
                portfolio_id=portfolio_id,
            )
            self._log.append(entry)
            return entry

    def requests(self, endpoint: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Logged API requests, oldest first; filter by catalog name and/or path (exact or glob)."""
        with self._lock:
            entries = list(self._log)
        if endpoint is not None:
            entries = [r for r in entries if r.endpoint == endpoint]
        if path is not None:
            entries = [r for r in entries if r.path == path or fnmatch.fnmatchcase(r.path, path)]
        return entries

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------------ credits

    def is_valid_key(self, api_key: str) -> bool:
        return api_key in self.config.api_keys

    def credits_used(self, api_key: str | None = None) -> int:
        """Credits charged so far to ``api_key`` (default: the first configured key)."""
        with self._lock:
            key = api_key if api_key is not None else self.config.first_key
            return self._used.get(key, 0)

    def set_credits(self, api_key: str, total: int) -> None:
        """Set a key's total credits; an unknown key is added (and accepted from then on)."""
        with self._lock:
            keys = dict(self.config.api_keys)
            keys[api_key] = total
            self.config = replace(self.config, api_keys=keys)

    def credits_report(self) -> dict[str, dict[str, int]]:
        """Per-key usage labelled "key-1", "key-2"... (the admin API never reveals keys)."""
        with self._lock:
            report = {}
            for index, (key, total) in enumerate(self.config.api_keys.items()):
                used = self._used.get(key, 0)
                report[key_label(index)] = {"used": used, "total": total, "remaining": max(0, total - used)}
            return report

    def account_id(self, api_key: str) -> str:
        """Who owns what ``api_key`` can see: the fingerprint of the account's first key.

        Portfolio ids are derived from it too, so after :meth:`rotate_key` the new key connecting
        the same wallet gets ``existing`` with the same id, as with the real API.
        """
        return self._account_ids.get(api_key) or fingerprint(api_key)

    def rotate_key(self, old: str, new: str) -> str:
        """Replace API key ``old`` by ``new``, as a user rotating the key in the CoinStats dashboard.

        ``new`` takes over ``old``'s credit ledger (total and used) and portfolios; ``old`` answers
        401 from then on (re-adding it later makes a fresh, empty account). Returns the key's
        label ("key-1", ...), which stays the same. Errors never name a key.

        Example::

            state.rotate_key("sandbox-api-key", "rotated-key")
        """
        if not isinstance(new, str) or not new:
            raise ValueError("new must be a non-empty string")
        with self._lock:
            keys = self.config.api_keys
            if not isinstance(old, str) or old not in keys:
                raise KeyError("old is not a configured API key")
            if new in keys:
                raise ValueError("new is already a configured API key")
            owner = self.account_id(old)
            # Same position in the dict, so the key keeps its label in the admin API.
            rotated = {new if key == old else key: total for key, total in keys.items()}
            self.config = replace(self.config, api_keys=rotated)
            self._used[new] = self._used.pop(old, 0)
            plans = dict(self.config.plans)
            if old in plans:
                plans[new] = plans.pop(old)
                self.config = replace(self.config, plans=plans)
            self._account_ids[new] = owner
            # Not the old fingerprint: a re-added old key must not see the account's portfolios.
            self._account_ids[old] = f"retired-{secret_hash(old + owner)[:16]}"
            return key_label(list(rotated).index(new))

    @contextmanager
    def account(self, api_key: str) -> Iterator[Account]:
        """Hold the lock and give one key's view of the state (used by the request handlers)."""
        with self._lock:
            yield Account(self, api_key)

    # ------------------------------------------------------------------ portfolios

    def portfolios(self, api_key: str | None = None) -> list[dict[str, Any]]:
        """Portfolios of ``api_key``, or of every key when None.

        Each is ``{portfolioId, portfolioName, portfolioType, connectionId, status}``; reading
        ``status`` here does not count as a poll.
        """
        with self._lock:
            owner = self.account_id(api_key) if api_key is not None else None
            return [p.summary() for p in self._portfolios.values() if owner is None or p.owner == owner]

    def portfolio_owner_labels(self) -> dict[str, str]:
        """portfolioId -> key label, for the admin API."""
        with self._lock:
            labels = {self.account_id(k): key_label(i) for i, k in enumerate(self.config.api_keys)}
            return {
                pid: "app" if p.owner.startswith(APP_OWNER_PREFIX) else labels.get(p.owner, "unknown-key")
                for pid, p in self._portfolios.items()
            }

    def create_shared(
        self,
        label: str | None = None,
        *,
        transactions: int | None = None,
        passcode: bool | str = True,
        share_token: str | None = None,
    ) -> SharedPortfolio:
        """Add a portfolio a user already tracks in the CoinStats app, shared by token (+ passcode).

        No API key owns it: it is not in ``/portfolio/list`` and reads by ``portfolioId`` answer
        404; any key on the "Degen" plan reads it with the share token. Its data is deterministic
        fake data derived from ``label`` (default ``app-1``, ``app-2``...), like a wallet's. The
        app keeps it synced, so it starts synced; :meth:`set_sync`, :meth:`append_transactions`
        and :meth:`set_transaction_count` work on the returned ``portfolio_id`` as on any other.
        ``passcode``: True = a random 6-digit passcode, False = a share without passcode, a
        string = that passcode. ``share_token``: default random. ValueError for a label or token
        already in use.

        Example::

            share = state.create_shared("alice", transactions=30, passcode=False)
        """
        if transactions is not None:
            transactions = _non_negative_int(transactions, "transactions")
        if share_token is not None and (not isinstance(share_token, str) or not share_token.strip()):
            raise ValueError("share_token must be a non-empty string")
        if isinstance(passcode, str):
            if not passcode:
                raise ValueError("passcode must be a non-empty string, true or false")
            code: str | None = passcode
        elif isinstance(passcode, bool):
            code = f"{secrets.randbelow(10**6):06d}" if passcode else None
        else:
            raise ValueError("passcode must be a non-empty string, true or false")
        token = share_token or secrets.token_urlsafe(24)
        with self._lock:
            labels = {share.label for share in self._shares.values()}
            if label is None:
                label = next(f"app-{n}" for n in range(1, len(labels) + 2) if f"app-{n}" not in labels)
            if not isinstance(label, str) or not _LABEL_RE.match(label):
                raise ValueError("label must be 1-64 characters: letters, digits, '_', '.', '-'")
            if label in labels:
                raise ValueError(f"a shared portfolio labelled {label!r} exists")
            if secret_hash(token) in self._shares:
                raise ValueError("share_token is already in use")
            portfolio_id = hashlib.sha256(f"app|{label}".encode()).hexdigest()[:24]
            self._portfolios[portfolio_id] = _Portfolio(
                portfolio_id=portfolio_id,
                owner=APP_OWNER_PREFIX + label,
                kind="wallet",
                connection_id="ethereum",
                name=f"My portfolio ({label})",
                address="0x" + hashlib.sha256(f"address|{label}".encode()).hexdigest()[:40],
                polls_left=0,
                sync_until=0.0,
                transaction_count=transactions,
            )
            self._shares[secret_hash(token)] = _Share(
                portfolio_id, label, secret_hash(code) if code is not None else None
            )
        return SharedPortfolio(share_token=token, passcode=code, portfolio_id=portfolio_id, label=label)

    def shared(self) -> list[dict[str, Any]]:
        """Shared portfolios as ``{label, portfolioId, passcode: bool}`` (never a token or passcode)."""
        with self._lock:
            return [
                {"label": s.label, "portfolioId": s.portfolio_id, "passcode": s.passcode_hash is not None}
                for s in self._shares.values()
            ]

    def share_label(self, share_token: str) -> str:
        """What the request log says instead of ``share_token``: ``shared:<label>``."""
        with self._lock:
            share = self._shares.get(secret_hash(share_token))
        return f"shared:{share.label}" if share is not None else UNKNOWN_SHARE_LABEL

    def set_sync(self, portfolio_id: str, polls: int | None = None, seconds: float | None = None) -> None:
        """Put a portfolio (back) into syncing; None means the configured default."""
        with self._lock:
            portfolio = self._get(portfolio_id)
            _start_sync(
                portfolio,
                self.config.sync_polls if polls is None else _non_negative_int(polls, "polls"),
                self.config.sync_seconds if seconds is None else _non_negative(seconds, "seconds"),
            )

    def set_transaction_count(self, portfolio_id: str, count: int) -> None:
        """Give one portfolio ``count`` transactions (e.g. 100_000 for large-portfolio tests).

        This regenerates the whole history (dates are re-spaced to fit ``count``) and forgets any
        :meth:`append_transactions`, so the portfolio then lists exactly ``count``.
        """
        with self._lock:
            portfolio = self._get(portfolio_id)
            portfolio.transaction_count = _non_negative_int(count, "count")
            portfolio.appended = 0

    def append_transactions(self, portfolio_id: str, count: int) -> None:
        """Add ``count`` transactions newer than all existing ones; those stay exactly as they were.

        Models new activity between two incremental (watermark) loads: the listing gains ``count``
        rows at the top, every earlier row keeps its JSON and moves down. Appended dates lie in the
        hour before the data's fixed "now", 100 ms apart, so at most ``data.MAX_APPENDED`` fit per
        portfolio (ValueError beyond). Repeated calls accumulate; :meth:`set_transaction_count`
        and :meth:`reset` discard them. Changing ``transactions_per_portfolio`` still regenerates
        the base history of portfolios without their own count.
        """
        with self._lock:
            portfolio = self._get(portfolio_id)
            count = _non_negative_int(count, "count")
            if portfolio.appended + count > data.MAX_APPENDED:
                raise ValueError(
                    f"at most {data.MAX_APPENDED} transactions can be appended to a portfolio "
                    f"({portfolio.appended} already are)"
                )
            portfolio.appended += count

    def profile(self, portfolio_id: str) -> data.PortfolioProfile:
        """What the data generators see for a portfolio (handy for computing expected data)."""
        with self._lock:
            return self._profile(self._get(portfolio_id))

    def _get(self, portfolio_id: str) -> _Portfolio:
        try:
            return self._portfolios[portfolio_id]
        except KeyError:
            raise KeyError(f"unknown portfolio {portfolio_id!r}") from None

    def _profile(self, portfolio: _Portfolio) -> data.PortfolioProfile:
        count = portfolio.transaction_count
        base = self.config.transactions_per_portfolio if count is None else count
        return data.PortfolioProfile(
            seed=self.config.seed,
            portfolio_id=portfolio.portfolio_id,
            kind=portfolio.kind,
            connection_id=portfolio.connection_id,
            name=portfolio.name,
            transaction_count=base + portfolio.appended,
            address=portfolio.address,
            appended=portfolio.appended,
        )


def _non_negative_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def _non_negative(value: object, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0")
    return float(value)
