"""How a CoinStats Airflow connection turns into request settings.

Kept apart from the hook so that the sync hook, the async (trigger) path and the sandbox helpers
read a connection the same way. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit

from airflow_provider_coinstats.api.catalog import BASE_URL
from airflow_provider_coinstats.api.connection_fields import FIELDS, ConnectionField
from airflow_provider_coinstats.exceptions import CoinStatsConfigError

AuthType = Literal["x-api-key", "bearer"]


def _declared_default(name: str) -> float:
    return float(cast(float, FIELDS[name].default))


DEFAULT_TIMEOUT: Final = _declared_default("timeout")
DEFAULT_MAX_ATTEMPTS: Final = int(_declared_default("max_attempts"))


@dataclass(frozen=True)
class RetrySettings:
    """Bounds of the retry policy; all in seconds except ``max_attempts``.

    Defaults are the connection fields' declared defaults.

    Example::

        RetrySettings(max_attempts=3, backoff_base=0.5)
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base: float = _declared_default("backoff_base")
    backoff_max: float = _declared_default("backoff_max")
    retry_after_max: float = _declared_default("retry_after_max")
    max_retry_time: float = _declared_default("max_retry_time")


@dataclass(frozen=True)
class ClientSettings:
    """Everything a transport needs to talk to CoinStats.

    ``api_key`` is kept out of ``repr`` so a settings object can be logged safely.

    Example::

        ClientSettings.from_connection(host="http://127.0.0.1:8765", password="k", extra={})
    """

    base_url: str
    api_key: str
    auth_type: AuthType = "x-api-key"
    timeout: float = DEFAULT_TIMEOUT
    retry: RetrySettings = RetrySettings()
    #: Web link to a portfolio with ``{portfolio_id}``; extra ``portfolio_url_template``.
    portfolio_url_template: str | None = None
    #: Most credits one task may spend through this connection; extra ``max_credits_per_task``.
    max_credits_per_task: int | None = None

    def __repr__(self) -> str:
        return (
            f"ClientSettings(base_url={self.base_url!r}, auth_type={self.auth_type!r}, "
            f"timeout={self.timeout!r}, retry={self.retry!r})"
        )

    def auth_headers(self) -> dict[str, str]:
        if self.auth_type == "bearer":
            return {"Authorization": f"Bearer {self.api_key}"}
        return {"X-API-KEY": self.api_key}

    @classmethod
    def from_connection(
        cls,
        *,
        host: str | None,
        password: str | None,
        extra: Mapping[str, Any] | None,
        schema: str | None = None,
        port: int | None = None,
        conn_id: str = "coinstats_default",
    ) -> ClientSettings:
        """Build settings from the fields of an Airflow Connection of type ``coinstats``."""
        if not password or not password.strip():
            raise CoinStatsConfigError(
                f"Connection {conn_id!r}: the API key (password field) is empty; "
                "put your CoinStats API key in the connection's password."
            )
        values = read_extras(extra, conn_id)
        retry = RetrySettings(
            max_attempts=values["max_attempts"],
            backoff_base=values["backoff_base"],
            backoff_max=values["backoff_max"],
            retry_after_max=values["retry_after_max"],
            max_retry_time=values["max_retry_time"],
        )
        return cls(
            base_url=resolve_base_url(host, schema=schema, port=port, conn_id=conn_id),
            api_key=password.strip(),
            auth_type="bearer" if values["auth_type"] == "bearer" else "x-api-key",
            timeout=values["timeout"],
            retry=retry,
            portfolio_url_template=values["portfolio_url_template"],
            max_credits_per_task=values["max_credits_per_task"],
        )


def settings_from_connection(conn: Any, conn_id: str) -> ClientSettings:
    """Settings from an Airflow ``Connection`` (sync or async lookup alike)."""
    return ClientSettings.from_connection(
        host=conn.host,
        password=conn.password,
        extra=normalize_extra(conn.extra_dejson),
        schema=conn.schema,
        port=conn.port,
        conn_id=conn_id,
    )


