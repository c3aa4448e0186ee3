"""Operators that connect a wallet or an exchange account to CoinStats as a tracked portfolio.

Both push the portfolioId as their return value (XCom ``return_value``), plus ``portfolio_id``,
``connection_status`` (``connected`` or ``existing``) and ``portfolio_url`` right after the
connect call, before any waiting. Connecting is idempotent at CoinStats (the same wallet or
account answers ``existing`` with the same id), so a retry after a lost answer never makes a
second portfolio.

Importing this module is cheap: the hook (and ``requests``) are loaded inside ``execute``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator

from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.links.portfolio import (
    PORTFOLIO_URL_XCOM_KEY,
    CoinStatsPortfolioLink,
    portfolio_url,
)
from airflow_provider_coinstats.operators._credentials import (
    connection_credentials,
    render_connection_fields,
    shown,
)
from airflow_provider_coinstats.sync_probe.deferral import SyncWaitMixin
from airflow_provider_coinstats.task_failure import fail_fast_on_permanent_errors

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context, XComArg

    from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook, ConnectResult


def closest(value: str, choices: Sequence[str], n: int = 3) -> list[str]:
    """The supported ids nearest to a mistyped one (for error messages)."""
    import difflib  # only needed on the error path; keeps DAG parsing cheap

    return difflib.get_close_matches(value, choices, n=n, cutoff=0.4) or list(choices[:n])


class _ConnectPortfolioOperator(SyncWaitMixin, BaseOperator):
    """Shared flow: validate, connect, push XCom, optionally wait until synced.

    With ``wait_for_sync=True`` the task probes once in the worker (as the sensor's first poke
    does) and defers only while the portfolio is still syncing, so an already synced portfolio
    (an ``existing`` connect, say) never goes through the triggerer. ``poll_interval`` below
    ``[coinstats] min_poll_interval`` (default 1 s) is refused when the DAG is parsed.

    ``max_credits`` and ``min_remaining_credits`` bound what the task spends, the wait included
    (see :mod:`airflow_provider_coinstats.credits`); it pushes XCom ``credits_spent``.
    """

    operator_extra_links = (CoinStatsPortfolioLink(),)
    ui_color = "#f3c623"

    def __init__(
        self,
        *,
        portfolio_name: str | None = None,
        coinstats_conn_id: str = "coinstats_default",
        wait_for_sync: bool = False,
        poll_interval: float = 30.0,
        sync_timeout: float = 3600.0,
        probe: str = "transactions",
        max_consecutive_failures: int = 3,
        max_credits: int | None = None,
        min_remaining_credits: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.init_credit_budget(max_credits=max_credits, min_remaining_credits=min_remaining_credits)
        self.portfolio_name = portfolio_name
        self.coinstats_conn_id = coinstats_conn_id
        self.wait_for_sync = wait_for_sync
        self.init_operator_wait(
            poll_interval=poll_interval,
            sync_timeout=sync_timeout,
            probe=probe,
            max_consecutive_failures=max_consecutive_failures,
        )

    def connect(self, hook: CoinStatsHook) -> ConnectResult:
        raise NotImplementedError

    def execute(self, context: Context) -> str:
        with self.reporting_credits(context):
            return self._connect_and_wait(context)

    def _connect_and_wait(self, context: Context) -> str:
        with fail_fast_on_permanent_errors(), self.budgeted_hook() as hook:
            result = self.connect(hook)
            self.log.info("CoinStats portfolio %s: %s", result.portfolio_id, result.status)
            url = portfolio_url(hook.settings.portfolio_url_template, result.portfolio_id)
        ti = context["ti"]
        ti.xcom_push(key="portfolio_id", value=result.portfolio_id)
        ti.xcom_push(key="connection_status", value=result.status)
        ti.xcom_push(key=PORTFOLIO_URL_XCOM_KEY, value=url)
        if not self.wait_for_sync:
            return result.portfolio_id
        return self.wait_for_portfolio(result.portfolio_id)


class ConnectWalletOperator(_ConnectPortfolioOperator):
    """Connect a wallet address on a blockchain as a tracked CoinStats portfolio (40 credits).

    The blockchain is a CoinStats ``connectionId`` (e.g. ``ethereum``, ``base-wallet``); an
    unknown one fails before the paid call, naming the closest supported ids. With
    ``wait_for_sync=True`` the task then defers until the portfolio has synced.

    Example::

        connect = ConnectWalletOperator(
            task_id="connect_wallet",
            address="0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045",
            blockchain="ethereum",
            portfolio_name="Treasury",
        )
    """

    template_fields: Sequence[str] = ("address", "blockchain", "portfolio_name")

    def __init__(self, *, address: str, blockchain: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.address = address
        self.blockchain = blockchain

    def connect(self, hook: CoinStatsHook) -> ConnectResult:
        # Every local check before any request, then the 1-credit lookup before the 40-credit connect.
        request = builders.connect_wallet(self.address, self.blockchain, self.portfolio_name)
        blockchain = request.json["connectionId"] if request.json else ""
        supported = [str(c.get("connectionId")) for c in hook.get_blockchains()]
        if blockchain not in supported:
            raise CoinStatsValidationError(
                "blockchain",
                f"{blockchain!r} is not a CoinStats blockchain id; closest supported: "
                f"{', '.join(closest(blockchain, supported))}",
            )
        return hook.connect_wallet(self.address.strip(), blockchain, self.portfolio_name)


class ConnectExchangeOperator(_ConnectPortfolioOperator):
    """Connect an exchange account as a tracked CoinStats portfolio (10 credits).

    Credentials come from an Airflow connection of any type (``exchange_conn_id``: login is
    ``apiKey``, password is ``apiSecret``, every key of the extra JSON is a field of that name,
    e.g. ``passphrase``), so they live in your secrets backend; or from ``connection_fields``,
    which override the connection's: a mapping whose values may be Jinja strings or XComArgs, an
    XComArg, or one Jinja string rendering to a mapping (``render_template_as_native_obj=True``)
    or to a JSON object (``"{{ conn.x.extra_dejson | tojson }}"``). The fields the exchange
    requires (GET /exchange/support) are checked before the paid call.

    Airflow never renders ``connection_fields``, on any path (plain, ``partial().expand()``,
    ``expand_kwargs``): the operator renders it itself in ``execute``, and what Airflow stores and
    shows as the rendered field is its field names with ``***`` values. Every credential value,
    whatever its field name, is registered with Airflow's secret masker and never logged, pushed
    to XCom or put in an error. Values written literally in a DAG file are stored with the DAG by
    Airflow: take them from a connection instead.

    Example::

        connect = ConnectExchangeOperator(
            task_id="connect_binance",
            exchange="binance",
            exchange_conn_id="binance_readonly",
        )
        mapped = ConnectExchangeOperator.partial(task_id="connect_okx", exchange="okx").expand(
            connection_fields=["{{ conn.okx_a.extra_dejson | tojson }}", "{{ conn.okx_b.extra_dejson | tojson }}"]
        )
    """

    template_fields: Sequence[str] = ("exchange", "exchange_conn_id", "connection_fields", "portfolio_name")

    def __init__(
        self,
        *,
        exchange: str,
        exchange_conn_id: str | None = None,
        connection_fields: Mapping[str, Any] | str | XComArg | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.exchange = exchange
        self.exchange_conn_id = exchange_conn_id
        self.connection_fields = connection_fields
        self._context: Context | None = None

    @property
    def connection_fields(self) -> Any:
        """What Airflow sees: the value as written until rendering starts, then its field names only."""
        return self._connection_fields_shown

    @connection_fields.setter
    def connection_fields(self, value: Any) -> None:
        self._connection_fields = value  # as written; rendered only in execute
        self._connection_fields_shown = value

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # Every render path ends here: BaseOperator.render_template_fields, and for a mapped task
        # MappedOperator.render_template_fields on the unmapped operator (which skips any
        # render_template_fields override). Airflow renders the other fields; connection_fields is
        # rendered in execute, and from now on Airflow is shown its field names only.
        if parent is self:
            template_fields = [name for name in template_fields if name != "connection_fields"]
            self._connection_fields_shown = shown(self._connection_fields)
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)

    def execute(self, context: Context) -> str:
        # The shared flow hands connect() the hook only; connection_fields is rendered from this context.
        self._context = context
        try:
            return super().execute(context)
        finally:
            self._context = None

    def credentials(self, context: Context | None = None) -> dict[str, Any]:
        """The connection fields to send: the exchange connection's, overridden by ``connection_fields``.

        Rendered and resolved here, every value masked; ``context`` is the task's (``{}`` outside a task).
        """
        fields = connection_credentials(self.exchange_conn_id) if self.exchange_conn_id else {}
        explicit = render_connection_fields(self, self._connection_fields, context or cast("Context", {}))
        if explicit is not None:
            fields.update(explicit)
        if not fields:
            raise CoinStatsValidationError(
                "exchange_conn_id", "no credentials: set exchange_conn_id (a connection) or connection_fields"
            )
        return fields

    def connect(self, hook: CoinStatsHook) -> ConnectResult:
        fields = self.credentials(self._context)
        request = builders.connect_exchange(self.exchange, fields, self.portfolio_name)  # validates, sends nothing
        exchange = request.json["connectionId"] if request.json else ""
        supported = {str(e.get("connectionId")): e for e in hook.get_supported_exchanges()}
        if exchange not in supported:
            raise CoinStatsValidationError(
                "exchange",
                f"{exchange!r} is not a CoinStats exchange id; closest supported: "
                f"{', '.join(closest(exchange, list(supported)))}",
            )
        required = [str(f.get("key")) for f in supported[exchange].get("connectionFields", [])]
        missing = [key for key in required if key not in fields]
        if missing:
            raise CoinStatsValidationError(
                f"connection_fields[{missing[0]!r}]",
                f"{exchange} requires {', '.join(required)}; missing {', '.join(missing)} "
                "(login maps to apiKey, password to apiSecret, extra keys by name)",
            )
        unexpected = sorted(set(fields) - set(required))
        if unexpected:
            raise CoinStatsValidationError(
                f"connection_fields[{unexpected[0]!r}]",
                f"{exchange} takes exactly {', '.join(required)}; not expected: {', '.join(unexpected)}",
            )
        return hook.connect_exchange(exchange, fields, self.portfolio_name)
