"""Shared portfolios from Airflow connections: the share token and passcode live in the secrets backend.

A share connection (any connection type; ``generic`` works) holds the share link of a portfolio
the user tracks in the CoinStats app:

- ``login``: the share token;
- ``password``: the passcode (empty for a share without one);
- extra ``portfolio_name`` (optional): the public id rows, asset names, XCom and logs use; without
  it the id is derived with a keyed hash (see :mod:`airflow_provider_coinstats.api.shared`).

The API key still comes from the ``coinstats`` connection; the key's plan must be "Degen".
Both values are registered with Airflow's secrets masker when read. Only the connection id is
ever stored (operator fields, trigger kwargs), never the values.

Example::

    share = shared_portfolio_from_connection("coinstats_share_family")
    share.public_id  # -> "family" (extra portfolio_name) or "shared-<16 hex>"
    with CoinStatsHook() as hook:
        hook.get_portfolio_value(share)
"""

from __future__ import annotations

from typing import Any

from airflow_provider_coinstats._compat import AirflowNotFoundException, BaseHook, aget_connection, mask_secret
from airflow_provider_coinstats.api.shared import SharedPortfolio
from airflow_provider_coinstats.exceptions import CoinStatsConfigError, CoinStatsValidationError

#: The connection extras a share connection may carry.
SHARE_EXTRAS = frozenset({"portfolio_name"})


def shared_portfolio_from(conn: Any, conn_id: str) -> SharedPortfolio:
    """The shared portfolio an Airflow ``Connection`` describes (sync or async lookup alike).

    Raises :class:`CoinStatsConfigError` naming the connection and the field, never a value.
    """
    token = conn.login or ""
    passcode = conn.password or None
    # Masked before anything can fail, so no later message can show them.
    for value in (token, passcode):
        if value:
            mask_secret(value)
    if not token.strip():
        raise CoinStatsConfigError(f"share connection {conn_id!r}: login (the share token) is empty")
    extra = conn.extra_dejson or {}
    unknown = sorted(set(extra) - SHARE_EXTRAS)
    if unknown:
        raise CoinStatsConfigError(
            f"share connection {conn_id!r}: unknown extra {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(SHARE_EXTRAS))}"
        )
    try:
        return SharedPortfolio(token, passcode, name=extra.get("portfolio_name"))
    except CoinStatsValidationError as error:
        raise CoinStatsConfigError(f"share connection {conn_id!r}: {error}") from None


def _not_found(conn_id: str) -> CoinStatsConfigError:
    # Permanent: a retry cannot create the connection (a typo in share_conn_id fails at once).
    return CoinStatsConfigError(f"share connection {conn_id!r} is not defined")


def shared_portfolio_from_connection(conn_id: str) -> SharedPortfolio:
    """Read the share connection ``conn_id`` (environment, secrets backend or metastore)."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise _not_found(conn_id) from None
    return shared_portfolio_from(conn, conn_id)


async def ashared_portfolio_from_connection(conn_id: str) -> SharedPortfolio:
    """The same from an event loop (triggers): the lookup and the masking never block the loop."""
    from asgiref.sync import sync_to_async

    try:
        conn = await aget_connection(conn_id)
    except AirflowNotFoundException:
        raise _not_found(conn_id) from None
    # extra_dejson and mask_secret may make blocking calls to the supervisor: run them in a thread.
    shared: SharedPortfolio = await sync_to_async(shared_portfolio_from)(conn, conn_id)
    return shared
