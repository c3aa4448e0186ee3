"""No transport follows a redirect: the API key and POST bodies only ever go to the configured host.

The sandbox (127.0.0.1) answers with a redirect fault pointing at a recording server on another
loopback host (127.0.0.2); the recording server must receive nothing, the sandbox exactly one
request (no retries), and the error must name the status and the target origin but never the
Location's path or query.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from airflow_provider_coinstats import exceptions as exc
from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.async_transport import AsyncTransport
from airflow_provider_coinstats.api.builders import ApiRequest
from airflow_provider_coinstats.api.responses import classify_response, redirect_origin
from airflow_provider_coinstats.api.settings import ClientSettings
from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from airflow_provider_coinstats.sandbox import Fault
from tests.api.conftest import RecordingServer
from tests.helpers import FAST_RETRY

EXCHANGE_KEY, EXCHANGE_SECRET = "EXKEY-redirect-7f3a", "EXSECRET-redirect-91cc"
QUERY_TOKEN = "share-token-in-the-location-query"

# (method, endpoint, status): a GET redirected with 302, a POST carrying credentials with 307.
CASES = [
    ("GET", "wallet_blockchains", 302),
    ("POST", "connect_exchange", 307),
]


def request_for(endpoint: str) -> ApiRequest:
    if endpoint == "connect_exchange":
        return builders.connect_exchange("binance", {"apiKey": EXCHANGE_KEY, "apiSecret": EXCHANGE_SECRET})
    return builders.wallet_blockchains()


def send_with_hook(endpoint: str) -> Any:
    hook = CoinStatsHook()
    try:
        if endpoint == "connect_exchange":
            return hook.connect_exchange("binance", {"apiKey": EXCHANGE_KEY, "apiSecret": EXCHANGE_SECRET})
        return hook.get_blockchains()
    finally:
        hook.close()


def send_with_async_transport(server: Any, endpoint: str) -> Any:
    settings = ClientSettings.from_connection(host=server.url, password=server.api_key, extra=FAST_RETRY)

    async def go() -> Any:
        async with AsyncTransport(settings, logging.getLogger("test.redirects")) as transport:
            return await transport.send(request_for(endpoint))

    return asyncio.run(go())


def add_redirect(server: Any, target: RecordingServer, endpoint: str, status: int) -> None:
    location = f"{target.origin}/steal/{endpoint}?token={QUERY_TOKEN}"
    server.state.add_fault(Fault("redirect", endpoint=endpoint, status=status, location=location))


@pytest.mark.parametrize("transport", ["sync", "async"])
@pytest.mark.parametrize(("method", "endpoint", "status"), CASES)
def test_redirect_is_never_followed(
    coinstats_conn: Any,
    redirect_target: RecordingServer,
    transport: str,
    method: str,
    endpoint: str,
    status: int,
) -> None:
    server = coinstats_conn
    add_redirect(server, redirect_target, endpoint, status)
    send = send_with_hook if transport == "sync" else lambda e: send_with_async_transport(server, e)
    with pytest.raises(exc.CoinStatsRedirectError) as info:
        send(endpoint)
    err = info.value
    # Nothing (no key header, no credentials body) reached the other host.
    assert redirect_target.requests() == []
    # One request, no retries: a redirect is permanent.
    logged = server.state.requests(endpoint=endpoint)
    assert [(r.method, r.status) for r in logged] == [(method, status)]
    assert err.status_code == status
    assert err.location == redirect_target.origin
    text = str(err)
    assert f"answered {status}" in text
    assert redirect_target.origin in text
    for hidden in (QUERY_TOKEN, "/steal", server.api_key, EXCHANGE_KEY, EXCHANGE_SECRET):
        assert hidden not in text
    assert isinstance(err, exc.PERMANENT_ERRORS)
    assert not err.retryable


def test_redirect_fails_the_task_without_retries(
    coinstats_conn: Any, redirect_target: RecordingServer, run_dag: Any
) -> None:
    server = coinstats_conn
    add_redirect(server, redirect_target, "connect_wallet", 307)
    result = run_dag("cs_test_retries")  # retries=2 in the DAG
    assert result.tasks[("connect_wallet", -1)] == ("failed", 1)
    assert redirect_target.requests() == []
    assert [(r.method, r.status) for r in server.state.requests(endpoint="connect_wallet")] == [("POST", 307)]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_status_is_a_redirect_error(status: int) -> None:
    request = builders.portfolio_value("p1")
    headers = {"location": "https://user:pw@evil.example:8443/x?token=abc"}
    with pytest.raises(exc.CoinStatsRedirectError) as info:
        classify_response(request, status, headers, b"", base_url="https://openapiv1.coinstats.app")
    assert info.value.location == "https://evil.example:8443"
    assert "user" not in str(info.value)
    assert "pw" not in str(info.value)
    assert "token" not in str(info.value)


def test_redirect_origin() -> None:
    assert redirect_origin("http://127.0.0.2:8080/a?b=c") == "http://127.0.0.2:8080"
    assert redirect_origin("https://[::1]:9/x") == "https://[::1]:9"
    assert redirect_origin("/v1/elsewhere?token=x", "https://openapiv1.coinstats.app") == (
        "https://openapiv1.coinstats.app"
    )
    assert redirect_origin("", "https://a.example") is None
    assert redirect_origin(None) is None
    assert redirect_origin("not a url") is None
