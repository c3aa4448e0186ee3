"""The fields of a ``coinstats`` Airflow connection, declared once.

Three things are built from this table and nothing else, so they cannot disagree: the
connection parser (:mod:`.settings`), the declarative form Airflow 3.2+ reads from the provider
info (``conn-fields``, ``ui-field-behaviour``) and the hook's legacy form for Airflow 3.0/3.1
(:mod:`airflow_provider_coinstats.hooks.connection_form`). Pure data that imports nothing:
ProvidersManager loads it in every Airflow process (Airflow 3.3 even on ``import airflow.sdk``).

Example::

    FIELDS["timeout"].default  # -> 30.0
    FIELDS["timeout"].minimum  # -> 0.1
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, Literal, NamedTuple

FieldType = Literal["integer", "number", "string"]
Default = int | float | str | None


class ConnectionField(NamedTuple):
    """One extra of the connection: its form widget and the parser's rule.

    ``minimum`` applies to ``integer`` and ``number`` fields; ``enum`` lists every accepted value
    of a ``string`` field (compared case-insensitively). An empty value means ``default``.
    (A NamedTuple, not a frozen dataclass: DAG files import this, and it is ~8x cheaper to define.)

    Example::

        ConnectionField("max_attempts", "Max attempts per call", "...", "integer", default=5, minimum=1)
    """

    name: str
    label: str
    description: str
    type: FieldType
    default: Default = None
    minimum: float | None = None
    enum: tuple[str, ...] = ()


_FIELDS: Final = (
    ConnectionField(
        "timeout",
        "Timeout (seconds per request)",
        "Connect and read timeout of every request, and the most one whole answer may take. "
        "Fractions allowed. Default 30.",
        "number",
        default=30.0,
        # Below 0.1 s not even a loopback answer arrives reliably: every call would time out.
        minimum=0.1,
    ),
    ConnectionField(
        "max_attempts",
        "Max attempts per call",
        "Attempts for retryable failures (429, 5xx, timeouts). Default 5.",
        "integer",
        default=5,
        minimum=1,
    ),
    ConnectionField(
        "auth_type",
        "Auth header",
        "x-api-key (default) sends X-API-KEY; bearer sends Authorization: Bearer.",
        "string",
        default="x-api-key",
        enum=("x-api-key", "bearer"),
    ),
    ConnectionField(
        "backoff_base",
        "Retry backoff base (seconds)",
        "Wait before the first retry, doubled per attempt up to the backoff cap. Default 1.",
        "number",
        default=1.0,
        minimum=0.0,
    ),
    ConnectionField(
        "backoff_max",
        "Retry backoff cap (seconds)",
        "Longest wait between two attempts when the server gives no Retry-After. Default 30.",
        "number",
        default=30.0,
        minimum=0.0,
    ),
    ConnectionField(
        "retry_after_max",
        "Longest Retry-After honoured (seconds)",
        "A 429's Retry-After is obeyed up to this many seconds. Default 60.",
        "number",
        default=60.0,
        minimum=0.0,
    ),
    ConnectionField(
        "max_retry_time",
        "Retry time budget (seconds)",
        "No retry starts whose wait would end later than this after the first attempt. Default 300.",
        "number",
        default=300.0,
        minimum=0.0,
    ),
    ConnectionField(
        "max_credits_per_task",
        "Credit budget per task",
        "Most credits one task may spend through this connection (documented costs); a call that "
        "would pass it is refused before it is sent. A task's max_credits can only lower it. "
        "Empty: no budget.",
        "integer",
        minimum=0,
    ),
    ConnectionField(
        "portfolio_url_template",
        "Portfolio link template",
        "http(s) URL of a portfolio's web page with {portfolio_id}, for the task's CoinStats link. "
        "Default: the CoinStats web app's portfolio page.",
        "string",
    ),
)

#: name -> field, in form order.
FIELDS: Final = MappingProxyType({field.name: field for field in _FIELDS})

#: Standard connection fields: the key is the password, the base URL the host; nothing else is used.
HIDDEN_FIELDS: Final = ("login", "schema", "port")
RELABELING: Final = MappingProxyType({"password": "API Key", "host": "Base URL"})
#: The host placeholder is the public API's address, ``catalog.BASE_URL`` (a test keeps them equal):
#: importing the endpoint catalog here would add its cost to every Airflow process, since
#: ProvidersManager loads the provider info, and this, wherever Airflow starts.
PLACEHOLDERS: Final = MappingProxyType(
    {"host": "https://openapiv1.coinstats.app", "password": "your CoinStats API key"}
)
