"""A portfolio the user already tracks in the CoinStats app, read by share token and passcode.

CoinStats reads such a portfolio when a request carries the share link's token and passcode in
the documented ``sharetoken`` / ``passcode`` headers (share-token reads need the key's plan to be
"Degen"). Both are secrets: whoever has them reads the portfolio. :class:`SharedPortfolio` keeps
them out of everything that gets printed or stored:

- ``repr``/``str`` show only :attr:`SharedPortfolio.public_id`;
- pickling raises, and Airflow's XCom serializer refuses the class (it is not a dataclass, so
  ``serde`` cannot turn it into a dict), so it never lands in XCom or a trigger row;
- the request builders put the two values in headers (never the URL, so never an access log or a
  request description) and in :attr:`ApiRequest.secrets`, which scrubs them from error texts.

The public id names the portfolio in rows (``portfolio_id``), asset URIs, XCom and logs. It is
the name the user gives (``name``, the connection extra ``portfolio_name``) or, without one,
``shared-`` plus the first 16 hex digits of HMAC-SHA256 over the token, keyed with the passcode:
stable for as long as the share link is, and it reveals neither value (the token is a long random
string, so the hash cannot be brute-forced from the id). A new share link (new token or passcode)
gives a new id; name the portfolio to keep rows and assets continuous across a re-share.

Example::

    share = SharedPortfolio("9f2c...token", "123456")
    share.public_id  # -> "shared-3b7c0e51d2a4f9e8"
    builders.portfolio_coins(share).headers  # -> {"sharetoken": "9f2c...", "passcode": "123456"}
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Final, NoReturn

from airflow_provider_coinstats.exceptions import CoinStatsValidationError

#: A name the user gives a shared portfolio: it ends up in asset URIs, file paths and table rows.
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

#: Prefix of a derived public id (``shared-<16 hex>``).
HASHED_ID_PREFIX: Final = "shared-"


def _text(field_name: str, value: object) -> str:
    # Never echo the value: it is a credential.
    if not isinstance(value, str) or not value.strip():
        raise CoinStatsValidationError(field_name, "must be a non-empty string")
    if value != value.strip() or any(c in value for c in "\r\n"):
        raise CoinStatsValidationError(field_name, "must not have surrounding whitespace or line breaks")
    return value


def validate_portfolio_name(value: object) -> str:
    """A user-given public id: 1-64 letters, digits, ``_``, ``.`` or ``-``, starting alphanumeric."""
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise CoinStatsValidationError(
            "portfolio_name",
            f"must be 1-64 letters, digits, '_', '.' or '-' starting with a letter or digit; got {value!r}",
        )
    return value


def hashed_public_id(share_token: str, passcode: str | None) -> str:
    """``shared-`` + 16 hex of HMAC-SHA256(key=passcode, msg=token): stable, reveals neither."""
    digest = hmac.new((passcode or "").encode(), share_token.encode(), hashlib.sha256).hexdigest()
    return HASHED_ID_PREFIX + digest[:16]


class SharedPortfolio:
    """What reads a shared portfolio: its share token, passcode (``None`` for a share without one)
    and the public id that names it everywhere else.

    Not a dataclass on purpose: Airflow's XCom serializer turns dataclasses into dicts, which
    would store the token; this class cannot be serialized or pickled at all.

    Example::

        share = SharedPortfolio(token, passcode, name="family-savings")
        hook.get_portfolio_coins(share)  # same hook method as for a portfolio id
        str(share)  # -> "family-savings"
    """

    __slots__ = ("_passcode", "_public_id", "_token")

    def __init__(self, share_token: str, passcode: str | None = None, *, name: str | None = None) -> None:
        self._token = _text("share_token", share_token)
        self._passcode = None if passcode is None or passcode == "" else _text("passcode", passcode)
        self._public_id = (
            validate_portfolio_name(name) if name is not None else hashed_public_id(self._token, self._passcode)
        )

    @property
    def share_token(self) -> str:
        return self._token

    @property
    def passcode(self) -> str | None:
        return self._passcode

    @property
    def public_id(self) -> str:
        """The id rows, asset names, XCom and logs use for this portfolio."""
        return self._public_id

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values no text may show (scrubbed from errors, registered with the masker)."""
        return (self._token,) if self._passcode is None else (self._token, self._passcode)

    def headers(self) -> dict[str, str]:
        """The documented request headers: ``sharetoken`` and, if set, ``passcode``."""
        out = {"sharetoken": self._token}
        if self._passcode is not None:
            out["passcode"] = self._passcode
        return out

    def __repr__(self) -> str:
        return f"SharedPortfolio({self._public_id!r})"

    def __str__(self) -> str:
        return self._public_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SharedPortfolio):
            return NotImplemented
        return (self._token, self._passcode, self._public_id) == (other._token, other._passcode, other._public_id)

    def __hash__(self) -> int:
        return hash((SharedPortfolio, self._public_id))

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            f"SharedPortfolio {self._public_id} holds a share token and passcode and is never pickled; "
            "pass its connection id (share_conn_id) or its public_id instead"
        )

    def __copy__(self) -> SharedPortfolio:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedPortfolio:
        return self


#: What every portfolio read takes: an API portfolio id, or a shared portfolio.
PortfolioRef = str | SharedPortfolio


def public_id_of(portfolio: object) -> str:
    """The id to name ``portfolio`` by in rows, logs and XCom (a portfolio id is its own)."""
    return portfolio.public_id if isinstance(portfolio, SharedPortfolio) else str(portfolio)


def exactly_one_portfolio(portfolio_id: Any, share_conn_id: object) -> tuple[Any, str | None]:
    """Check a task's ``portfolio_id`` / ``share_conn_id`` pair when the DAG is parsed: exactly one.

    ``share_conn_id`` must be a connection id string; ``portfolio_id`` (usually a template or an
    XCom reference) is checked when the task runs. Returns the pair, the one not given as None.
    """
    given = [name for name, value in (("portfolio_id", portfolio_id), ("share_conn_id", share_conn_id)) if value]
    if len(given) != 1:
        raise CoinStatsValidationError(
            "portfolio_id",
            "give exactly one of portfolio_id (a portfolio created through the API) and share_conn_id "
            f"(the connection holding a shared portfolio's token and passcode); got {'both' if given else 'neither'}",
        )
    if not share_conn_id:
        return portfolio_id, None
    if not isinstance(share_conn_id, str):
        raise CoinStatsValidationError("share_conn_id", f"must be a connection id, got {type(share_conn_id).__name__}")
    return None, share_conn_id.strip()
