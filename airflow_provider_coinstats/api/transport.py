"""Sync transport on ``requests``: one pooled session per hook, a wall-clock limit on every request.

It only moves bytes. Classification is :func:`~.responses.classify_response`, retries are
:func:`~.retry.call_with_retries`, the same policy as in :mod:`.async_transport`. This module
imports ``requests``, so DAG-facing modules import it lazily (inside ``execute``/``poke``), never
at parse time.

Redirects are never followed: a 3xx reaches the classifier, which raises
:class:`~airflow_provider_coinstats.exceptions.CoinStatsRedirectError`, so the API key header and
a POST body (exchange credentials) only ever go to the configured host.

``requests`` only bounds each socket read, so a server that trickles its answer could hold a
task for ever. The body is therefore streamed and read as it arrives, each read bounded by what
is left of ``timeout``, so the whole answer arrives within ``timeout`` or the attempt fails, as
aiohttp's ``ClientTimeout(total=...)`` does for the async transport. (Connecting and the status
line plus headers are bounded per read by ``timeout``, as before.)
"""

from __future__ import annotations

import http.client
import logging
import time
from typing import Any, Final

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from airflow_provider_coinstats.api.builders import ApiRequest
from airflow_provider_coinstats.api.headers import default_headers
from airflow_provider_coinstats.api.responses import classify_response
from airflow_provider_coinstats.api.retry import call_with_retries
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
# What reading the raw body stream raises (requests only wraps these inside iter_content).
_BODY_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)

#: Largest piece read from the socket at once; a read returns as soon as any bytes arrive.
_READ_SIZE: Final = 64 * 1024


def was_sent(err: requests.RequestException) -> bool:
    """False only when the connection was never made, so the request surely did not reach the server.

    requests raises ``ConnectTimeout`` for a connect timeout and a ``ConnectionError`` wrapping
    urllib3's ``NewConnectionError`` for a refused (or unresolvable) connection; everything else
    (read timeout, reset, answer cut short) may have happened after the server got the request.
    """
    if isinstance(err, requests.ConnectTimeout):
        return False
    if isinstance(err, requests.ConnectionError):
        cause = err.args[0] if err.args else None
        return not isinstance(getattr(cause, "reason", cause), NewConnectionError)
    return True


class _WallClockExceeded(Exception):
    pass


def read_body(response: requests.Response, deadline: float, timeout: float) -> bytes:
    """The whole (decoded) body, read as it arrives; raises if it is not complete by ``deadline``.

    Each read waits at most for what is left until ``deadline`` (``time.monotonic()``), so a
    trickle cannot stretch the answer past it, and a silent server is cut off at it.
    """
    raw = response.raw
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _WallClockExceeded
        sock = getattr(raw.connection, "sock", None)
        if sock is not None:
            # urllib3 resets the socket timeout for the connection's next request.
            sock.settimeout(min(timeout, remaining))
        chunk = raw.read1(_READ_SIZE, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class SyncTransport:
    """Sends :class:`ApiRequest` objects with ``requests`` under the shared retry policy.

    Example::

        transport = SyncTransport(settings, log)
        data = transport.send(builders.usage_credits())
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
        """One attempt: send, read the whole body within ``timeout``, classify."""
        timeout = self.settings.timeout
        deadline = time.monotonic() + timeout
        try:
            response = self._send_no_redirects(request, timeout)
        except _TRANSPORT_ERRORS as err:
            # The requests exception text can include the URL but never headers or body, and
            # the URL carries no secret; still, keep only the class name to stay terse.
            raise CoinStatsTransportError(
                request.method, request.path, err.__class__.__name__, sent=was_sent(err)
            ) from None
        try:
            body = read_body(response, deadline, timeout)
        except (_WallClockExceeded, *_BODY_ERRORS) as err:
            response.close()  # the connection holds an unread rest: discard it, never reuse it
            # A read cut short by the narrowed socket timeout is the wall-clock limit too.
            reason = (
                f"no complete answer within the {timeout:g}s timeout"
                if isinstance(err, _WallClockExceeded) or time.monotonic() >= deadline
                else err.__class__.__name__
            )
            raise CoinStatsTransportError(request.method, request.path, reason) from None
        # Read to the end: the connection goes back to the pool for the next request.
        response.raw.release_conn()
        return classify_response(
            request,
            response.status_code,
            response.headers,
            body,
            secrets=(self.settings.api_key,),
            base_url=self.settings.base_url,
        )

    def _send_no_redirects(self, request: ApiRequest, timeout: float) -> requests.Response:
        """Send through the session's adapter, headers received, body not yet read.

        Not ``Session.send``: even with ``allow_redirects=False`` it reads a redirect's whole body
        (to prepare ``Response.next``) outside any deadline. The adapter sends exactly one request.
        """
        session = self.session
        prepared = session.prepare_request(
            requests.Request(
                request.method,
                self.settings.base_url + request.path,
                params=dict(request.params) or None,
                json=dict(request.json) if request.json is not None else None,
                # Request-specific headers (a shared portfolio's sharetoken/passcode): never the URL.
                headers=dict(request.headers) or None,
            )
        )
        url = prepared.url or ""  # prepare_request always sets it
        # Proxies and CA bundle from the session and the environment, as Session.request would.
        env = session.merge_environment_settings(url, {}, True, None, None)
        return session.get_adapter(url).send(
            prepared,
            stream=True,
            timeout=timeout,
            verify=env["verify"] if env["verify"] is not None else True,
            cert=env["cert"],
            proxies=env["proxies"],
        )

    def send(self, request: ApiRequest, retry: RetrySettings | None = None) -> Any:
        """Send with retries; returns decoded JSON or raises a typed :class:`CoinStatsError`.

        ``retry`` overrides the connection's bounds for this call.
        """
        return call_with_retries(request, retry or self.settings.retry, self.log, self.send_once)

    def close(self) -> None:
        """Close the pooled connections now, then the session.

        ``Session.close()`` alone only forgets the pools (urllib3 2 closes their sockets when
        they are garbage collected), so each pool is closed explicitly first.
        """
        for adapter in self.session.adapters.values():
            pools: Any = getattr(getattr(adapter, "poolmanager", None), "pools", None)
            if pools is None:
                continue
            for key in pools.keys():  # noqa: SIM118 - urllib3's pool container, not a dict
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
        self.session.close()