def normalize_extra(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Accept both plain extra keys and the ``extra__coinstats__<field>`` form older UIs store."""
    prefix = "extra__coinstats__"
    return {key.removeprefix(prefix): value for key, value in (extra or {}).items()}


def with_max_attempts(settings: ClientSettings, max_attempts: int | None) -> ClientSettings:
    """The same settings with a different attempt budget (sensors set it from their failure budget)."""
    if max_attempts is None:
        return settings
    return replace(settings, retry=replace(settings.retry, max_attempts=max_attempts))


def read_extras(extra: Mapping[str, Any] | None, conn_id: str) -> dict[str, Any]:
    """Every declared extra (:data:`~.connection_fields.FIELDS`), parsed; an undeclared key is refused.

    A misspelt key (``max_attemps``) would otherwise be ignored without a word, and the task would
    run with a retry budget nobody chose. Only the key is named in the error, never a value.

    Example::

        read_extras({"timeout": "2.5"}, "coinstats_default")["timeout"]  # -> 2.5
    """
    extra = extra or {}
    unknown = sorted(str(key) for key in extra if key not in FIELDS)
    if unknown:
        raise CoinStatsConfigError(
            f"Connection {conn_id!r}: unknown extra {', '.join(map(repr, unknown))}; "
            f"a coinstats connection reads only {', '.join(FIELDS)}"
        )
    values: dict[str, Any] = {}
    for name, field in FIELDS.items():
        try:
            values[name] = parse_extra(field, extra.get(name))
        except ValueError as err:
            raise CoinStatsConfigError(
                f"Connection {conn_id!r}: extra {name!r} {err}, got {extra.get(name)!r}"
            ) from None
    return values


def parse_extra(field: ConnectionField, raw: Any) -> Any:
    """One extra's value by its declared type and bounds; empty means the declared default.

    Raises ``ValueError`` saying what the value must be (the legacy form's validator reuses it).

    Example::

        parse_extra(FIELDS["max_attempts"], "3")  # -> 3
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return field.default
    if field.type == "string":
        if not field.enum:
            return str(raw)
        value = str(raw).lower()
        if value not in field.enum:
            raise ValueError(f"must be one of {', '.join(map(repr, field.enum))}")
        return value
    if isinstance(raw, bool):  # JSON true is not a count or a number of seconds
        raise ValueError("must be a number")
    number = _whole_number(raw) if field.type == "integer" else _finite_number(raw)
    if field.minimum is not None and number < field.minimum:
        raise ValueError(f"must be >= {field.minimum:g}")
    return number


def _finite_number(raw: Any) -> float:
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _whole_number(raw: Any) -> int:
    """An int, an integral float (JSON ``5.0``) or the text of an int, as a form's integer field reads it."""
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError("must be a whole number")
        return int(raw)
    try:
        return int(raw)
    except (TypeError, ValueError):
        _finite_number(raw)  # says "a number" when it is not one at all
        raise ValueError("must be a whole number") from None


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ::1."""
    if hostname.lower() in ("localhost", "localhost.localdomain"):
        return True
    import ipaddress  # only when a connection is read, never at DAG parse time

    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def resolve_base_url(
    host: str | None,
    *,
    schema: str | None = None,
    port: int | None = None,
    conn_id: str = "coinstats_default",
) -> str:
    """Turn the connection's host field into a base URL.

    Empty means the public API; a full URL is taken as is; a bare host name means https (or the
    connection's ``schema`` field when it is ``http``/``https``). Plain http is refused unless the
    host is a loopback address, so the key never crosses a network unencrypted.

    Example::

        resolve_base_url("http://127.0.0.1:8765")  # -> "http://127.0.0.1:8765"
        resolve_base_url("api.example.com")        # -> "https://api.example.com"
    """
    raw = (host or "").strip()
    if not raw:
        return BASE_URL
    if "://" not in raw:
        scheme = (schema or "").strip().lower() if (schema or "").strip().lower() in ("http", "https") else "https"
        raw = f"{scheme}://{raw}"
    try:
        parts = urlsplit(raw)
        parsed_port = parts.port
    except ValueError as err:
        raise CoinStatsConfigError(f"Connection {conn_id!r}: host {host!r} is not a valid URL ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CoinStatsConfigError(f"Connection {conn_id!r}: host must be a host name or an http(s) URL, got {host!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise CoinStatsConfigError(
            f"Connection {conn_id!r}: host must not carry credentials, a query or a fragment; "
            "put the API key in the password field"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise CoinStatsConfigError(
            f"Connection {conn_id!r}: plain http is only allowed to a loopback address "
            f"(got {parts.hostname!r}); use https so the API key is never sent unencrypted"
        )
    netloc = parts.netloc
    if parsed_port is None and port:
        netloc = f"{netloc}:{int(port)}"
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{netloc}{path}"
