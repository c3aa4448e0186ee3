"""Async transport on ``httpx`` for triggers: the same requests, classifier and retry policy.

Only the byte-moving differs from :mod:`.transport`; waits between retries are ``asyncio.sleep``
(tenacity's async driver), so a trigger never blocks the triggerer's event loop.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from airflow_provider_coinstats.api.headers import default_headers
from airflow_provider_coinstats.api.operations import ApiRequest
from airflow_provider_coinstats.api.responses import classify_response
from airflow_provider_coinstats.api.retry import async_retrying
from airflow_provider_coinstats.api.settings import ClientSettings, RetrySettings
from airflow_provider_coinstats.exceptions import CoinStatsTransportError


class AsyncTransport:
    """Sends :class:`ApiRequest` objects with ``httpx.AsyncClient`` under the shared retry policy.

    Use as an async context manager so the connection pool is closed.

    Example::

        async with AsyncTransport(settings, log) as transport:
            status = await transport.send(operations.portfolio_status(portfolio_id))
    """

    def __init__(self, settings: ClientSettings, log: logging.Logger | Any) -> None:
        self.settings = settings
        self.log = log
        self.client = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=default_headers(settings),
            timeout=settings.timeout,
        )

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def send_once(self, request: ApiRequest) -> Any:
        try:
            response = await self.client.request(
                request.method,
                request.path,
                params=dict(request.params) or None,
                json=dict(request.json) if request.json is not None else None,
            )
        except httpx.TransportError as err:
            raise CoinStatsTransportError(request.method, request.path, err.__class__.__name__) from None
        return classify_response(
            request,
            response.status_code,
            response.headers,
            response.content,
            secrets=(self.settings.api_key,),
        )

    async def send(self, request: ApiRequest, retry: RetrySettings | None = None) -> Any:
        """Send with retries (``retry`` overrides the connection's bounds for this call)."""
        async for attempt in async_retrying(request, retry or self.settings.retry, self.log):
            with attempt:
                return await self.send_once(request)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def aclose(self) -> None:
        await self.client.aclose()
