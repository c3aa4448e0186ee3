"""``CoinStatsAsyncHook``: the CoinStats API from an event loop (triggers), on aiohttp.

The async twin of :class:`~airflow_provider_coinstats.hooks.coinstats.CoinStatsHook`: the same
connection, requests, classifier, retry policy and credit accounting; only the lookup and the
transport are asynchronous. It owns everything a trigger needs besides its own loop:

- The connection lookup (:func:`~airflow_provider_coinstats._compat.aget_connection`), which
  finds a connection in environment variables, secrets backends and the metastore, in a real
  triggerer and under ``dag.test()`` / ``airflow dags test``.
- A per-process cache of what it read: hundreds of triggers on one connection share one lookup
  (each costs ~0.7 ms of blocking work on the event loop), while a rotated key still takes effect
  within :data:`SETTINGS_TTL` seconds.
- The re-read after a 401 (:meth:`CoinStatsAsyncHook.reread_connection`), bypassing and
  refreshing that cache, so a key rotated in Airflow during a long wait is picked up.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_coinstats._compat import aget_connection
from airflow_provider_coinstats.api.settings import ClientSettings, settings_from_connection
from airflow_provider_coinstats.exceptions import CoinStatsError
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHookBase

if TYPE_CHECKING:
    from airflow_provider_coinstats.api.async_transport import AsyncTransport
    from airflow_provider_coinstats.api.builders import ApiRequest

#: How long a process reuses a connection it has read (seconds).
SETTINGS_TTL: Final = 30.0

#: conn_id -> (monotonic expiry, settings as read, before any hook's attempt budget).
_settings_cache: dict[str, tuple[float, ClientSettings]] = {}


async def _read_settings(conn_id: str) -> ClientSettings:
    """Read the connection now and cache what it says for every hook in the process."""
    from asgiref.sync import sync_to_async

    conn = await aget_connection(conn_id)
    # extra_dejson masks the extra with a blocking call to the supervisor, which must not run on
    # the triggerer's event loop (it raises DeadlockImminentError while another call is in flight).
    settings = await sync_to_async(settings_from_connection)(conn, conn_id)
    _settings_cache[conn_id] = (time.monotonic() + SETTINGS_TTL, settings)
    return settings


class CoinStatsAsyncHook(CoinStatsHookBase):
    """Send CoinStats requests from an event loop, with the key from an Airflow connection.

    Use it as an async context manager (or await :meth:`aclose`) so its session is closed.

    Example::

        async with CoinStatsAsyncHook("coinstats_default", max_attempts=4) as hook:
            payload = await hook.run(builders.portfolio_status(portfolio_id), deadline=time.time() + 60)
            hook.credits_spent  # the documented cost of the calls that succeeded
    """

    def __init__(
        self,
        coinstats_conn_id: str = CoinStatsHookBase.default_conn_name,
        max_attempts: int | None = None,
        max_credits: int | None = None,
    ) -> None:
        super().__init__(coinstats_conn_id, max_attempts, max_credits)
        self._settings: ClientSettings | None = None
        self._transport: AsyncTransport | None = None

    async def get_settings(self) -> ClientSettings:
        """Request settings from the connection, read at most once per ``SETTINGS_TTL`` per process."""
        if self._settings is None:
            hit = _settings_cache.get(self.coinstats_conn_id)
            fresh = hit[1] if hit is not None and hit[0] > time.monotonic() else None
            self._settings = self._with_budget(fresh or await _read_settings(self.coinstats_conn_id))
        return self._settings

    async def run(self, request: ApiRequest, *, deadline: float | None = None) -> Any:
        """Send one request (with retries, ending by ``deadline``) and return its decoded JSON."""
        settings = await self.get_settings()
        if any(value not in self._masked for value in request.secrets):
            from asgiref.sync import sync_to_async

            # Masking tells the supervisor with a blocking call: never on the triggerer's loop.
            await sync_to_async(self._mask_request_secrets)(request)
        if self._transport is None:
            # Imported here: aiohttp is only needed once a request is sent.
            from airflow_provider_coinstats.api.async_transport import AsyncTransport

            self._transport = AsyncTransport(settings, self.log)
        with self._share_refusal_explained(request), self._charged_within_budget(request, settings):
            return await self._transport.send(request, self._retry_until(settings, deadline))

    async def require_remaining_credits(self, minimum: int) -> int:
        """The async twin of :meth:`CoinStatsHook.require_remaining_credits` (GET /usage/credits, free)."""
        from airflow_provider_coinstats.api import builders

        checked = self._validated_minimum(minimum)
        return self._check_remaining(await self.run(builders.usage_credits()), checked)

    async def reread_connection(self) -> bool:
        """After a 401: read the connection again; True when it now holds another key or base URL.

        The fresh read replaces the process's cached one either way; when the key (or URL) has
        changed, this hook's next call uses it. False when the connection still holds the rejected
        key (a retry could only be refused again) or cannot be read.
        """
        current = await self.get_settings()
        try:
            fresh = self._with_budget(await _read_settings(self.coinstats_conn_id))
        except CoinStatsError as error:
            self.log.warning("CoinStats connection %s could not be read again: %s", self.coinstats_conn_id, error)
            return False
        if (fresh.api_key, fresh.auth_type, fresh.base_url) == (current.api_key, current.auth_type, current.base_url):
            self.log.info("CoinStats rejected the API key; connection %s still holds it", self.coinstats_conn_id)
            return False
        self.log.info(
            "CoinStats rejected the API key; connection %s now holds another one (rotated?): using it",
            self.coinstats_conn_id,
        )
        await self.aclose()
        self._settings = fresh
        return True

    async def aclose(self) -> None:
        """Close the session; a later call opens a new one."""
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    async def __aenter__(self) -> CoinStatsAsyncHook:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
