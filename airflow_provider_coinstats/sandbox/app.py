"""HTTP layer of the sandbox: FastAPI routes for the CoinStats API and the ``/_sandbox/`` admin API.

Routes take the raw ``Request`` and return ready-made responses on purpose: FastAPI's own body
validation would answer 422, which CoinStats never does (validation errors are 400 envelopes).
Only this module and :mod:`.server` import FastAPI/uvicorn, so importing the package stays cheap.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from airflow_provider_coinstats.api.catalog import (
    CREDITS_EXHAUSTED_MESSAGE,
    ENDPOINTS,
    INVALID_KEY_MESSAGE,
    NOT_SYNCED_MESSAGE,
    Endpoint,
)
from airflow_provider_coinstats.api.settings import is_loopback
from airflow_provider_coinstats.sandbox.faults import Fault
from airflow_provider_coinstats.sandbox.handlers import Call, envelope, execute, log_label
from airflow_provider_coinstats.sandbox.state import SandboxState

ADMIN_PREFIX = "/_sandbox"
API_PREFIXES = ("", "/v1")

_FAULT_MESSAGES = {
    400: "Bad Request",
    401: INVALID_KEY_MESSAGE,
    403: "Forbidden resource",
    404: "Not Found",
    406: CREDITS_EXHAUSTED_MESSAGE,
    409: NOT_SYNCED_MESSAGE,
    429: "Rate limit exceeded",
    500: "Internal server error",
    503: "Service Unavailable. Please Contact Support",
}


class DeliberateDrop(Exception):
    """Raised after a partial response: uvicorn then closes the connection mid-body."""


class DropResponse(Response):
    """A response that promises more body than it sends and then aborts the connection.

    With uvicorn+h11 there is no ASGI way to reset a connection, but raising after
    ``http.response.start`` makes uvicorn close the transport, and the over-stated
    Content-Length guarantees the client notices (requests: ChunkedEncodingError, httpx:
    RemoteProtocolError) instead of accepting a short body.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"', "more_body": True})
        raise DeliberateDrop


#: Bytes a "trickle" fault sends per chunk, and the longest an endless trickle runs.
TRICKLE_CHUNK = 4
TRICKLE_MAX_SECONDS = 300.0


class TrickleResponse(Response):
    """Sends ``content`` ``TRICKLE_CHUNK`` bytes at a time, ``delay`` seconds apart.

    With ``endless`` it sends no Content-Length and, after the content, keeps sending a blank
    (JSON allows trailing whitespace) every ``delay`` seconds, so the connection stays busy and a
    per-read timeout never fires. It stops when the client hangs up, when ``still_current()``
    turns false (the state was reset for the next test) or after ``TRICKLE_MAX_SECONDS``.
    """

    def __init__(
        self, content: bytes, status: int, delay: float, endless: bool, still_current: Callable[[], bool]
    ) -> None:
        super().__init__(status_code=status)
        self._content = content
        self._delay = delay
        self._endless = endless
        self._still_current = still_current

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json")]
        if not self._endless:
            headers.append((b"content-length", str(len(self._content)).encode()))
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        hung_up = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            pieces = [self._content[i : i + TRICKLE_CHUNK] for i in range(0, len(self._content), TRICKLE_CHUNK)]
            stop_at = asyncio.get_running_loop().time() + TRICKLE_MAX_SECONDS
            index = 0
            while not hung_up.done() and self._still_current():
                if index < len(pieces):
                    piece = pieces[index]
                elif self._endless and asyncio.get_running_loop().time() < stop_at:
                    piece = b" "
                else:
                    break
                index += 1
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                # Sleeps ``delay``, or less when the client hangs up meanwhile.
                await asyncio.wait([hung_up], timeout=self._delay)
            if not hung_up.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            hung_up.cancel()


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def redirect_response(fault: Fault) -> Response:
    """The answer of a ``kind="redirect"`` fault: the status and a Location, nothing else."""
    return Response(b"", status_code=fault.status, headers={"Location": fault.location or ""})


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _json(payload: Any, status: int = 200) -> Response:
    return Response(_json_bytes(payload), status_code=status, media_type="application/json")


def _error(status: int, message: str, path: str) -> Response:
    return _json(envelope(status, message, path), status)


