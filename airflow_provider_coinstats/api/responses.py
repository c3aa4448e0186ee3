"""The one place that turns a CoinStats HTTP answer into data or a typed exception.

Both transports hand the raw status, headers and body to :func:`classify_response`; nobody else
looks at status codes. Error bodies follow the documented envelope
``{statusCode, message, requestId, path}``, but 502/503 from a proxy can be HTML or empty, so the
parser never assumes JSON.

A 3xx is never followed (both transports turn redirects off): it becomes
:class:`~airflow_provider_coinstats.exceptions.CoinStatsRedirectError`, naming only the target's
origin. Secrets are scrubbed from server text before it is shortened or quoted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from airflow_provider_coinstats.api.builders import ApiRequest
from airflow_provider_coinstats.exceptions import (
    CoinStatsAPIError,
    CoinStatsBadRequestError,
    CoinStatsCreditsExhaustedError,
    CoinStatsForbiddenError,
    CoinStatsInvalidResponseError,
    CoinStatsNotFoundError,
    CoinStatsNotSyncedError,
    CoinStatsRateLimitedError,
    CoinStatsRedirectError,
    CoinStatsServerError,
    CoinStatsUnauthorizedError,
)

_BY_STATUS: Final[Mapping[int, type[CoinStatsAPIError]]] = {
    400: CoinStatsBadRequestError,
    401: CoinStatsUnauthorizedError,
    403: CoinStatsForbiddenError,
    404: CoinStatsNotFoundError,
    406: CoinStatsCreditsExhaustedError,
    409: CoinStatsNotSyncedError,
    429: CoinStatsRateLimitedError,
    500: CoinStatsServerError,
    502: CoinStatsServerError,
    503: CoinStatsServerError,
    504: CoinStatsServerError,
}

#: Longest piece of a non-JSON error body quoted in a message.
_EXCERPT: Final = 200


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in ``text`` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def classify_response(
    request: ApiRequest,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str] = (),
    base_url: str | None = None,
) -> Any:
    """Return the decoded JSON of a success, or raise the typed error for anything else.

    ``secrets`` (the API key; the request's own credential values are added) are scrubbed from
    every message so no error can carry them. ``base_url`` resolves a relative ``Location``.
    """
    all_secrets = (*secrets, *request.secrets)
    if 300 <= status < 400:
        raise _redirect_error(request, status, _header(headers, "Location"), base_url, all_secrets)
    if 200 <= status < 300:
        if status == 204 or (not body and request.method == "DELETE"):
            return None
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CoinStatsInvalidResponseError(
                status,
                f"body is not complete JSON ({len(body)} bytes; {err.__class__.__name__})",
                method=request.method,
                path=request.path,
            ) from None

    message, request_id = _error_details(status, body, all_secrets)
    error_class = _BY_STATUS.get(status, CoinStatsAPIError)
    retry_after = parse_retry_after(_header(headers, "Retry-After")) if status in (429, 503) else None
    raise error_class(
        status,
        scrub(message, all_secrets),
        method=request.method,
        path=request.path,
        request_id=scrub(request_id, all_secrets) if request_id else None,
        retry_after=retry_after,
    )


def redirect_origin(location: str | None, base_url: str | None = None) -> str | None:
    """``scheme://host[:port]`` of a ``Location`` header; never its user info, path or query.

    A relative ``Location`` is resolved against ``base_url``. ``None`` when there is nothing
    usable to name.

    Example::

        redirect_origin("https://evil.example:8443/steal?token=abc")  # -> "https://evil.example:8443"
    """
    if not location or not location.strip():
        return None
    target = urljoin(base_url, location.strip()) if base_url else location.strip()
    try:
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    # host[:port] as sent (not .hostname, which lowercases: scrubbing must still match a secret)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _redirect_error(
    request: ApiRequest, status: int, location: str | None, base_url: str | None, secrets: Iterable[str]
) -> CoinStatsRedirectError:
    origin = redirect_origin(location, base_url)
    origin = scrub(origin, secrets) if origin else None
    target = f"to {origin}" if origin else "without a usable Location"
    return CoinStatsRedirectError(
        status,
        f"redirect {target} not followed: the API key and request body go to the configured host only",
        method=request.method,
        path=request.path,
        location=origin,
    )


def _error_details(status: int, body: bytes, secrets: Iterable[str] = ()) -> tuple[str, str | None]:
    # Scrub before anything shortens the text: a secret cut in half by the excerpt would no
    # longer match, and its first characters would be quoted.
    text = scrub(body.decode("utf-8", errors="replace"), secrets).strip()
    try:
        envelope = json.loads(text) if text else None
    except json.JSONDecodeError:
        envelope = None
    if isinstance(envelope, dict):
        raw_message = envelope.get("message")
        if isinstance(raw_message, list):  # validation errors arrive as a list of strings
            raw_message = "; ".join(str(m) for m in raw_message)
        message = str(raw_message) if raw_message else f"HTTP {status}"
        request_id = envelope.get("requestId")
        return message, str(request_id) if request_id else None
    if not text:
        return f"HTTP {status} with an empty body", None
    excerpt = " ".join(text.split())[:_EXCERPT]
    return f"HTTP {status} with a non-JSON body: {excerpt}", None
