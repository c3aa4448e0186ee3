"""Sync transport on ``requests``: one pooled session per hook, a timeout on every request.

It only moves bytes. Classification is :func:`~.responses.classify_response`, retries are
:func:`~.retry.retrying`, exactly as in :mod:`.async_transport`. This module imports ``requests``,
so DAG-facing modules import it lazily (inside ``execute``/``poke``), never at parse time.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_coinstats.api.headers import default_headers
from airflow_provider_coinstats.api.operations import ApiRequest
from airflow_provider_coinstats.api.responses import classify_response
from airflow_provider_coinstats.api.retry import retrying
from airflow_provider_coinstats.api.settings import ClientSettings, RetrySettings
from airflow_provider_coinstats.exceptions import CoinStatsTransportError

# Everything requests raises when no complete answer arrived: refused or reset connections,
# timeouts, and bodies cut short (ChunkedEncodingError wraps urllib3's IncompleteRead).
_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class SyncTransport:
    """Sends :class:`ApiRequest` objects with ``requests`` under the shared retry policy.

    Example::

        transport = SyncTransport(settings, log)
        data = transport.send(operations.usage_credits())
    """

    def __init__(self, settings: ClientSettings, log: logging.Logger | Any) -> None:
        self.settings = settings
        self.log = log
        self.session = requests.Session()
        self.session.headers.update(default_headers(settings))
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def send_once(self, request: ApiRequest) -> Any:
        """One attempt: send, read the whole body, classify."""
        try:
            response = self.session.request(
                request.method,
                self.settings.base_url + request.path,
                params=dict(request.params) or None,
                json=dict(request.json) if request.json is not None else None,
                timeout=self.settings.timeout,
            )
            body = response.content
        except _TRANSPORT_ERRORS as err:
            # The requests exception text can include the URL but never headers or body, and
            # the URL carries no secret; still, keep only the class name to stay terse.
            raise CoinStatsTransportError(request.method, request.path, err.__class__.__name__) from None
        return classify_response(
            request, response.status_code, response.headers, body, secrets=(self.settings.api_key,)
        )

    def send(self, request: ApiRequest, retry: RetrySettings | None = None) -> Any:
        """Send with retries; returns decoded JSON or raises a typed :class:`CoinStatsError`.

        ``retry`` overrides the connection's bounds for this call.
        """
        for attempt in retrying(request, retry or self.settings.retry, self.log):
            with attempt:
                return self.send_once(request)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def close(self) -> None:
        self.session.close()