def fault_response(fault: Fault, path: str) -> Response:
    """The answer of a ``kind="status"`` fault, in the requested body style."""
    status = fault.status
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    message = _FAULT_MESSAGES.get(status) or HTTPStatus(status).phrase
    if fault.body == "empty" or status in (204, 304):
        return Response(b"", status_code=status, headers=headers)
    if fault.body == "text":
        # What a proxy or load balancer in front of the API answers: HTML, not JSON.
        title = f"{status} {HTTPStatus(status).phrase}"
        html = f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center></body></html>"
        return Response(html.encode(), status_code=status, headers=headers, media_type="text/html")
    if fault.body == "no_request_id":
        # SPEC's 503 example body has no requestId/path.
        return Response(
            _json_bytes({"statusCode": status, "message": message}),
            status_code=status,
            headers=headers,
            media_type="application/json",
        )
    return Response(
        _json_bytes(envelope(status, message, path)),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


_Handler = Callable[[Request], Awaitable[Any]]


def _api_route(state: SandboxState, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        path = request.url.path
        query = dict(request.query_params)
        # A shared read is logged as "shared:<label>": the token never reaches the log.
        hint = log_label(state, query, request.headers, request.path_params.get("portfolioId"))

        def log(status: int | None, credits: int = 0, fault: str | None = None, pid: str | None = hint) -> None:
            state.record(
                method=request.method,
                path=path,
                endpoint=endpoint.name,
                query=query,
                status=status,
                credits=credits,
                fault=fault,
                portfolio_id=pid,
            )

        generation = state.generation
        fault = state.take_fault(endpoint.name, path)
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind == "status":
            log(fault.status, fault="status")
            return fault_response(fault, path)
        if fault is not None and fault.kind == "drop":
            log(None, fault="drop")
            return DropResponse()
        if fault is not None and fault.kind == "redirect":
            log(fault.status, fault="redirect")
            return redirect_response(fault)
        # The log keeps the page asked for; the operation serves page 1.
        served = {**query, "page": "1"} if kind == "ignore_page" and "page" in query else query
        if fault is not None and fault.kind == "slow" and fault.delay > 0:
            await asyncio.sleep(fault.delay)
        latency = state.config.latency
        if latency > 0:
            await asyncio.sleep(latency)
        if state.generation != generation:
            # The state was reset while this request slept (e.g. the next test began): acting now
            # would leak this request into the fresh log and ledger, so it just goes away.
            return DropResponse()

        call = Call(
            method=request.method,
            path=path,
            query=served,
            headers=request.headers,
            body=await request.body(),
            path_params=dict(request.path_params),
        )
        outcome = execute(state, endpoint, call)
        if kind == "drop_after":
            log(None, outcome.credits, kind, outcome.portfolio_id)
            return DropResponse()
        content = _json_bytes(outcome.payload)
        if kind == "truncate":
            # A complete HTTP message (matching Content-Length) carrying half a JSON document.
            content = content[: len(content) // 2]
        log(outcome.status, outcome.credits, kind, outcome.portfolio_id)
        if fault is not None and fault.kind == "trickle":
            return TrickleResponse(
                content, outcome.status, fault.delay, fault.endless, lambda: state.generation == generation
            )
        return Response(content, status_code=outcome.status, media_type="application/json")

    route.__name__ = f"coinstats_{endpoint.name}"
    return route


# --------------------------------------------------------------------------- admin API


async def _admin_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise _AdminError("body must be JSON") from None
    if not isinstance(value, dict):
        raise _AdminError("body must be a JSON object")
    return value


class _AdminError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def loopback_host_header(value: str | None) -> bool:
    """True for a ``Host`` header naming loopback: 127.0.0.0/8, ``[::1]`` or localhost, any port."""
    if not value:
        return False
    host = value.strip().lower()
    if host.startswith("["):  # [::1]:port
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return is_loopback(host)


def _refuse_admin_request(request: Request) -> tuple[int, str] | None:
    """Why an admin request is refused, or ``None``.

    A loopback ``Host`` blocks DNS rebinding (a web page whose name resolves to 127.0.0.1 still
    sends its own name as Host); requiring ``application/json`` on requests that may change
    state blocks cross-site form posts and ``no-cors`` fetches, which cannot send that type
    without a CORS preflight, which this server never grants.
    """
    if not loopback_host_header(request.headers.get("host")):
        return 403, "admin API: the Host header must name a loopback address (127.0.0.0/8, ::1, localhost)"
    headers = request.headers
    # Every POST counts, even an empty one: a cross-site POST needs no body to reset the sandbox.
    has_body = request.method == "POST" or headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if has_body and content_type != "application/json":
        return 415, "admin API: send the request with Content-Type: application/json"
    return None


def _float_or_inf(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("inf", "infinity"):
        return math.inf
    return value


def _add_admin_routes(app: FastAPI, state: SandboxState) -> None:
    def admin(method: str, path: str) -> Callable[[_Handler], _Handler]:
        """Register ``handler`` under /_sandbox; its result is sent as JSON, its errors as envelopes."""

        def register(handler: _Handler) -> _Handler:
            async def route(request: Request) -> Response:
                refusal = _refuse_admin_request(request)
                if refusal is not None:
                    return _error(*refusal, request.url.path)
                try:
                    return _json(await handler(request))
                except (_AdminError, ValueError, TypeError) as error:
                    message = error.message if isinstance(error, _AdminError) else str(error)
                    status = error.status if isinstance(error, _AdminError) else 400
                    return _error(status, message, request.url.path)
                except KeyError as error:
                    return _error(404, str(error.args[0]) if error.args else "Not Found", request.url.path)

            route.__name__ = handler.__name__
            app.add_api_route(ADMIN_PREFIX + path, route, methods=[method], include_in_schema=False)
            return handler

        return register

    @admin("GET", "/requests")
    async def list_requests(request: Request) -> Any:
        q = request.query_params
        return [r.to_dict() for r in state.requests(q.get("endpoint"), q.get("path"))]

    @admin("DELETE", "/requests")
    async def clear_requests(request: Request) -> Any:
        state.clear_requests()
        return {"ok": True}

    @admin("GET", "/faults")
    async def list_faults(request: Request) -> Any:
        return [f.to_dict() for f in state.faults()]

    @admin("POST", "/faults")
    async def add_fault(request: Request) -> Any:
        state.add_fault(Fault.from_dict(await _admin_body(request)))
        return [f.to_dict() for f in state.faults()]

    @admin("DELETE", "/faults")
    async def clear_faults(request: Request) -> Any:
        state.clear_faults()
        return {"ok": True}

    @admin("POST", "/reset")
    async def reset(request: Request) -> Any:
        state.reset()
        return {"ok": True}

    @admin("GET", "/config")
    async def get_config(request: Request) -> Any:
        return state.config.redacted()

    @admin("POST", "/config")
    async def configure(request: Request) -> Any:
        changes = await _admin_body(request)
        if "sync_seconds" in changes:
            changes["sync_seconds"] = _float_or_inf(changes["sync_seconds"])
        state.configure(**changes)
        return state.config.redacted()

    @admin("GET", "/portfolios")
    async def portfolios(request: Request) -> Any:
        owners = state.portfolio_owner_labels()
        return [{**p, "owner": owners.get(p["portfolioId"])} for p in state.portfolios()]

    @admin("POST", "/portfolios/{portfolio_id}/sync")
    async def set_sync(request: Request) -> Any:
        body = await _admin_body(request)
        unknown = set(body) - {"polls", "seconds"}
        if unknown:
            raise _AdminError(f"unknown field(s): {', '.join(sorted(unknown))}")
        state.set_sync(request.path_params["portfolio_id"], body.get("polls"), _float_or_inf(body.get("seconds")))
        return {"ok": True}

    @admin("POST", "/portfolios/{portfolio_id}/transactions")
    async def set_transactions(request: Request) -> Any:
        body = await _admin_body(request)
        if "count" not in body:
            raise _AdminError("count is required")
        state.set_transaction_count(request.path_params["portfolio_id"], body["count"])
        return {"ok": True}

    @admin("POST", "/portfolios/{portfolio_id}/transactions/append")
    async def append_transactions(request: Request) -> Any:
        body = await _admin_body(request)
        unknown = set(body) - {"count"}
        if unknown:
            raise _AdminError(f"unknown field(s): {', '.join(sorted(unknown))}")
        if "count" not in body:
            raise _AdminError("count is required")
        state.append_transactions(request.path_params["portfolio_id"], body["count"])
        return {"ok": True}

    @admin("POST", "/shared")
    async def create_shared(request: Request) -> Any:
        body = await _admin_body(request)
        unknown = set(body) - {"label", "transactions", "passcode", "shareToken"}
        if unknown:
            raise _AdminError(f"unknown field(s): {', '.join(sorted(unknown))}")
        share = state.create_shared(
            body.get("label"),
            transactions=body.get("transactions"),
            passcode=body.get("passcode", True),
            share_token=body.get("shareToken"),
        )
        # The one admin answer that carries secrets: the caller needs them to read the portfolio.
        return share.to_dict()

    @admin("GET", "/shared")
    async def list_shared(request: Request) -> Any:
        return state.shared()

    @admin("GET", "/credits")
    async def credits(request: Request) -> Any:
        return state.credits_report()

    @admin("POST", "/keys/rotate")
    async def rotate_key(request: Request) -> Any:
        body = await _admin_body(request)
        if set(body) != {"old", "new"}:
            raise _AdminError('body must be {"old": "<current key>", "new": "<replacement key>"}')
        # The answer names the key's label only: the admin API never echoes a key.
        return {"ok": True, "key": state.rotate_key(body["old"], body["new"])}


# --------------------------------------------------------------------------- application


def create_app(state: SandboxState) -> FastAPI:
    """The ASGI app serving the CoinStats API (bare and ``/v1`` paths) plus the admin API."""
    app = FastAPI(title="CoinStats sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    # CoinStats answers 404 for a trailing slash; Starlette would redirect instead.
    app.router.redirect_slashes = False

    for endpoint in ENDPOINTS.values():
        route = _api_route(state, endpoint)
        for prefix in API_PREFIXES:
            app.add_api_route(prefix + endpoint.path, route, methods=[endpoint.method], include_in_schema=False)
    _add_admin_routes(app, state)

    async def http_error(request: Request, exc: Exception) -> Response:
        path = request.url.path
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        if status in (404, 405):
            # NestJS (which CoinStats runs on) answers an unknown method+path with 404.
            if not path.startswith(ADMIN_PREFIX):
                state.record(
                    method=request.method,
                    path=path,
                    endpoint=None,
                    query=dict(request.query_params),
                    status=404,
                )
            return _error(404, f"Cannot {request.method} {path}", path)
        detail = exc.detail if isinstance(exc, StarletteHTTPException) else "Internal server error"
        return _error(status, str(detail), path)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return _error(400, "Bad Request", request.url.path)

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, "Internal server error", request.url.path)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, server_error)
    return app
