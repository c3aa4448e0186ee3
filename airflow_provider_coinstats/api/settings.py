"""How a CoinStats Airflow connection turns into request settings.

Kept apart from the hook so that the sync hook, the async (trigger) path and the sandbox helpers
read a connection the same way. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from airflow_provider_coinstats.api.catalog import BASE_URL
from airflow_provider_coinstats.exceptions import CoinStatsConfigError

AuthType = Literal["x-api-key", "bearer"]

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_MAX_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class RetrySettings:
    """Bounds of the retry policy; all in seconds except ``max_attempts``.

    Example::

        RetrySettings(max_attempts=3, backoff_base=0.5)
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    max_retry_time: float = 300.0


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
        extra = dict(extra or {})
        auth_type = str(extra.get("auth_type") or "x-api-key").lower()
        if auth_type not in ("x-api-key", "bearer"):
            raise CoinStatsConfigError(
                f"Connection {conn_id!r}: extra 'auth_type' must be 'x-api-key' or 'bearer', got {auth_type!r}"
            )
        defaults = RetrySettings()
        retry = RetrySettings(
            max_attempts=int(_number(extra, "max_attempts", defaults.max_attempts, conn_id, minimum=1)),
            backoff_base=_number(extra, "backoff_base", defaults.backoff_base, conn_id),
            backoff_max=_number(extra, "backoff_max", defaults.backoff_max, conn_id),
            retry_after_max=_number(extra, "retry_after_max", defaults.retry_after_max, conn_id),
            max_retry_time=_number(extra, "max_retry_time", defaults.max_retry_time, conn_id),
        )
        return cls(
            base_url=resolve_base_url(host, schema=schema, port=port, conn_id=conn_id),
            api_key=password.strip(),
            auth_type="bearer" if auth_type == "bearer" else "x-api-key",
            timeout=_number(extra, "timeout", DEFAULT_TIMEOUT, conn_id, minimum=0.001),
            retry=retry,
            portfolio_url_template=str(extra["portfolio_url_template"])
            if extra.get("portfolio_url_template")
            else None,
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


def _number(extra: Mapping[str, Any], key: str, default: float, conn_id: str, minimum: float = 0.0) -> float:
    raw = extra.get(key)
    if raw is None or raw == "":
        return float(default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise CoinStatsConfigError(f"Connection {conn_id!r}: extra {key!r} must be a number, got {raw!r}") from None
    if value < minimum:
        raise CoinStatsConfigError(f"Connection {conn_id!r}: extra {key!r} must be >= {minimum}, got {raw!r}")
    return value


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
